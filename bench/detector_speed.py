"""Micro-benchmark of the detector bank: time per reading and state bytes per meter.

    .venv/bin/python bench/detector_speed.py [--readings tests/data/daiad_slice.csv] [--runs 5]

Replays real homes (the shipped DAIAD slice by default) reading by reading through
``DetectorBank.update`` and reports the median time per reading over ``--runs`` runs, beside a
baseline measured in the same run: a bank with no detectors (only the interval builder and the
usage history), so the detectors' own cost shows. Also the serialised state size per meter
(``dump()``) and the cost of a ``dump``/``load`` round trip. Target: ≤ 20 µs per reading, ≤ 2 KB.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors import DetectorBank, Observation
from streams.replay import read_readings

SLICE = Path(__file__).resolve().parent.parent / "tests" / "data" / "daiad_slice.csv"


def _observations(path: Path, tz: str) -> list[list[Observation]]:
    with path.open(encoding="utf-8") as lines:
        parsed = read_readings(lines, tz)
    return [
        [Observation(meter, datetime.fromtimestamp(t, UTC), r) for t, r in points]
        for meter, points in parsed.meters.items()
    ]


def _timings_us(meters: list[list[Observation]], tz: str, empty: bool) -> list[float]:
    """Each reading's update, timed on its own (the daily model refits show up in the tail)."""
    clock = time.perf_counter
    times = []
    for readings in meters:
        update = DetectorBank([] if empty else None, tz=tz).update
        for observation in readings:
            started = clock()
            update(observation)
            times.append(clock() - started)
    return [t * 1e6 for t in times]


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readings", type=Path, default=SLICE)
    parser.add_argument("--tz", default="Europe/Madrid")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    meters = _observations(args.readings, args.tz)
    readings = sum(len(m) for m in meters)
    runs: dict[str, list[tuple[float, float, float]]] = {"bare": [], "full": []}
    for _ in range(args.runs):
        for name in ("bare", "full"):
            times = _timings_us(meters, args.tz, empty=name == "bare")
            runs[name].append((statistics.median(times), statistics.fmean(times), _quantile(times, 0.99)))
    sizes, round_trips = [], []
    for readings_of_meter in meters:
        bank = DetectorBank(tz=args.tz)
        for observation in readings_of_meter:
            bank.update(observation)
        state = bank.dump()
        sizes.append(len(state))
        started = time.perf_counter()
        for _ in range(1000):
            DetectorBank(tz=args.tz).load(state)
        round_trips.append((time.perf_counter() - started) / 1000 * 1e6)
    print(f"{len(meters)} meters, {readings} readings, {args.runs} runs (medians)")
    for name, label in (("full", "bank update, all detectors"), ("bare", "baseline, no detectors")):
        median, mean, p99 = (statistics.median(run[i] for run in runs[name]) for i in range(3))
        print(f"{label:32s} median {median:6.1f} µs, mean {mean:6.1f} µs, p99 {p99:7.1f} µs per reading")
    print(f"state per meter (dump):          {min(sizes)}–{max(sizes)} bytes")
    print(f"new bank + load(state):          {statistics.median(round_trips):6.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
