"""Evaluate the `no_usage` check tier (ask the resident first) against today's alarm alone, on the dev data.

    .venv/bin/python bench/evaluate_check_ins.py                 # DAIAD, all homes
    .venv/bin/python bench/evaluate_check_ins.py --homes 12      # quicker look
    .venv/bin/python bench/evaluate_check_ins.py --sweep 2:10,3:12 --json var/check-ins-eval.json

Every home is replayed through ``no_usage`` alone (``NoUsageDetector()``'s defaults: alarm 0.3/month,
ceiling 18 h) twice: without the check tier (``check_ins_per_month=0``, today) and with it (by default
the detector's: 2/month, ceiling 11 h). The router's rules are simulated from the findings:

- at a ``check_in`` the resident is asked; on a real silence (not a collapse) a modelled resident
  answers with probability p (0.7, 0.9; one seeded draw per silence, shared by every p): "fine" when
  the silence ends within 24 h, "away" (我不在家) when it is an absence (goes on past 24 h);
- unanswered: carers are told at the check-in + 30 min, or at the ``raised`` if that comes first;
- answered "fine": carers are told only if the silence reaches 24 h (critical);
- answered "away": away mode holds until water is used again, which ends the silence: nobody else is
  told (the old model, "fine" to every silence, is kept in the JSON as ``absences_if_fine``);
- a ``raised`` without a check-in (no check tier, or a silence first seen past the alarm limit):
  carers at the raise.

Collapses are injected as ``bench/evaluate_detection.py`` does (the same seeds and points, after a
30-day warm-up), and again at 6 seeded points in each household's first 30 days; a collapsed
resident never answers. First contact is the check-in, or the carers' alarm where there is none.
A silence that reached carers is a false alarm when water use resumed within 24 h of its start, an
absence otherwise (as in evaluate_detection.py).

Feedback is simulated as ``shouwang replay --feedback`` does: every alarm that reached carers on a
silence that ended by itself within 24 h is answered ``false_alarm`` (``bank.learn_feedback``) when
the silence ends; ``+ resident_fine`` also teaches from every check-in the resident answered "fine" on
such a silence (the issue's ``resident_fine`` outcome). Reads ``../shared/data/dev`` (never
``holdout``). Results: docs/DETECTION.md.
"""

from __future__ import annotations

import argparse
import bisect
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.datasets import LOCAL_TZ
from bench.evaluate_detection import (
    DEFAULT_DATA,
    LOADERS,
    H,
    Points,
    _branch,
    _fmt,
    _next_uses,
    _obs,
    _plan,
    _stats,
    covered_months,
)
from detectors import DetectorBank
from detectors.no_usage import NoUsageDetector

DAY = 86400.0
DEFAULTS = NoUsageDetector()  # the settings measured unless told otherwise
AWAY_CAP_DAYS = 30.0  # SHOUWANG_AWAY_MAX_DAYS: an "away" answer past it is only counted (``away_past_cap``)
TIMEOUT_H = 0.5  # SHOUWANG_CHECK_IN_TIMEOUT
CRITICAL_H = 24.0  # answered "fine", carers are told all the same once the silence reaches a day
WINDOW_H = 24.0  # a collapse must reach carers within this
P_VALUES = (0.7, 0.9)
FEEDBACK_P = 0.9
FIRST_DAYS = 30.0
FEEDBACK_LABELS = {"": "", "false_alarm": " + feedback", "resident_fine": " + feedback + resident_fine"}
# Real silences are attributed to a window of the household's life by their start (days since its first reading).
WINDOWS = {"all": (0.0, float("inf")), "first30": (0.0, FIRST_DAYS), "months2-3": (FIRST_DAYS, 3 * FIRST_DAYS)}


