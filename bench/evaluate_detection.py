"""Evaluate the household detectors on the dev data: real alarms, injected episodes, fixed rules.

    .venv/bin/python bench/evaluate_detection.py                      # DAIAD, all homes (~5 min on 2 cores)
    .venv/bin/python bench/evaluate_detection.py --homes 20 --curve ""  # quicker look

For every home the real series is replayed once as recorded (alarms per home-month, per kind). At
seeded random points after a 30-day warm-up the detector state is copied and a branch is replayed
with a synthetic episode injected — the episodes are synthetic, the homes and their routines real:

- collapse: right after a water use (a use interval picked uniformly), all use stops for 48 h;
- leak: from a random reading, a constant extra flow of 5 or 30 L/h for 30 h;
- burst: 300–700 L more within one reading's hour.

The fixed rules run on the same series and the same injections. A ``no_usage`` alarm is false when
water use resumed within 24 h of the silence's start; longer silences are absences (own column).
Reads ``../shared/data/dev`` (never ``holdout``). Results: docs/DETECTION.md.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from bench.datasets import DEV_DATA, LOCAL_TZ, load_ciws, load_daiad, load_weusedto
from detectors import DetectorBank, Observation
from detectors.bank import default_detectors
from detectors.no_usage import NoUsageDetector

Points = list[tuple[float, float]]
WARM_UP_S = 30 * 86400.0
H = 3600.0
SILENCE_RULES_H = (8.0, 12.0, 24.0)
FLOW_RULE_H = 24.0
INJECTIONS_PER_HOME = 6
DEFAULT_DATA = {
    "daiad": DEV_DATA / "daiad-2016" / "swm_trialA_clean.zip",
    "weusedto": DEV_DATA / "weusedto",
    "ciws": DEV_DATA / "ciws",
}
LOADERS = {"daiad": load_daiad, "weusedto": load_weusedto, "ciws": load_ciws}


def _bank(tz: str, sensitivity: float | None, only_no_usage: bool = False) -> DetectorBank:
    detectors = default_detectors()
    if sensitivity is not None:
        detectors = [
            NoUsageDetector(false_alarms_per_month=sensitivity) if d.name == "no_usage" else d for d in detectors
        ]
    if only_no_usage:
        detectors = [d for d in detectors if d.name == "no_usage"]
    return DetectorBank(detectors, tz=tz)


def _obs(meter: str, t: float, register: float) -> Observation:
    return Observation(meter, datetime.fromtimestamp(t, UTC), register)


def _is_use(points: Points, i: int) -> bool:
    return i > 0 and 0.5 <= points[i][1] - points[i - 1][1] < 5000


def _plan(
    points: Points, seed: int, window_s: tuple[float, float] = (WARM_UP_S, math.inf)
) -> dict[int, list[tuple[str, float]]]:
    """Injection points: reading index → [(episode, parameter)], from readings ``window_s`` seconds
    after the first (by default after the warm-up)."""
    rng = random.Random(seed)
    start, end = points[0][0] + window_s[0], points[0][0] + window_s[1]
    eligible = [i for i in range(1, len(points) - 60) if start <= points[i][0] < end]
    if not eligible:
        return {}
    uses = [i for i in eligible if _is_use(points, i)]
    plan: dict[int, list[tuple[str, float]]] = {}
    for _ in range(INJECTIONS_PER_HOME):
        if uses:
            plan.setdefault(rng.choice(uses), []).append(("collapse", 0.0))
        plan.setdefault(rng.choice(eligible), []).append(("leak", 5.0))
        plan.setdefault(rng.choice(eligible), []).append(("leak", 30.0))
        plan.setdefault(rng.choice(eligible), []).append(("burst", rng.uniform(300.0, 700.0)))
    return plan


def _branch(points: Points, i: int, episode: str, value: float) -> Points:
    """The readings after index ``i`` with the episode injected from ``points[i]``'s time."""
    t0, r0 = points[i]
    if episode == "collapse":
        return [(t, r0) for t, _ in points[i + 1 :] if t <= t0 + 48 * H]
    if episode == "leak":
        return [(t, r + value * (t - t0) / H) for t, r in points[i + 1 :] if t <= t0 + 30 * H]
    return [(t, r + value) for t, r in points[i + 1 : i + 2]]


def _first(bank: DetectorBank, meter: str, branch: Points, kind: str) -> float | None:
    for t, r in branch:
        if any(f.kind == kind and f.transition == "raised" for f in bank.update(_obs(meter, t, r))):
            return t
    return None


def _rule_silence(points: Points, i: int, branch: Points, hours: float) -> float | None:
    last_use = points[i][0]
    for t, _ in branch:
        if t - last_use >= hours * H:
            return t
    return None


def _rule_flow(points: Points, i: int, branch: Points) -> float | None:
    # The run of flowing intervals that includes the injection start.
    run_start = points[i][0]
    j = i
    while j > 0 and points[j][1] - points[j - 1][1] > 0:
        j -= 1
        run_start = points[j][0]
    previous = points[i]
    for t, r in branch:
        if r - previous[1] <= 0:
            run_start = t
        elif t - run_start >= FLOW_RULE_H * H:
            return t
        previous = (t, r)
    return None


