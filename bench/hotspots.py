"""Hotspot detectors on simulated report streams: false hotspots on steady streams, detection of rises.

    .venv/bin/python bench/hotspots.py                # full run (about 3 minutes on 2 cores)
    .venv/bin/python bench/hotspots.py --quick        # a few trials, for tests and a quick look
    .venv/bin/python bench/hotspots.py --json var/hotspots.json

Two detectors in the same run, on the same seeded streams: ``window`` (the sliding 7-day Poisson
test used before, ``detectors/incidents/hotspot_window.py``) and ``cusum`` (the Poisson CUSUM,
``detectors/incidents/hotspot.py``), both with their defaults. Each series is one (grid cell,
category) fed to a fresh detector as the worker's incidents agent does: ``advance(ts)`` then
``update(cell, category, ts)`` at every report, the first report starting the detector's watch.

- **Steady streams**: a Poisson process at 1, 3 and 6 reports a week for 26 weeks, from the cell's
  first report on. Every ``raised`` is a false hotspot; the rate is per series-week, over all 26
  weeks (a new cell's first weeks included) and over the first 4 weeks alone.
- **Steps**: 12 weeks at a baseline (1, 3, 6 or 10 a week), then the rate times 2, 3 or 5. A step
  is found when a hotspot is raised within 7 days of it; the delay is from the step to the raise
  (median, days). ``bound`` is the best any test can do at 0.01 false hotspots a week: the
  Neyman-Pearson test of the step's week alone, knowing the baseline and when the step came.

Results: docs/INCIDENTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing import Pool
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors.incidents.hotspot import HotspotDetector, HotspotFinding
from detectors.incidents.hotspot_window import WindowHotspotDetector

T0 = datetime(2026, 1, 5, tzinfo=UTC)
CELL, CATEGORY = "SIM-1", "sanitation"
WEEK_S = 7 * 24 * 3600.0
STEADY_RATES = (1.0, 3.0, 6.0)
STEADY_WEEKS = 26
FIRST_WEEKS = 4
STEP_BASELINES = (1.0, 3.0, 6.0, 10.0)
STEP_FACTORS = (2.0, 3.0, 5.0)
STEP_PRE_WEEKS = 12
STEP_POST_DAYS = 14
BUDGET = 0.01  # false hotspots per series-week (the target)


class Detector(Protocol):
    def update(self, grid_cell: str, category: str, ts: datetime) -> HotspotFinding | None: ...

    def advance(self, now: datetime) -> list[HotspotFinding]: ...


DETECTORS: dict[str, Callable[[], Detector]] = {"window": WindowHotspotDetector, "cusum": HotspotDetector}


def arrivals(rng: random.Random, rate_per_week: float, start_s: float, end_s: float) -> list[float]:
    """Times (seconds) of a Poisson process at ``rate_per_week`` in [start_s, end_s)."""
    out: list[float] = []
    t = start_s
    while True:
        t += rng.expovariate(rate_per_week / WEEK_S)
        if t >= end_s:
            return out
        out.append(t)


def raises(detector: Detector, times: Sequence[float]) -> list[float]:
    """Feed the reports as the incidents agent does; the times (seconds from T0) of every raise."""
    found: list[float] = []
    for t in times:
        ts = T0 + timedelta(seconds=t)
        decided = [f for f in detector.advance(ts)]
        finding = detector.update(CELL, CATEGORY, ts)
        if finding is not None:
            decided.append(finding)
        found.extend(t for f in decided if f.transition == "raised")
    return found


def steady_stream(seed: int, rate: float) -> list[float]:
    rng = random.Random(seed)
    times = arrivals(rng, rate, 0.0, STEADY_WEEKS * WEEK_S)
    return times


def step_stream(seed: int, base: float, factor: float) -> tuple[list[float], float]:
    rng = random.Random(seed)
    change = STEP_PRE_WEEKS * WEEK_S
    before = arrivals(rng, base, 0.0, change)
    after = arrivals(rng, base * factor, change, change + STEP_POST_DAYS * 86400.0)
    return before + after, change


@dataclass(frozen=True, slots=True)
class SteadyJob:
    detector: str
    rate: float
    seeds: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StepJob:
    detector: str
    base: float
    factor: float
    seeds: tuple[int, ...]


def run_steady(job: SteadyJob) -> dict[str, Any]:
    total, first = 0, 0
    for seed in job.seeds:
        times = steady_stream(seed, job.rate)
        if not times:
            continue
        raised = raises(DETECTORS[job.detector](), times)
        total += len(raised)
        first += sum(1 for t in raised if t < times[0] + FIRST_WEEKS * WEEK_S)
    n = len(job.seeds)
    return {
        "detector": job.detector,
        "rate": job.rate,
        "series": n,
        "false_raises": total,
        "per_series_week": total / (n * STEADY_WEEKS),
        "per_series_week_first_weeks": first / (n * FIRST_WEEKS),
    }


def run_step(job: StepJob) -> dict[str, Any]:
    found, delays, already = 0, [], 0
    for seed in job.seeds:
        times, change = step_stream(seed, job.base, job.factor)
        raised = raises(DETECTORS[job.detector](), times)
        after = [t for t in raised if change <= t < change + 7 * 86400.0]
        if after:
            found += 1
            delays.append((after[0] - change) / 86400.0)
        already += any(change - 7 * 86400.0 <= t < change for t in raised)
    n = len(job.seeds)
    return {
        "detector": job.detector,
        "base": job.base,
        "factor": job.factor,
        "trials": n,
        "detected": found / n,
        "median_delay_days": statistics.median(delays) if delays else None,
        "raised_in_week_before": already / n,
        "bound": np_bound(job.base, job.factor, BUDGET),
    }


def _pmf(k: int, mean: float) -> float:
    return math.exp(-mean + k * math.log(mean) - math.lgamma(k + 1))


def _tail(k: int, mean: float) -> float:
    return max(0.0, 1.0 - sum(_pmf(i, mean) for i in range(k)))


def np_bound(base: float, factor: float, alpha: float) -> float:
    """Power of the randomised one-week Neyman-Pearson test of Poisson(base) against Poisson(base × factor)
    at size ``alpha``: no detector held to ``alpha`` false hotspots a week can find the step's week more often."""
    c = 0
    while _tail(c + 1, base) > alpha:
        c += 1
    # reject for N > c; at N = c with the probability that spends the rest of alpha
    gamma = (alpha - _tail(c + 1, base)) / _pmf(c, base)
    return _tail(c + 1, base * factor) + gamma * _pmf(c, base * factor)