@dataclass(frozen=True)
class Tier:
    """``no_usage`` settings: the alarm and, unless ``check_ins_per_month`` is 0, the check tier."""

    check_ins_per_month: float
    check_ceiling_h: float = DEFAULTS.check_ceiling_h
    alarms_per_month: float = DEFAULTS.false_alarms_per_month
    ceiling_h: float = DEFAULTS.ceiling_h

    @property
    def label(self) -> str:
        if not self.check_ins_per_month:
            return "today: alarm only"
        return f"check tier {self.check_ins_per_month:g}/month, ceiling {self.check_ceiling_h:g} h"

    def bank(self, tz: str) -> DetectorBank:
        detector = NoUsageDetector(
            false_alarms_per_month=self.alarms_per_month,
            ceiling_h=self.ceiling_h,
            check_ins_per_month=self.check_ins_per_month,
            check_ceiling_h=self.check_ceiling_h,
        )
        return DetectorBank([detector], tz=tz)


TODAY = Tier(0.0)


@dataclass
class Episode:
    """One real silence the detector spoke about (epoch seconds; None: did not happen)."""

    since: float
    check_at: float | None = None
    raised_at: float | None = None
    resolved_at: float | None = None


def _answer(seed: int, since: float) -> float:
    """The resident's draw for one silence: answers when below p (the same draw for every p and run)."""
    return random.Random(seed * 1_000_003 + int(since)).random()


def answer_for(draw: float, p: float, absence: bool) -> str | None:
    """What the modelled resident answers a check-in with: None (no answer), "away" or "fine"."""
    if draw >= p:
        return None
    return "away" if absence else "fine"


def carers_at(episode: Episode, answer: str | None, critical_at: float | None) -> float | None:
    """When the router tells carers about a silence (None: never), from the findings and the answer
    (None: unanswered; "fine": carers at ``critical_at``; "away": away mode until water is used again)."""
    if episode.check_at is None:
        told = episode.raised_at
    elif answer is None:
        told = episode.check_at + TIMEOUT_H * H
        if episode.raised_at is not None:
            told = min(told, episode.raised_at)
    elif answer == "away":
        told = None
    else:
        told = critical_at
    if told is None or (episode.resolved_at is not None and told >= episode.resolved_at):
        return None
    return told


def _critical_at(times: list[float], uses: list[float], since: float) -> float | None:
    """The first reading at which the silence from ``since`` is a day long, if no use came before it."""
    k = bisect.bisect_left(times, since + CRITICAL_H * H)
    if k == len(times):
        return None
    j = bisect.bisect_left(uses, since)
    next_use = uses[j] if j < len(uses) else float("inf")  # start of the next interval with use
    return times[k] if next_use >= times[k] else None


def _collapse(bank: DetectorBank, meter: str, branch: Points, t0: float) -> tuple[float | None, float | None]:
    """(first contact, carers told) in hours after the last use, for a resident who never answers."""
    check = None
    for t, r in branch:
        for finding in bank.update(_obs(meter, t, r)):
            if finding.kind != "no_usage":
                continue
            if finding.transition == "check_in" and check is None:
                check = t
            elif finding.transition == "raised":
                told = t if check is None else min(check + TIMEOUT_H * H, t)
                return ((check if check is not None else t) - t0) / H, (told - t0) / H
    if check is not None:
        return (check - t0) / H, (check + TIMEOUT_H * H - t0) / H
    return None, None


