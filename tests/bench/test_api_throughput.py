"""bench/api_throughput.py --quick: the API now and before, its switches checked by the audit rows (not the speed)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.api_throughput import main
from cli.broker import LocalBroker


def test_a_quick_run_measures_the_api_now_and_before(kafka_broker: LocalBroker, tmp_path: Path) -> None:
    out = tmp_path / "api.json"
    result = main(["--quick", "--bootstrap", kafka_broker.bootstrap, "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    variants = {v["name"]: v for v in result["variants"]}
    now, before = variants["SQLite FULL, audit on (now)"], variants["SQLite NORMAL, audit off (before)"]
    assert (now["durability"], before["durability"]) == ("synchronous=FULL; audit on", "synchronous=NORMAL; audit off")
    # The run itself counted the trail's rows: one per read with the trail on, none with it off.
    assert (now["audit_events_per_read"], before["audit_events_per_read"]) == (1, 0)
    for variant in (now, before):
        for phase in ("ingest", "alert", "alert list"):
            assert len(variant[f"{phase} per_s"]) == 1 and variant[f"{phase} per_s_median"] > 0
    assert set(result["ratios"]) == {"now / before, SQLite"}
    assert set(result["ratios"]["now / before, SQLite"]) >= {"ingest median", "alert median", "alert list median"}
