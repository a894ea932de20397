"""The fault run's options (bench/chaos.py): its command line, the short form's fault profile, and the webhook
retry schedule it runs with."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.chaos_faults import KINDS, Profile

# The product's schedule (5 s, 5 m, 30 m, …) compressed: the retry after an outage comes within 20 s.
RETRY_SCHEDULE = "1s,2s,5s,10s,20s," + ",".join(["20s"] * 40)
SHORT = Profile(  # no wait for catch-up: the short form counts what is lost, not how fast it recovers
    down_s=(2.0, 3.0),
    pause_s=(11.0, 12.0),
    outage_s=(4.0, 6.0),
    gap_s=(1.0, 2.0),
    catch_up_wait_s=0.0,
    first_at_s=12.0,
    quiet_tail_s=12.0,
)


def parse(argv: list[str] | None, description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--minutes", type=float, default=15.0, help="how long the load runs (faults within it)")
    parser.add_argument("--seed", type=int, default=1, help="the load's and the fault schedule's seed")
    parser.add_argument("--json", type=Path, help="write the report here too")
    parser.add_argument("--meters", type=int, default=2000)
    parser.add_argument("--partitions", type=int, default=8, help="of the readings topic")
    parser.add_argument("--probes", type=int, default=4, help="bursts per tick (partitions in turn)")
    parser.add_argument("--tick-s", type=float, default=3.0, help="real seconds per event hour")
    parser.add_argument("--nodes", type=int, default=3, choices=(1, 3), help="Kafka nodes (1: no broker faults)")
    parser.add_argument(
        "--faults", type=lambda s: tuple(k for k in s.split(",") if k), default=KINDS, help="kinds, comma-separated"
    )
    parser.add_argument("--short", action="store_true", help="short faults close together (the make-test form)")
    parser.add_argument("--drain-s", type=float, default=180.0, help="at most this long for the pipeline at the end")
    parser.add_argument("--settle-s", type=float, default=5.0)
    parser.add_argument("--run-dir", type=Path, help="keep the run's logs and data here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary run folder")
    args = parser.parse_args(argv)
    unknown = set(args.faults) - set(KINDS)
    if unknown:
        parser.error(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
    return args