def replay_home(
    meter: str, points: Points, tz: str, tier: Tier, seed: int, *, feedback: str = ""
) -> tuple[list[Episode], dict[str, list[tuple[float | None, float | None]]]]:
    """The real series through one tier, with the router simulated online (for ``feedback`` at p = 0.9:
    "" none, "false_alarm", or "resident_fine" too), and collapses injected as branches from copies of
    the state."""
    plan: dict[int, list[str]] = {}  # reading index → the windows of the collapses injected there
    for window, chosen in (
        ("all", _plan(points, seed)),  # evaluate_detection.py's points: after the warm-up
        ("first30", _plan(points, seed + 1_000_000, (0.0, FIRST_DAYS * DAY))),
    ):
        for i, episodes in chosen.items():
            plan.setdefault(i, []).extend(window for episode, _ in episodes if episode == "collapse")
    bank = tier.bank(tz)
    open_: dict[float, Episode] = {}
    done: list[Episode] = []
    collapses: dict[str, list[tuple[float | None, float | None]]] = {"all": [], "first30": []}
    for i, (t, r) in enumerate(points):
        for finding in bank.update(_obs(meter, t, r)):
            if finding.kind != "no_usage":
                continue
            since, at = finding.since.timestamp(), finding.at.timestamp()
            episode = open_.setdefault(since, Episode(since))
            if finding.transition == "check_in":
                episode.check_at = at
            elif finding.transition == "raised":
                episode.raised_at = at
            elif finding.transition == "resolved":
                episode.resolved_at = at
                done.append(open_.pop(since))
                if feedback and at - since <= CRITICAL_H * H:
                    answer = answer_for(_answer(seed, since), FEEDBACK_P, absence=False)
                    told = carers_at(episode, answer, None)
                    if told is not None:
                        bank.learn_feedback("no_usage", since, (told - since) / H)
                    elif feedback == "resident_fine" and answer == "fine" and episode.check_at is not None:
                        bank.learn_feedback("no_usage", since, (episode.check_at - since) / H)
        for window in plan.get(i, ()):
            copy = tier.bank(tz)
            copy.load(bank.dump())
            collapses[window].append(_collapse(copy, meter, _branch(points, i, "collapse", 0.0), t))
    return done + list(open_.values()), collapses


def evaluate_home(args: tuple[str, Points, int, str, list[Tier]]) -> dict:
    meter, points, seed, tz, tiers = args
    t0 = points[0][0]
    times = [t for t, _ in points]
    uses = _next_uses(points)
    months = {}
    for name, (lo, hi) in WINDOWS.items():
        window = [p for p in points if lo * DAY <= p[0] - t0 < hi * DAY]
        months[name] = covered_months(window)
    runs = {}
    checked = [tier for tier in tiers if tier.check_ins_per_month]
    for tier, feedback in [
        (TODAY, ""),
        (TODAY, "false_alarm"),
        *((tier, "") for tier in checked),
        (checked[0], "false_alarm"),
        (checked[0], "resident_fine"),
    ]:
        episodes, collapses = replay_home(meter, points, tz, tier, seed, feedback=feedback)
        rows = []
        for e in episodes:
            j = bisect.bisect_left(uses, e.since)
            ends = uses[j] if j < len(uses) else times[-1]  # the silence's end (or the data's)
            false = j < len(uses) and uses[j] - e.since < CRITICAL_H * H
            draw, critical = _answer(seed, e.since), _critical_at(times, uses, e.since)
            rows.append(
                {
                    "day": (e.since - t0) / DAY,
                    "length_h": (ends - e.since) / H,
                    "check": e.check_at is not None,
                    "away_days": None if e.check_at is None else (ends - e.check_at) / DAY,
                    "raised": e.raised_at,
                    "false": false,
                    "answer": draw,
                    "carers": {str(p): carers_at(e, answer_for(draw, p, not false), critical) for p in P_VALUES},
                    # the old model: the resident answers "fine" to every silence, absences included
                    "carers_if_fine": {str(p): carers_at(e, answer_for(draw, p, False), critical) for p in P_VALUES},
                }
            )
        runs[tier.label + FEEDBACK_LABELS[feedback]] = {"episodes": rows, "collapses": collapses}
    return {"meter": meter, "months": months, "runs": runs}


def _rates(results: list[dict], run: str, window: str, p: float) -> dict[str, float]:
    """Per home-month in ``window``: carers told (false, absences; how many of them raised with nobody
    asked first, how many unanswered), check-ins, the absences told if residents answered "fine" to
    everything (the old model), and absences answered "away" for longer than the away cap."""
    lo, hi = WINDOWS[window]
    months = sum(r["months"][window] for r in results)
    keys = ["false", "absences", "direct", "absences_unanswered", "absences_direct", "check_ins"]
    keys += ["absences_if_fine", "away_past_cap"]
    counts = dict.fromkeys(keys, 0.0)
    for r in results:
        for e in r["runs"][run]["episodes"]:
            if not lo <= e["day"] < hi:
                continue
            counts["check_ins"] += e["check"]
            answered = e["check"] and e["answer"] < p
            if not e["false"]:
                counts["absences_if_fine"] += e["carers_if_fine"][str(p)] is not None
                counts["away_past_cap"] += answered and e["away_days"] > AWAY_CAP_DAYS
            if e["carers"][str(p)] is None:
                continue
            counts["false" if e["false"] else "absences"] += 1
            counts["direct"] += not e["check"]  # raised with nobody asked first (a silence first seen past it)
            counts["absences_unanswered"] += not e["false"] and e["check"]
            counts["absences_direct"] += not e["false"] and not e["check"]
    return {key: value / months for key, value in counts.items()} | {"home_months": months}


