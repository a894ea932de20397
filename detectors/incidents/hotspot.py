"""Hotspot early warning: a grid cell suddenly reporting one kind of problem far more often than usual.

The method is a Poisson CUSUM (Page 1954; Lucas 1985) on daily report counts, one per (grid cell,
category), with a baseline learned from that series' own past and a decision limit chosen for a
false-alarm budget per series (an in-control average run length, ARL, in weeks):

    baseline  λ  = reports in the baseline weeks before the recent window, with a weak Gamma prior
                   (``prior_rate`` a week, weight ``prior_weeks``); the CUSUM is designed on the
                   ``baseline_quantile`` (0.8) of its posterior, so a baseline learned from few weeks
                   does not spend the budget on its own error
    reference k  = (shift − 1) λ / ln(shift)   per day: the log-likelihood ratio for a rise to shift × λ
    S(day)       = max(0, S(day − 1) + reports(day) − k),   run over the last ``recent`` days (7)
    limit h      = the smallest limit whose in-control ARL (Markov chain, Brook & Evans 1972) is at
                   least ``arl_weeks`` weeks (200): at most 1/200 false hotspots a week per series

A hotspot is raised when S ≥ h and the reports since S last was 0 are at least ``min_count`` (3);
it is resolved when S is back at 0 (and a day has passed since it was raised).

A daily CUSUM needs a day's count to outgrow k + h, so it is slow to see a burst: many reports
within an hour or two (residents reporting one stairwell full of charging e-bikes). A second, short
scan watches for that: a burst is raised when the reports in the last ``burst_hours`` (2) hourly
bins reach ``burst_min`` (5: fewer is more often one problem told by several neighbours, which the
merged incident already shows) and the smallest count n whose chance under the design rate, over
every such window of a week, is within ``burst_arl_weeks`` (500 weeks):
(168 / w) · P(Poisson(2 w λ) ≥ n), since any sliding window of w hours lies inside two consecutive
blocks of w hours. Both budgets together: at most 1/200 + 1/500 false hotspots a week per series.

Until ``warmup_weeks`` (2) of baseline have been watched (counted from ``started``, or the
detector's first event: the worker keeps one detector per grid cell, so from the cell's first
report), a series is judged as if it had ``warmup_rate`` (6) reports a week: a new cell cannot
raise a burst of hotspots against a prior that knows nothing about it, but a flood of reports in
a new cell is still raised.

Event-time driven: ``update`` evaluates at the newest event time seen (the watermark); ``advance(now)``
lets quiet hotspots resolve when no new report arrives. State is a small dict of hourly counts
(``to_dict``, version 2); a version 1 state (the sliding-window test, ``hotspot_window.py``) loads
with its counts and active hotspots kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from statistics import NormalDist
from typing import Any

from detectors.base import Transition
from detectors.incidents.categories import CATEGORY_EN, CATEGORY_ZH, check_category
from detectors.incidents.poisson_limits import burst_limit, cusum_design, gamma_quantile, poisson_tail

STATE_VERSION = 2
_HOUR = 3600
_DAY_H = 24
_WEEK_H = 7 * 24
_V1_SPAN_H = 7 * 24 + 8 * _WEEK_H  # what a version 1 state kept: its recent week and 8 baseline weeks


def _hour(ts: datetime) -> int:
    if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("ts must be a timezone-aware datetime")
    return math.floor(ts.timestamp() / _HOUR)


def _at(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * _HOUR, UTC)


def _fmt(x: float) -> str:
    if x >= 0.95:
        return f"{x:.1f}"
    return f"{x:.2f}".rstrip("0").rstrip(".") if x > 0 else "0"


def _chance(p: float) -> tuple[str, str]:
    if p < 0.001:
        return "不到千分之一", "under 0.1 %"
    return f"约 {p * 100:.1g}%", f"about {p * 100:.1g} %"


@dataclass(frozen=True, slots=True)
class HotspotFinding:
    transition: Transition  # "raised" or "resolved"
    grid_cell: str
    category: str
    since: datetime  # when the hotspot was raised
    at: datetime  # event time of this decision
    count: int  # reports in the recent window
    window_days: float
    baseline_per_week: float  # the cell's usual weekly rate (with the prior)
    expected: float  # expected reports in the recent window
    p_value: float  # P(at least `count` in the window | the usual rate)
    explanation_zh: str
    explanation_en: str


@dataclass
class _Cell:
    hours: dict[int, int] = field(default_factory=dict)  # hour index → reports
    raised_at: int | None = None  # hour the current hotspot was raised


@dataclass(frozen=True, slots=True)
class _Score:
    cusum: float  # S now, in reports
    limit: float  # h
    run_count: int  # reports since S was last 0
    count: int  # reports in the recent window
    rate: float  # the baseline's posterior mean, a week (the warm-up rate while warming up)
    warming_up: bool  # less than warmup_weeks of baseline watched
    burst: int  # reports in the last burst_hours hourly bins
    burst_limit: int  # a burst of this many is raised

    @property
    def over_limit(self) -> bool:
        # S sums fractions of a report (k is k_units / units): allow for the rounding of those sums
        return self.cusum >= self.limit - 1e-9


class HotspotDetector:
    def __init__(
        self,
        recent: timedelta = timedelta(days=7),
        baseline_weeks: int = 12,
        arl_weeks: float = 200.0,
        shift: float = 3.0,
        warmup_weeks: float = 2.0,
        warmup_rate: float = 6.0,
        prior_rate: float = 0.5,
        prior_weeks: float = 1.0,
        baseline_quantile: float = 0.8,
        min_count: int = 3,
        started: datetime | None = None,
        burst_hours: int = 2,
        burst_arl_weeks: float = 500.0,
        burst_min: int = 5,
    ) -> None:
        if recent < timedelta(days=1) or baseline_weeks < 1 or prior_rate <= 0 or prior_weeks <= 0:
            raise ValueError("recent ≥ 1 day, baseline_weeks ≥ 1, prior_rate > 0 and prior_weeks > 0 are required")
        if (
            arl_weeks < 1
            or shift <= 1
            or warmup_weeks < 0
            or warmup_rate <= 0
            or not 0 < baseline_quantile < 1
            or min_count < 1
            or not 1 <= burst_hours <= 24
            or burst_arl_weeks < 1
            or burst_min < 1
        ):
            raise ValueError(
                "need arl_weeks ≥ 1, shift > 1, warmup_weeks ≥ 0, warmup_rate > 0, "
                "0 < baseline_quantile < 1, min_count ≥ 1, 1 ≤ burst_hours ≤ 24, burst_arl_weeks ≥ 1 and burst_min ≥ 1"
            )
        self.recent = recent
        self.baseline_weeks = baseline_weeks
        self.arl_weeks = arl_weeks
        self.shift = shift
        self.warmup_weeks = warmup_weeks
        self.warmup_rate = warmup_rate
        self.prior_rate = prior_rate
        self.prior_weeks = prior_weeks
        self.baseline_quantile = baseline_quantile
        self.min_count = min_count
        self.burst_hours = burst_hours
        self.burst_arl_weeks = burst_arl_weeks
        self.burst_min = burst_min
        self.started: int | None = _hour(started) if started is not None else None
        self.known_from: int | None = None  # counts before this hour were not kept (a version 1 state)
        self.watermark: int | None = None
        self._cells: dict[tuple[str, str], _Cell] = {}
        self._z = NormalDist().inv_cdf(baseline_quantile)

    @property
    def _run_days(self) -> int:
        return max(1, round(self.recent.total_seconds() / (_DAY_H * _HOUR)))

    def update(self, grid_cell: str, category: str, ts: datetime) -> HotspotFinding | None:
        """Count one report; return a finding if this cell and category became (or stopped being) a hotspot."""
        check_category(category)
        if not isinstance(grid_cell, str) or not grid_cell:
            raise ValueError("grid_cell must be a non-empty string")
        hour = _hour(ts)
        if self.started is None:
            self.started = hour
        self.watermark = hour if self.watermark is None else max(self.watermark, hour)
        if hour < self._baseline_start(self.watermark):
            return None  # too late to matter for any window
        cell = self._cells.setdefault((grid_cell, category), _Cell())
        cell.hours[hour] = cell.hours.get(hour, 0) + 1
        return self._evaluate(grid_cell, category, cell, self.watermark)

    def advance(self, now: datetime) -> list[HotspotFinding]:
        """Move event time forward to ``now``: resolve hotspots that subsided, forget old counts."""
        hour = _hour(now)
        self.watermark = hour if self.watermark is None else max(self.watermark, hour)
        findings = []
        for (grid_cell, category), cell in list(self._cells.items()):
            finding = self._evaluate(grid_cell, category, cell, self.watermark)
            if finding is not None:
                findings.append(finding)
            if not cell.hours and cell.raised_at is None:
                del self._cells[(grid_cell, category)]
        return findings

    def active(self) -> list[tuple[str, str]]:
        """The (grid cell, category) pairs that are hotspots now."""
        return sorted(k for k, c in self._cells.items() if c.raised_at is not None)

    def _run_start(self, now: int) -> int:
        """First hour of the recent window: whole days, today included."""
        return (now // _DAY_H - self._run_days + 1) * _DAY_H

    def _baseline_start(self, now: int) -> int:
        return self._run_start(now) - self.baseline_weeks * _WEEK_H

    def score(self, cell_hours: dict[int, int], now: int) -> _Score:
        run_start = self._run_start(now)
        first = max(self._baseline_start(now), self.started if self.started is not None else now)
        if self.known_from is not None:
            first = max(first, self.known_from)
        exposure_weeks = max(0, run_start - first) / _WEEK_H
        baseline = sum(n for h, n in cell_hours.items() if first <= h < run_start)
        shape = baseline + self.prior_rate * self.prior_weeks
        scale = exposure_weeks + self.prior_weeks
        rate = shape / scale
        design_rate = max(rate, gamma_quantile(shape, self._z) / scale)
        warming_up = exposure_weeks < self.warmup_weeks
        if warming_up:  # too little baseline: judged as if the series were busy
            design_rate = max(design_rate, self.warmup_rate)
        k, limit = cusum_design(design_rate, self.shift, self.arl_weeks)
        days = [0] * self._run_days
        first_day = run_start // _DAY_H
        for h, n in cell_hours.items():
            if run_start <= h <= now:
                days[h // _DAY_H - first_day] += n
        s, run_count = 0.0, 0
        for x in days:
            s = max(0.0, s + x - k)
            run_count = run_count + x if s > 0 else 0
        burst = sum(n for h, n in cell_hours.items() if now - self.burst_hours < h <= now)
        burst_at = max(self.burst_min, burst_limit(design_rate, self.burst_hours, self.burst_arl_weeks))
        return _Score(s, limit, run_count, sum(days), design_rate if warming_up else rate, warming_up, burst, burst_at)

    def _evaluate(self, grid_cell: str, category: str, cell: _Cell, now: int) -> HotspotFinding | None:
        horizon = self._baseline_start(now)
        for h in [h for h in cell.hours if h < horizon]:
            del cell.hours[h]
        score = self.score(cell.hours, now)
        transition: Transition
        sustained = score.over_limit and score.run_count >= self.min_count
        burst = score.burst >= score.burst_limit
        if cell.raised_at is None and (sustained or burst):
            cell.raised_at = now
            transition = "raised"
        elif cell.raised_at is not None and score.cusum <= 0 and now - cell.raised_at >= _DAY_H and not burst:
            transition = "resolved"
        else:
            return None
        since = _at(cell.raised_at)
        if transition == "resolved":
            cell.raised_at = None
        expected = score.rate * self._run_days / 7
        p = poisson_tail(score.count, expected)
        burst_hours = self.burst_hours if transition == "raised" and burst and not sustained else None
        return self._finding(
            transition,
            grid_cell,
            category,
            since,
            _at(now),
            score.burst if burst_hours else score.count,
            score.rate,
            expected,
            p,
            score.warming_up,
            burst_hours,
        )

    def _finding(
        self,
        transition: Transition,
        grid_cell: str,
        category: str,
        since: datetime,
        at: datetime,
        count: int,
        rate: float,
        expected: float,
        p: float,
        warming_up: bool = False,
        burst_hours: int | None = None,
    ) -> HotspotFinding:
        days = float(self._run_days)
        d = f"{days:g}"
        zh_cat, en_cat = CATEGORY_ZH[category], CATEGORY_EN[category]
        plural = "report" if count == 1 else "reports"
        if burst_hours is not None:
            usual = f"平时约每周 {_fmt(rate)} 起" if not warming_up else "该网格观察时间还短"
            usual_en = f"usually {_fmt(rate)} a week" if not warming_up else "the cell has not been watched long"
            zh = (
                f"网格 {grid_cell} 在 {burst_hours} 小时内集中出现 {count} 起“{zh_cat}”类报告（{usual}），"
                f"可能是同一处正在发生的问题，请尽快查看。"
            )
            en = (
                f"{count} {plural} of {en_cat} in cell {grid_cell} within {burst_hours} hours ({usual_en}): "
                f"probably one problem happening now. Go and look soon."
            )
        elif transition == "raised" and warming_up:
            zh = (
                f"网格 {grid_cell} 近 {d} 天有 {count} 起“{zh_cat}”类报告；该网格观察时间还短，"
                f"即使按每周 {_fmt(rate)} 起的繁忙网格衡量也明显偏多，请关注是否有共同原因。"
            )
            en = (
                f"{count} {plural} of {en_cat} in cell {grid_cell} in {d} days; the cell has not been watched "
                f"long, and this is far more than even a busy cell's {_fmt(rate)} a week. Look for a common cause."
            )
        elif transition == "raised":
            chance_zh, chance_en = _chance(p)
            zh = (
                f"网格 {grid_cell} 近 {d} 天有 {count} 起“{zh_cat}”类报告，平时约每周 {_fmt(rate)} 起，"
                f"明显偏多（纯属偶然的可能{chance_zh}），请关注是否有共同原因。"
            )
            en = (
                f"{count} {plural} of {en_cat} in cell {grid_cell} in {d} days; usually {_fmt(rate)} a week "
                f"(chance of this by luck {chance_en}). Look for a common cause."
            )
        else:
            zh = f"网格 {grid_cell} 的“{zh_cat}”类报告已回落：近 {d} 天 {count} 起，平时约每周 {_fmt(rate)} 起。"
            en = (
                f"Reports of {en_cat} in cell {grid_cell} have subsided: {count} in {d} days; "
                f"usually {_fmt(rate)} a week."
            )
        return HotspotFinding(
            transition, grid_cell, category, since, at, count, days, rate, expected, float(f"{p:.3g}"), zh, en
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "version": STATE_VERSION,
            "method": "poisson_cusum",
            "params": {
                "recent_s": self.recent.total_seconds(),
                "baseline_weeks": self.baseline_weeks,
                "arl_weeks": self.arl_weeks,
                "shift": self.shift,
                "warmup_weeks": self.warmup_weeks,
                "warmup_rate": self.warmup_rate,
                "prior_rate": self.prior_rate,
                "prior_weeks": self.prior_weeks,
                "baseline_quantile": self.baseline_quantile,
                "min_count": self.min_count,
                "burst_hours": self.burst_hours,
                "burst_arl_weeks": self.burst_arl_weeks,
                "burst_min": self.burst_min,
            },
            "started_hour": self.started,
            "known_from_hour": self.known_from,
            "watermark_hour": self.watermark,
            "cells": [
                {
                    "grid_cell": g,
                    "category": c,
                    "hours": {str(h): n for h, n in sorted(cell.hours.items())},
                    "raised_hour": cell.raised_at,
                }
                for (g, c), cell in sorted(self._cells.items())
            ],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> HotspotDetector:  # decoded JSON
        """A version 2 state as saved; a version 1 state (the sliding-window test) with this detector's
        defaults, its counts and its active hotspots: the baseline counts only the weeks it had kept."""
        version = state.get("version")
        if version == 1:
            detector = cls()
            watermark = state["watermark_hour"]
            if watermark is not None:
                kept_from = int(watermark) - _V1_SPAN_H
                started = state["started_hour"]
                detector.known_from = kept_from if started is None else max(kept_from, int(started))
        elif version == STATE_VERSION:
            p = state["params"]
            detector = cls(
                timedelta(seconds=float(p["recent_s"])),
                int(p["baseline_weeks"]),
                float(p["arl_weeks"]),
                float(p["shift"]),
                float(p["warmup_weeks"]),
                float(p["warmup_rate"]),
                float(p["prior_rate"]),
                float(p["prior_weeks"]),
                float(p["baseline_quantile"]),
                int(p["min_count"]),
                burst_hours=int(p.get("burst_hours", 2)),
                burst_arl_weeks=float(p.get("burst_arl_weeks", 500.0)),
                burst_min=int(p.get("burst_min", 5)),
            )
            detector.known_from = state.get("known_from_hour")
        else:
            raise ValueError(f"unsupported hotspot state version {version!r}")
        detector.started = state["started_hour"]
        detector.watermark = state["watermark_hour"]
        for item in state["cells"]:
            check_category(item["category"])
            detector._cells[(item["grid_cell"], item["category"])] = _Cell(
                {int(h): int(n) for h, n in item["hours"].items()}, item["raised_hour"]
            )
        return detector
