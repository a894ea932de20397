"""The fault run's short form (bench/chaos.py --short) on the session's three-node cluster: two workers, two
routers and a PostgreSQL of its own under a steady load while a worker and a router are killed (the router
while it sends), the leader of a readings partition is killed and PostgreSQL crashes and restarts. No alert,
notification or reading may be lost, and no notification may go out under two webhook-ids. The full run,
with every kind of fault, and its figures: docs/RELIABILITY.md.

How fast the pipeline catches up after each fault is a figure of the full run, not asserted here: in a run of
40 s beside the rest of the suite on two cores, the probes after the last fault can stay above "normal" latency
until the end (seen with both cores busy: every count at 0, ``never_caught_up`` 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import main
from cli.cluster import LocalCluster

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
FAULTS = ("worker_kill", "router_kill", "broker_leader", "postgres_restart")


def test_a_short_fault_run_loses_no_alert_notification_or_reading(kafka_cluster: LocalCluster, tmp_path: Path) -> None:
    result = main(
        [
            "--short",
            "--minutes",
            "0.7",
            "--meters",
            "200",
            "--tick-s",
            "2",
            "--probes",
            "2",
            "--faults",
            ",".join(FAULTS),
            "--drain-s",
            "45",
            "--settle-s",
            "2",
            "--seed",
            "5",
            "--run-dir",
            str(tmp_path / "run"),
            "--json",
            str(tmp_path / "chaos.json"),
        ],
        kafka=kafka_cluster,
    )
    assert kafka_cluster.is_running(), "every node the run killed is started again"
    summary = {k: v for k, v in result.items() if k not in ("faults", "latency_timeline", "examples")}
    injected = {fault["kind"] for fault in result["faults"]}
    assert injected == set(FAULTS), result["faults"]
    assert all(f["note"] == "mid-send" for f in result["faults"] if f["kind"] == "router_kill"), result["faults"]
    assert result["bursts"] >= 30 and result["notifications_expected"] == 4 * result["bursts"], summary
    assert result["alerts_missing"] == 0, summary
    assert result["notifications_lost"] == 0, summary
    assert result["notifications_under_two_ids"] == 0, summary
    assert (
        result["meters_state_missing"] == result["meters_state_differs"] == result["meters_state_unexplained"] == 0
    ), summary
    assert result["readings_not_reflected"] == 0, summary
    assert result["posts_badly_signed"] == 0 and result["notifications_unexpected"] == 0, summary
    assert result["dead_letters_from_readings"] >= result["invalid_records_sent"] > 0, summary
    assert result["unexpected_exits"] == [], result["unexpected_exits"]