def summarise(results: list[dict], run: str, window: str, p: float) -> dict:
    pooled = [pair for r in results for pair in r["runs"][run]["collapses"][window]]
    contact = _stats([c for c, _ in pooled], WINDOW_H)
    carers = _stats([k for _, k in pooled], WINDOW_H)
    return {
        "collapses": len(pooled),
        "first_contact_median_h": contact[1],
        "first_contact_p90_h": contact[2],
        "collapses_to_carers_within_24h": carers[0],
        "carers_median_h": carers[1],
        **_rates(results, run, window, p),
    }


def markdown(report: dict) -> str:
    lines = [
        f"{report['homes']} homes, {report['home_months']:.0f} home-months "
        f"({report['home_months_first30']:.0f} in the first 30 days).",
        "",
        "| setting | window | first contact: median h | p90 h | carers told of a non-emergency per home-month "
        "(false + absences) | absences: unanswered + nobody asked | check-ins per home-month "
        "| collapses to carers ≤ 24 h | collapse to carers: median h |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    names = {"all": "all (collapses after day 30)", "first30": "first 30 days"}
    for window in ("all", "first30"):
        for row in report["tiers"]:
            if row["window"] != window:
                continue
            s = row["summary"]
            who = row["run"] if row["p"] is None else f"{row['run']}, p = {row['p']:g}"
            lines.append(
                f"| {who} | {names[window]} | {_fmt(s['first_contact_median_h'])} | {_fmt(s['first_contact_p90_h'])} "
                f"| {s['false'] + s['absences']:.2f} ({s['false']:.2f} + {s['absences']:.2f}) "
                f"| {s['absences_unanswered']:.2f} + {s['absences_direct']:.2f} | {s['check_ins']:.2f} "
                f"| {s['collapses_to_carers_within_24h']:.1%} of {s['collapses']} | {_fmt(s['carers_median_h'])} |"
            )
    lines.append("")
    for window in ("all", "first30"):
        for row in report["tiers"]:
            s = row["summary"]
            if row["window"] == window and row["p"] is not None and row["run"] == report["tiers"][1]["run"]:
                lines.append(
                    f"{names[window]}, p = {row['p']:g}: absences told if the resident answered “fine” to "
                    f"everything {s['absences_if_fine']:.2f} a home-month; answered “away” past the "
                    f"{AWAY_CAP_DAYS:g}-day cap {s['away_past_cap']:.3f}."
                )
    lines += [
        "",
        f"Feedback (p = {FEEDBACK_P:g} where the resident is asked): carers' false alarms and check-ins per "
        "home-month; collapses after day 30.",
        "",
        "| setting | false alarms month 1 | months 2–3 | check-ins month 1 | months 2–3 "
        "| first contact: median h | p90 h | collapses to carers ≤ 24 h |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["feedback"]:
        one, later, s = row["first30"], row["months2-3"], row["collapses"]
        asked = not row["run"].startswith(TODAY.label)
        checks = f"{one['check_ins']:.2f} | {later['check_ins']:.2f}" if asked else "— | —"
        lines.append(
            f"| {row['run']} | {one['false']:.2f} | {later['false']:.2f} | {checks} "
            f"| {_fmt(s['first_contact_median_h'])} | {_fmt(s['first_contact_p90_h'])} "
            f"| {s['collapses_to_carers_within_24h']:.1%} |"
        )
    lines += ["", f"Raised episodes that differ between today and the check tier: {report['raised_differ']}."]
    return "\n".join(lines)


def report(results: list[dict], tiers: list[Tier]) -> dict:
    tier_rows: list[dict] = []
    for window in ("all", "first30"):
        today = summarise(results, TODAY.label, window, FEEDBACK_P)  # p does not matter: nobody is asked
        tier_rows.append({"run": TODAY.label, "p": None, "window": window, "summary": today})
        for tier in tiers:
            for p in P_VALUES:
                tier_rows.append(
                    {"run": tier.label, "p": p, "window": window, "summary": summarise(results, tier.label, window, p)}
                )
    feedback_rows = []
    for tier in (TODAY, tiers[0]):
        for label in FEEDBACK_LABELS.values():
            run = tier.label + label
            if run not in results[0]["runs"]:
                continue
            windows = {w: _rates(results, run, w, FEEDBACK_P) for w in ("first30", "months2-3")}
            feedback_rows.append({"run": run, **windows, "collapses": summarise(results, run, "all", FEEDBACK_P)})
    # The check tier never moves the alarm: the raised episodes of both runs should be the same.
    differ = sum(
        {(e["day"], e["raised"]) for e in r["runs"][TODAY.label]["episodes"] if e["raised"] is not None}
        != {(e["day"], e["raised"]) for e in r["runs"][tiers[0].label]["episodes"] if e["raised"] is not None}
        for r in results
    )
    return {
        "homes": len(results),
        "home_months": sum(r["months"]["all"] for r in results),
        "home_months_first30": sum(r["months"]["first30"] for r in results),
        "settings": {"alarm_per_month": TODAY.alarms_per_month, "ceiling_h": TODAY.ceiling_h, "timeout_h": TIMEOUT_H},
        "tiers": tier_rows,
        "feedback": feedback_rows,
        "raised_differ": f"{differ} of {len(results)} homes",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=sorted(LOCAL_TZ), default="daiad")
    parser.add_argument("--data", type=Path, default=None, help="the dataset's file or folder (default: ../shared)")
    parser.add_argument("--homes", type=int, default=None, help="only the first N homes (sorted ids)")
    parser.add_argument(
        "--check-ins",
        type=float,
        default=DEFAULTS.check_ins_per_month,
        help="check-ins per month, the check tier's budget (default: the detector's)",
    )
    parser.add_argument(
        "--check-ceiling",
        type=float,
        default=DEFAULTS.check_ceiling_h,
        help="the check tier's ceiling, hours (default: the detector's)",
    )
    parser.add_argument("--sweep", default="", help="more check tiers to compare, as budget:ceiling,…")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    data = args.data or DEFAULT_DATA[args.dataset]
    if "holdout" in data.parts:
        parser.error("the holdout data is reserved for acceptance measurements")
    if not data.exists():
        print(f"evaluate_check_ins: {data} not found (the dev data lives in ../shared/data/dev)", file=sys.stderr)
        return 2
    if args.check_ins <= 0:
        parser.error("--check-ins must be above 0 (today's alarm alone is always measured beside it)")
    tiers = [Tier(args.check_ins, args.check_ceiling)]
    for text in filter(None, args.sweep.split(",")):
        budget, _, ceiling = text.partition(":")
        tiers.append(Tier(float(budget), float(ceiling or args.check_ceiling)))
    meters = {name: points for name, points in LOADERS[args.dataset](data).items() if len(points) > 1000}
    if args.homes:
        meters = {m: meters[m] for m in sorted(meters)[: args.homes]}
    tz = LOCAL_TZ[args.dataset]
    print(f"evaluating {len(meters)} homes, {len(tiers)} check tier(s) …", file=sys.stderr)
    jobs = [(meter, points, seed, tz, tiers) for seed, (meter, points) in enumerate(sorted(meters.items()))]
    with Pool(2) as pool:
        results = pool.map(evaluate_home, jobs, chunksize=1)
    figures = report(results, tiers)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1))
    print(markdown(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