def evaluate_home(args: tuple[str, Points, int, str, float | None, bool]) -> dict:
    meter, points, seed, tz, sensitivity, only_no_usage = args
    plan = _plan(points, seed)
    bank = _bank(tz, sensitivity, only_no_usage)
    raised: list[tuple[str, float]] = []
    injected: dict[str, list[float | None]] = {}
    for i, (t, r) in enumerate(points):
        raised += [(f.kind, f.since.timestamp()) for f in bank.update(_obs(meter, t, r)) if f.transition == "raised"]
        for episode, value in plan.get(i, []):
            branch = _branch(points, i, episode, value)
            state = bank.dump()
            copy = _bank(tz, sensitivity, only_no_usage)
            copy.load(state)
            key = episode if episode != "leak" else f"leak{value:.0f}"
            kind = {"collapse": "no_usage", "burst": "spike"}.get(episode, "continuous_flow")
            if only_no_usage and kind != "no_usage":
                continue
            found = _first(copy, meter, branch, kind)
            delay = None if found is None else (found - t) / H
            if episode == "burst":
                delay = 0.0 if found is not None and found == branch[0][0] else None
            injected.setdefault(key, []).append(delay)
            if episode == "collapse":
                for hours in SILENCE_RULES_H:
                    rule = _rule_silence(points, i, branch, hours)
                    injected.setdefault(f"collapse@{hours:.0f}h", []).append(None if rule is None else (rule - t) / H)
            elif episode == "leak":
                rule = _rule_flow(points, i, branch)
                injected.setdefault(f"{key}@flow24h", []).append(None if rule is None else (rule - t) / H)
    return {
        "meter": meter,
        "months": covered_months(points),
        "raised": raised,
        "injected": injected,
        "real": _real_rules(points),
        "next_use": _next_uses(points),
    }


def covered_months(points: Points) -> float:
    """Months of coverage, not of calendar: a meter silent for half a year is not watched then."""
    return sum(min(b[0] - a[0], 6 * H) for a, b in itertools.pairwise(points)) / 86400.0 / 30.4


def _next_uses(points: Points) -> list[float]:
    return [points[i - 1][0] for i in range(1, len(points)) if _is_use(points, i)]


def _real_rules(points: Points) -> dict[str, float]:
    """Fixed-rule alarms on the real series: silences (false / absence) and 24 h flow runs."""
    counts: Counter[str] = Counter()
    last_use = None
    run_start = None
    for i in range(1, len(points)):
        t0, t1 = points[i - 1][0], points[i][0]
        if _is_use(points, i):
            if last_use is not None:
                silence = (t0 - last_use) / H
                for hours in SILENCE_RULES_H:
                    if silence >= hours:
                        counts[f"{hours:.0f}h:{'false' if silence < 24 else 'absence'}"] += 1
            last_use = t1
        flowing = points[i][1] - points[i - 1][1] > 0
        if flowing and run_start is None:
            run_start = t0
        if not flowing:
            if run_start is not None and t0 - run_start >= FLOW_RULE_H * H:
                counts["flow24h"] += 1
            run_start = None
    return dict(counts)


def _stats(values: Sequence[float | None], window_h: float) -> tuple[float, float | None, float | None]:
    found = sorted(v for v in values if v is not None)
    recall = sum(1 for v in found if v <= window_h) / len(values) if values else float("nan")
    if not found:
        return recall, None, None
    p90 = found[min(len(found) - 1, round(0.9 * (len(found) - 1)))]
    return recall, statistics.median(found), p90