def evaluate(quick: bool = False, processes: int = 2) -> dict[str, Any]:
    series = 12 if quick else 400
    trials = 12 if quick else 300
    rates = STEADY_RATES
    bases = (3.0,) if quick else STEP_BASELINES
    factors = (3.0,) if quick else STEP_FACTORS
    steady_jobs = [
        SteadyJob(d, r, tuple(range(int(r * 1000) + i * 100_000, int(r * 1000) + i * 100_000 + series // 4)))
        for d in DETECTORS
        for r in rates
        for i in range(4)
    ]
    step_jobs = [
        StepJob(
            d,
            b,
            f,
            tuple(
                range(
                    7_000_000 + int(b * f * 1000) + i * 100_000,
                    7_000_000 + int(b * f * 1000) + i * 100_000 + trials // 4,
                )
            ),
        )
        for d in DETECTORS
        for b in bases
        for f in factors
        for i in range(4)
    ]
    if processes > 1:
        with Pool(processes) as pool:
            steady_parts = pool.map(run_steady, steady_jobs)
            step_parts = pool.map(run_step, step_jobs)
    else:
        steady_parts = [run_steady(j) for j in steady_jobs]
        step_parts = [run_step(j) for j in step_jobs]
    return {"steady": _merge_steady(steady_parts), "steps": _merge_steps(step_parts), "budget": BUDGET}


def _merge_steady(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: dict[tuple[str, float], dict[str, Any]] = {}
    for p in parts:
        m = merged.setdefault((p["detector"], p["rate"]), {"series": 0, "false_raises": 0, "first": 0.0})
        m["series"] += p["series"]
        m["false_raises"] += p["false_raises"]
        m["first"] += p["per_series_week_first_weeks"] * p["series"] * FIRST_WEEKS
    return [
        {
            "detector": d,
            "rate": r,
            "series": m["series"],
            "false_raises": m["false_raises"],
            "per_series_week": m["false_raises"] / (m["series"] * STEADY_WEEKS),
            "per_series_week_first_weeks": m["first"] / (m["series"] * FIRST_WEEKS),
        }
        for (d, r), m in merged.items()
    ]


def _merge_steps(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, float, float], list[dict[str, Any]]] = {}
    for p in parts:
        groups.setdefault((p["detector"], p["base"], p["factor"]), []).append(p)
    out = []
    for (d, b, f), ps in groups.items():
        n = sum(p["trials"] for p in ps)
        delays = [p["median_delay_days"] for p in ps if p["median_delay_days"] is not None]
        out.append(
            {
                "detector": d,
                "base": b,
                "factor": f,
                "trials": n,
                "detected": sum(p["detected"] * p["trials"] for p in ps) / n,
                # the median of the parts' medians: close enough for a table
                "median_delay_days": statistics.median(delays) if delays else None,
                "raised_in_week_before": sum(p["raised_in_week_before"] * p["trials"] for p in ps) / n,
                "bound": ps[0]["bound"],
            }
        )
    return out


def markdown(result: dict[str, Any]) -> str:
    by = {(s["detector"], s["rate"]): s for s in result["steady"]}
    rates = sorted({s["rate"] for s in result["steady"]})
    lines = [
        "**False hotspots per series-week** on steady Poisson streams (26 weeks from a new cell's first report; "
        f"target ≤ {result['budget']})",
        "",
        "| reports a week | series | window: all weeks | window: first 4 weeks "
        "| cusum: all weeks | cusum: first 4 weeks |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rates:
        w, c = by[("window", r)], by[("cusum", r)]
        lines.append(
            f"| {r:g} | {c['series']} | {w['per_series_week']:.4f} | {w['per_series_week_first_weeks']:.4f} "
            f"| {c['per_series_week']:.4f} | {c['per_series_week_first_weeks']:.4f} |"
        )
    steps = {(s["detector"], s["base"], s["factor"]): s for s in result["steps"]}
    keys = sorted({(s["base"], s["factor"]) for s in result["steps"]})
    lines += [
        "",
        "**Steps found within 7 days** (12 weeks at the baseline, then the rate × factor; median delay in days)",
        "",
        "| baseline a week | × | trials | window: found | window: delay | cusum: found | cusum: delay | bound |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def delay(x: float | None) -> str:
        return "–" if x is None else f"{x:.1f}"

    for b, f in keys:
        w, c = steps[("window", b, f)], steps[("cusum", b, f)]
        lines.append(
            f"| {b:g} | {f:g} | {c['trials']} | {w['detected']:.2f} | {delay(w['median_delay_days'])} "
            f"| {c['detected']:.2f} | {delay(c['median_delay_days'])} | {c['bound']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a few trials (seconds)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    result = evaluate(quick=args.quick, processes=args.processes)
    print(markdown(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
