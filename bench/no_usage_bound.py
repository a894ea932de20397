"""How fast can *any* hour-of-day silence model be at a given false-alarm rate? An optimistic bound.

    .venv/bin/python bench/no_usage_bound.py

For each DAIAD home, the silences of the first half of its data are the model: for every local
start hour (± 1 h at half weight), the empirical chance that a silence lasts at least L hours.
Each hour's limit L minimises L + λ·S(L) (the same rule ``no_usage`` uses), with no prior, no
smoothing beyond that and λ swept. The second half is then scored: false alarms per home-month
(silences that outgrew their limit and ended within 24 h) and the median limit over the second
half's water uses (a collapse right after a use waits that long). Optionally with weekday/weekend
split. It learns from half a year at once, where the detector learns online from nothing, so the
detector can only do worse. Reads ../shared/data/dev (never holdout).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from bench.datasets import DEV_DATA, LOCAL_TZ, load_daiad

GRID = np.arange(1.0, 24.01, 0.25)
H = 3600.0


def _cells(points: list[tuple[float, float]], zone: ZoneInfo, lo: float, hi: float, split: bool):
    silences: dict[tuple[int, int], list[float]] = {}
    uses: dict[tuple[int, int], int] = {}
    last_use = None
    last_cell = (0, 0)
    for (t0, r0), (t1, r1) in itertools.pairwise(points):
        if not 0.5 <= r1 - r0 < 5000:
            continue
        moment = datetime.fromtimestamp(t1, zone)
        cell = (moment.hour, int(split and moment.weekday() >= 5))
        if lo <= t1 < hi:
            uses[cell] = uses.get(cell, 0) + 1
            if last_use is not None and t0 - last_use >= H:
                silences.setdefault(last_cell, []).append((t0 - last_use) / H)
        last_use, last_cell = t1, cell
    return silences, uses


def bound(meters: dict[str, list[tuple[float, float]]], zone: ZoneInfo, lam: float, split: bool) -> tuple[float, float]:
    false = months = 0.0
    delays: list[float] = []
    for points in meters.values():
        middle = (points[0][0] + points[-1][0]) / 2
        train, _ = _cells(points, zone, 0, middle, split)
        test, uses = _cells(points, zone, middle, float("inf"), split)
        months += (points[-1][0] - middle) / 86400 / 30.4
        for (hour, day), count in uses.items():
            parts = [(np.asarray(train.get(((hour + d) % 24, day), [])), w) for d, w in ((-1, 0.5), (0, 1.0), (1, 0.5))]
            total = sum(w * len(a) for a, w in parts)
            if not total:
                limit = 12.0
            else:
                survival = sum(w * (a[None, :] >= GRID[:, None]).sum(axis=1) for a, w in parts) / total
                limit = float(GRID[np.argmin(GRID + lam * survival)])
            seen = np.asarray(test.get((hour, day), []))
            false += float(((seen >= limit) & (seen < 24)).sum())
            delays += [limit] * count
    return false / months, float(np.median(delays))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEV_DATA / "daiad-2016" / "swm_trialA_clean.zip")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"no_usage_bound: {args.data} not found", file=sys.stderr)
        return 2
    meters = load_daiad(args.data)
    zone = ZoneInfo(LOCAL_TZ["daiad"])
    print("| cells | λ | false per home-month | median limit h |\n|---|---|---|---|")
    for split in (False, True):
        for lam in (30, 100, 300, 1000, 3000):
            false, median = bound(meters, zone, lam, split)
            print(f"| {'hour × weekday/weekend' if split else 'hour'} | {lam} | {false:.2f} | {median:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
