"""bench/router_throughput.py --quick: every store measured, its durability read back, the ratios (not the speed)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.router_throughput import main


def test_a_quick_run_measures_each_store_with_its_setting(postgres_url: str, tmp_path: Path) -> None:
    out = tmp_path / "router.json"
    # The session's server as it is (no fsync): the shape is checked here, not the figures.
    result = main(["--quick", "--postgres-url", postgres_url, "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    durability = {v["name"]: v["durability"] for v in result["variants"]}
    assert durability == {
        "SQLite, synchronous=FULL (now)": "synchronous=FULL",
        "SQLite, synchronous=NORMAL (before)": "synchronous=NORMAL",
        "PostgreSQL, synchronous_commit=on (default)": "synchronous_commit=on, fsync=off",
        "PostgreSQL, synchronous_commit=off": "synchronous_commit=off, fsync=off",
    }
    for variant in result["variants"]:
        assert len(variant["events_per_s"]) == len(variant["deliveries_per_s"]) == result["runs"] == 1
        assert variant["events_per_s_median"] > 0 and variant["deliveries_per_s_median"] > 0
    assert result["events"] == 20 and result["deliveries_per_run"] == 40
    assert result["receiver_posts"] >= 4 * 40  # every delivery reached the receiver
    assert set(result["ratios"]) == {"sqlite: FULL / NORMAL", "postgresql: on / off"}
    assert result["machine"]["cores"] and result["machine"]["postgresql"]["fsync"] == "off"
