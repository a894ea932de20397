"""Area hotspots on simulated report streams in three neighbouring cells: false area hotspots on steady
streams, and a rise in all three cells found by the area watch versus the cells' own detectors.

    .venv/bin/python bench/area_hotspots.py             # full run (about 5 minutes on 2 cores)
    .venv/bin/python bench/area_hotspots.py --quick     # a few trials, for tests and a quick look
    .venv/bin/python bench/area_hotspots.py --json var/area_hotspots.json

Three cells in a line, A – B – C (A and B neighbours, B and C neighbours): three areas, {A, B},
{A, B, C} and {B, C}. Reports are fed as the worker feeds them: each cell's own ``HotspotDetector``
(``advance`` then ``update``), then the ``AreaWatch`` with the categories the cell is a hotspot of.

- **Steady streams**: each cell a Poisson process at 1 or 3 reports a week for 26 weeks. Every area
  hotspot raised is false; the rate is per area-week (three areas a line), beside the cells' own false
  hotspots per cell-week.
- **Steps**: 12 weeks at a baseline (1 or 3 a week in each cell), then all three cells × 2 or × 3 at
  once. Found when a hotspot is raised within 7 days of the step: by a cell's own detector (any of
  the three), by the area watch, or by either. ``bound``: the best one-week test at 0.01 false
  hotspots a week of the three cells' sum (Neyman-Pearson, ``bench/hotspots.py``).

Results: docs/INCIDENTS.md ("Neighbouring cells").
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing import Pool
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hotspots import BUDGET, WEEK_S, arrivals, np_bound
from detectors.incidents.area import AreaWatch, GridNeighbours
from detectors.incidents.hotspot import HotspotDetector

T0 = datetime(2026, 1, 5, tzinfo=UTC)
CATEGORY = "sanitation"
CELLS = ("A", "B", "C")
LINE = {"A": ["B"], "B": ["C"]}
LINE_AREAS = GridNeighbours(LINE).areas  # {A, B}, {A, B, C}, {B, C}
STEADY_RATES = (1.0, 3.0)
STEADY_WEEKS = 26
STEP_BASELINES = (1.0, 3.0)
STEP_FACTORS = (2.0, 3.0)
STEP_PRE_WEEKS = 12
STEP_POST_DAYS = 14
DAY_S = 86400.0


def feed(times_by_cell: dict[str, list[float]]) -> tuple[list[float], list[float]]:
    """The times (seconds from T0) of every cell hotspot and every area hotspot raised."""
    reports = sorted((t, cell) for cell, times in times_by_cell.items() for t in times)
    cells = {cell: HotspotDetector() for cell in CELLS}
    watch = AreaWatch(GridNeighbours(LINE))
    cell_raised: list[float] = []
    area_raised: list[float] = []
    for i, (t, cell) in enumerate(reports):
        ts = T0 + timedelta(seconds=t)
        detector = cells[cell]
        findings = detector.advance(ts)
        finding = detector.update(cell, CATEGORY, ts)
        findings += [finding] if finding else []
        cell_raised += [t for f in findings if f.transition == "raised"]
        hotspots = [c for g, c in detector.active() if g == cell]
        area = watch.update(cell, CATEGORY, ts, hotspots=hotspots, report_id=str(i))
        area_raised += [t for f in area if f.transition == "raised"]
    return cell_raised, area_raised


@dataclass(frozen=True, slots=True)
class SteadyJob:
    rate: float
    seeds: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StepJob:
    base: float
    factor: float
    seeds: tuple[int, ...]


def run_steady(job: SteadyJob) -> dict[str, Any]:
    cell_raises = area_raises = 0
    for seed in job.seeds:
        rng = random.Random(seed)
        cell, area = feed({c: arrivals(rng, job.rate, 0.0, STEADY_WEEKS * WEEK_S) for c in CELLS})
        cell_raises += len(cell)
        area_raises += len(area)
    return {"rate": job.rate, "lines": len(job.seeds), "cell_raises": cell_raises, "area_raises": area_raises}


def run_step(job: StepJob) -> dict[str, Any]:
    change = STEP_PRE_WEEKS * WEEK_S
    found = {"cells": 0, "area": 0, "either": 0}
    delays: dict[str, list[float]] = {k: [] for k in found}
    for seed in job.seeds:
        rng = random.Random(seed)
        times = {
            c: arrivals(rng, job.base, 0.0, change)
            + arrivals(rng, job.base * job.factor, change, change + STEP_POST_DAYS * DAY_S)
            for c in CELLS
        }
        cell, area = feed(times)
        within = {
            "cells": [t for t in cell if change <= t < change + 7 * DAY_S],
            "area": [t for t in area if change <= t < change + 7 * DAY_S],
        }
        within["either"] = within["cells"] + within["area"]
        for key, hits in within.items():
            if hits:
                found[key] += 1
                delays[key].append((min(hits) - change) / DAY_S)
    return {"base": job.base, "factor": job.factor, "trials": len(job.seeds), "found": found, "delays": delays}


def evaluate(quick: bool = False, processes: int = 2) -> dict[str, Any]:
    lines = 8 if quick else 200
    trials = 8 if quick else 200
    rates = (3.0,) if quick else STEADY_RATES
    steps = [(3.0, 3.0)] if quick else [(b, f) for b in STEP_BASELINES for f in STEP_FACTORS]
    parts = 4
    steady_jobs = [
        SteadyJob(r, tuple(range(int(r * 1000) + i * 100_000, int(r * 1000) + i * 100_000 + lines // parts)))
        for r in rates
        for i in range(parts)
    ]
    step_jobs = [
        StepJob(
            b,
            f,
            tuple(
                range(
                    9_000_000 + int(b * f * 1000) + i * 100_000,
                    9_000_000 + int(b * f * 1000) + i * 100_000 + trials // parts,
                )
            ),
        )
        for b, f in steps
        for i in range(parts)
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
    out = []
    for rate in sorted({p["rate"] for p in parts}):
        ps = [p for p in parts if p["rate"] == rate]
        n = sum(p["lines"] for p in ps)
        out.append(
            {
                "rate": rate,
                "lines": n,
                "per_cell_week": sum(p["cell_raises"] for p in ps) / (n * len(CELLS) * STEADY_WEEKS),
                "per_area_week": sum(p["area_raises"] for p in ps) / (n * len(LINE_AREAS) * STEADY_WEEKS),
            }
        )
    return out


def _merge_steps(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for base, factor in sorted({(p["base"], p["factor"]) for p in parts}):
        ps = [p for p in parts if (p["base"], p["factor"]) == (base, factor)]
        n = sum(p["trials"] for p in ps)
        row: dict[str, Any] = {"base": base, "factor": factor, "trials": n, "bound": np_bound(3 * base, factor, BUDGET)}
        for key in ("cells", "area", "either"):
            delays = [d for p in ps for d in p["delays"][key]]
            row[key] = sum(p["found"][key] for p in ps) / n
            row[f"{key}_delay_days"] = statistics.median(delays) if delays else None
        out.append(row)
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "**False hotspots on steady streams** in three neighbouring cells A – B – C (26 weeks from the cells' "
        f"first reports; target ≤ {result['budget']} per series-week)",
        "",
        "| reports a week in each cell | lines | cells' own: per cell-week | areas: per area-week |",
        "|---:|---:|---:|---:|",
    ]
    for s in result["steady"]:
        lines.append(f"| {s['rate']:g} | {s['lines']} | {s['per_cell_week']:.4f} | {s['per_area_week']:.4f} |")

    def delay(x: float | None) -> str:
        return "–" if x is None else f"{x:.1f}"

    lines += [
        "",
        "**A rise in all three cells at once, found within 7 days** (12 weeks at the baseline in each cell, "
        "then each × factor; median delay in days)",
        "",
        "| baseline a week in each cell | × | trials | cells' own: found | delay | area: found | delay "
        "| either: found | delay | bound (sum) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["steps"]:
        lines.append(
            f"| {s['base']:g} | {s['factor']:g} | {s['trials']} | {s['cells']:.2f} | {delay(s['cells_delay_days'])} "
            f"| {s['area']:.2f} | {delay(s['area_delay_days'])} | {s['either']:.2f} | {delay(s['either_delay_days'])} "
            f"| {s['bound']:.2f} |"
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
