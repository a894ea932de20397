"""The figures tables of docs/RELIABILITY.md from the runs' reports: one column a seed, one row a kind of fault
over all runs, a fault that never caught up counted as such."""

from __future__ import annotations

from typing import Any

from bench.chaos_table import fault_table, run_table


def report(seed: int, faults: list[dict[str, Any]], *, holds: bool = True) -> dict[str, Any]:
    counts = dict.fromkeys(
        [
            "alerts_missing",
            "alerts_extra",
            "notifications_lost",
            "notifications_under_two_ids",
            "duplicates_same_id",
            "posts_refused_by_receivers",
            "all_clears_before_their_raise",
            "posts_badly_signed",
            "meters_state_differs",
            "readings_not_reflected",
            "never_caught_up",
        ],
        0,
    )
    return counts | {
        "seed": seed,
        "ran_s": 900,
        "wall_s": 990,
        "faults_injected": len(faults),
        "readings_sent": 594996,
        "records_sent": 100030,
        "meters": 2000,
        "bursts": 1188,
        "alerts_expected": 2376,
        "notifications_expected": 4752,
        "invalid_records_sent": 30,
        "dead_letters_from_readings": 30,
        "latency_baseline_median_s": 0.7,
        "latency_p50_s": 1.0,
        "latency_max_s": 60.0,
        "longest_recovery_after_restored_s": 25.0,
        "longest_recovery_from_fault_s": 70.0,
        "unexpected_exits": [],
        "stuck_workers": [],
        "invariants_hold": holds,
        "faults": faults,
    }


def fault(kind: str, lasted: float, began: float | None, ended: float | None, waited: float = 0.0) -> dict[str, Any]:
    return {
        "kind": kind,
        "lasted_s": lasted,
        "caught_up_after_s": began,
        "after_restored_s": ended,
        "waited_for_catch_up_s": waited,
    }


def test_a_column_per_seed_and_a_row_per_kind_of_fault_over_all_runs() -> None:
    runs = [
        report(1, [fault("worker_kill", 8.0, 12.0, 3.0), fault("receiver_503", 60.0, 70.0, 10.0, waited=12.4)]),
        report(2, [fault("worker_kill", 13.0, 30.0, 17.0), fault("worker_kill", 9.0, None, None)], holds=False),
    ]
    table = run_table(runs)
    assert table[0] == "| seed | 1 | 2 |"
    assert "| every invariant holds | yes | **no** |" in table
    assert "| **notifications lost** | **0** of 4,752 | **0** of 4,752 |" in table
    assert "| longest wait for the catch-up before the next fault | 12 s | 0 s |" in table
    before = [{k: v for k, v in f.items() if k != "waited_for_catch_up_s"} for f in runs[0]["faults"]]
    old = {**runs[0], "faults": before}
    assert "| longest wait for the catch-up before the next fault | – |" in run_table([old])  # a report from before
    assert "| faults injected (planned but left out: the load ended first) | 2 (0) |" in run_table([old])
    kinds = fault_table(runs)
    assert kinds[2] == "| `receiver_503` | 1 | 60–60 s | 70.0 s | 10.0 / 10.0 s |"
    assert kinds[3] == "| `worker_kill` | 3 | 8–13 s | 30.0 s | 10.0 / 17.0 s (1 never) |"