def summarise(results: list[dict]) -> dict:
    import bisect

    months = sum(r["months"] for r in results)
    per_kind: Counter[str] = Counter()
    false = absent = 0
    for r in results:
        uses = r["next_use"]
        for kind, since in r["raised"]:
            per_kind[kind] += 1
            if kind == "no_usage":
                j = bisect.bisect_left(uses, since)
                if j < len(uses) and uses[j] - since < 24 * H:
                    false += 1
                else:
                    absent += 1
    pooled: dict[str, list[float | None]] = {}
    for r in results:
        for key, values in r["injected"].items():
            pooled.setdefault(key, []).extend(values)
    rules: Counter[str] = Counter()
    for r in results:
        rules.update(r["real"])
    windows = {"collapse": 24.0, "leak5": 26.0, "leak30": 26.0, "burst": 0.0}
    injected = {key: (*_stats(values, windows[key.split("@")[0]]), len(values)) for key, values in pooled.items()}
    return {
        "homes": len(results),
        "home_months": months,
        "alarms_per_home_month": {k: v / months for k, v in sorted(per_kind.items())},
        "no_usage_false_per_home_month": false / months,
        "no_usage_absences_per_home_month": absent / months,
        "rules_per_home_month": {k: v / months for k, v in sorted(rules.items())},
        "injected": injected,
    }


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown(summary: dict, curve: list[tuple[float, dict]]) -> str:
    a, inj, rules = summary["alarms_per_home_month"], summary["injected"], summary["rules_per_home_month"]

    def row(name: str, alarms: str, key: str | None) -> str:
        recall, median, p90, n = inj.get(key, (None, None, None, 0)) if key else (None, None, None, 0)
        recall_text = "—" if recall is None else f"{recall:.1%} of {n}"
        return f"| {name} | {alarms} | {recall_text} | {_fmt(median)} | {_fmt(p90)} |"

    lines = [
        f"{summary['homes']} homes, {summary['home_months']:.0f} home-months.",
        "",
        "| detector or rule | alarms per home-month (real data) | recall in window (injected) "
        "| median delay h | p90 delay h |",
        "|---|---|---|---|---|",
        row(
            "`no_usage`",
            f"{summary['no_usage_false_per_home_month']:.2f} false + "
            f"{summary['no_usage_absences_per_home_month']:.2f} absences",
            "collapse",
        ),
    ]
    for hours in SILENCE_RULES_H:
        lines.append(
            row(
                f"rule: silence ≥ {hours:.0f} h",
                f"{rules.get(f'{hours:.0f}h:false', 0):.2f} false + "
                f"{rules.get(f'{hours:.0f}h:absence', 0):.2f} absences",
                f"collapse@{hours:.0f}h",
            )
        )
    lines += [
        row("`continuous_flow`, 5 L/h leak", f"{a.get('continuous_flow', 0):.2f} episodes", "leak5"),
        row("`continuous_flow`, 30 L/h leak", "(same)", "leak30"),
        row("rule: flow ≥ 24 h, 5 L/h leak", f"{rules.get('flow24h', 0):.2f} episodes", "leak5@flow24h"),
        row("rule: flow ≥ 24 h, 30 L/h leak", "(same)", "leak30@flow24h"),
        row("`spike`, 300–700 L burst", f"{a.get('spike', 0):.2f}", "burst"),
        row("`meter_offline`", f"{a.get('meter_offline', 0):.2f}", None),
        row("`data_quality`", f"{a.get('data_quality', 0):.2f}", None),
        row("`routine_change`", f"{a.get('routine_change', 0):.2f}", None),
    ]
    if curve:
        lines += [
            "",
            "`no_usage` sensitivity (alarm budget per home-month) → what it does:",
            "",
            "| sensitivity | false per home-month | absences | collapses within 24 h | median delay h | p90 delay h |",
            "|---|---|---|---|---|---|",
        ]
        for sensitivity, s in curve:
            recall, median, p90, _ = s["injected"]["collapse"]
            lines.append(
                f"| {sensitivity:g} | {s['no_usage_false_per_home_month']:.2f} | "
                f"{s['no_usage_absences_per_home_month']:.2f} | {recall:.1%} | {_fmt(median)} | {_fmt(p90)} |"
            )
    return "\n".join(lines)


def _run(meters: dict[str, Points], tz: str, sensitivity: float | None, only_no_usage: bool) -> dict:
    jobs = [
        (meter, points, seed, tz, sensitivity, only_no_usage)
        for seed, (meter, points) in enumerate(sorted(meters.items()))
    ]
    with Pool(2) as pool:
        results = pool.map(evaluate_home, jobs, chunksize=1)
    return summarise(results)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=sorted(LOCAL_TZ), default="daiad")
    parser.add_argument("--data", type=Path, default=None, help="the dataset's file or folder (default: ../shared)")
    parser.add_argument("--homes", type=int, default=None, help="only the first N homes (sorted ids)")
    parser.add_argument("--curve", default="0.1,0.2,0.3,0.5,1,2", help="no_usage sensitivities for the curve")
    parser.add_argument("--json", type=Path, default=Path("var/detection-eval.json"))
    args = parser.parse_args(argv)
    data = args.data or DEFAULT_DATA[args.dataset]
    if "holdout" in data.parts:
        parser.error("the holdout data is reserved for acceptance measurements")
    if not data.exists():
        print(f"evaluate_detection: {data} not found (the dev data lives in ../shared/data/dev)", file=sys.stderr)
        return 2
    meters = {name: points for name, points in LOADERS[args.dataset](data).items() if len(points) > 1000}
    if args.homes:
        meters = {m: meters[m] for m in sorted(meters)[: args.homes]}
    tz = LOCAL_TZ[args.dataset]
    print(f"evaluating {len(meters)} homes …", file=sys.stderr)
    summary = _run(meters, tz, None, False)
    curve = []
    for text in filter(None, args.curve.split(",")):
        print(f"no_usage sensitivity {text} …", file=sys.stderr)
        curve.append((float(text), _run(meters, tz, float(text), True)))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"default": summary, "curve": curve}, indent=1, default=str))
    print(markdown(summary, curve))
    return 0


if __name__ == "__main__":
    sys.exit(main())
