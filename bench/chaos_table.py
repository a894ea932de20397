"""The fault runs' figures as the tables of docs/RELIABILITY.md, from their reports (bench/chaos.py --json):

.venv/bin/python bench/chaos_table.py var/chaos-1.json var/chaos-2.json var/chaos-3.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Row = tuple[str, Callable[[dict[str, Any]], object]]
ROWS: list[Row] = [
    ("load ran / whole run (start, drain, checks)", lambda r: f"{r['ran_s'] / 60:.0f} / {r['wall_s'] / 60:.0f} min"),
    ("faults injected (planned but left out: the load ended first)", lambda r: _injected(r)),
    ("longest wait for the catch-up before the next fault", lambda r: _longest_wait(r)),
    ("readings sent (records)", lambda r: f"{r['readings_sent']:,} ({r['records_sent']:,})"),
    ("meters", lambda r: f"{r['meters']:,}"),
    ("bursts (alerts raised and resolved)", lambda r: f"{r['bursts']:,}"),
    ("**alerts missing from the alerts topic**", lambda r: f"**{r['alerts_missing']}** of {r['alerts_expected']:,}"),
    ("alerts no fault-free run gives", lambda r: r["alerts_extra"]),
    ("**notifications lost**", lambda r: f"**{r['notifications_lost']}** of {r['notifications_expected']:,}"),
    ("**notifications under two webhook-ids**", lambda r: f"**{r['notifications_under_two_ids']}**"),
    ("duplicates under one webhook-id (allowed)", lambda r: r["duplicates_same_id"]),
    ("POSTs answered 503 (and retried)", lambda r: f"{r['posts_refused_by_receivers']:,}"),
    ("all-clears accepted before their raise", lambda r: r["all_clears_before_their_raise"]),
    ("badly signed POSTs", lambda r: r["posts_badly_signed"]),
    ("**meters whose final state differs from the replay**", lambda r: f"**{r['meters_state_differs']}**"),
    ("**readings not reflected**", lambda r: f"**{r['readings_not_reflected']}**"),
    ("invalid records / dead letters", lambda r: f"{r['invalid_records_sent']} / {r['dead_letters_from_readings']}"),
    ("latency before the first fault, median", lambda r: f"{r['latency_baseline_median_s']} s"),
    ("latency over the run, median / max", lambda r: f"{r['latency_p50_s']} / {r['latency_max_s']} s"),
    ("**longest recovery after a fault ended**", lambda r: f"**{r['longest_recovery_after_restored_s']} s**"),
    ("longest from a fault's start to caught up", lambda r: f"{r['longest_recovery_from_fault_s']} s"),
    ("faults never caught up after", lambda r: r["never_caught_up"]),
    ("processes that exited or hung on their own", lambda r: len(r["unexpected_exits"]) + len(r["stuck_workers"])),
    ("every invariant holds", lambda r: "yes" if r["invariants_hold"] else "**no**"),
]


def _injected(run: dict[str, Any]) -> str:
    return f"{run['faults_injected']} ({run.get('faults_left_out', 0)})"


def _longest_wait(run: dict[str, Any]) -> str:
    """Reports from before the run waited for a catch-up have no such field: they show a dash."""
    waits = [f["waited_for_catch_up_s"] for f in run["faults"] if "waited_for_catch_up_s" in f]
    return f"{max(waits):.0f} s" if waits else "–"


def run_table(runs: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["| seed | " + " | ".join(str(r["seed"]) for r in runs) + " |", "|---|" + "---|" * len(runs)]
    lines += [f"| {name} | " + " | ".join(str(cell(r)) for r in runs) + " |" for name, cell in ROWS]
    return lines


def fault_table(runs: Sequence[dict[str, Any]]) -> list[str]:
    """Per kind of fault over all runs: how often, how long, and the slowest recovery from its start and end."""
    kinds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        for fault in run["faults"]:
            kinds[fault["kind"]].append(fault)
    lines = [
        "| fault | injected | lasted | caught up after it began, max | after it ended, median / max |",
        "|---|---|---|---|---|",
    ]
    for kind, faults in sorted(kinds.items()):
        lasted = [f["lasted_s"] for f in faults]
        began = [f["caught_up_after_s"] for f in faults if f["caught_up_after_s"] is not None]
        ended = sorted(f["after_restored_s"] for f in faults if f["after_restored_s"] is not None)
        never = len(faults) - len(ended)
        median = f"{statistics.median(ended):.1f}" if ended else "–"  # of an even count: the mean of the middle two
        tail = f" ({never} never)" if never else ""
        lines.append(
            f"| `{kind}` | {len(faults)} | {min(lasted):.0f}–{max(lasted):.0f} s | "
            f"{max(began, default=0):.1f} s | {median} / {max(ended, default=0):.1f} s{tail} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", type=Path, help="the runs' --json reports")
    args = parser.parse_args(argv)
    runs = [json.loads(path.read_text()) for path in args.reports]
    print("\n".join(run_table(runs)), "", "\n".join(fault_table(runs)), sep="\n")


if __name__ == "__main__":
    main()
