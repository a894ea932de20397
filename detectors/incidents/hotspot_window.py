"""The sliding-window hotspot test used before the CUSUM (kept for comparison: bench/hotspots.py).

For each (grid cell, category) it counts reports in the last ``recent`` days (7) and compares them
with that cell's own rate over the ``baseline_weeks`` (8) weeks before, shrunk towards a prior rate:

    rate per week = (reports in the baseline + prior_rate × prior_weeks) / (weeks observed + prior_weeks)
    expected      = rate × (recent / 1 week)
    p             = P(N ≥ recent count) for N ~ Poisson(expected)

A hotspot is raised when ``p < p_raise`` (0.01) and there are at least ``min_count`` (3) recent
reports; it is resolved when the recent count falls below ``min_count`` or ``p ≥ p_clear`` (0.05).
Tested at every report, the 1 % level is spent many times a week: on a steady stream it raises
0.03 to 0.12 false hotspots per week (docs/INCIDENTS.md). Its state (version 1) is what
``HotspotDetector.from_dict`` still accepts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from detectors.base import Transition
from detectors.incidents.categories import CATEGORY_EN, CATEGORY_ZH, check_category
from detectors.incidents.hotspot import _HOUR, HotspotFinding, _at, _chance, _fmt, _hour, poisson_tail

STATE_VERSION = 1


@dataclass
class _Cell:
    hours: dict[int, int] = field(default_factory=dict)  # hour index → reports
    raised_at: int | None = None  # hour the current hotspot was raised


class WindowHotspotDetector:
    def __init__(
        self,
        recent: timedelta = timedelta(days=7),
        baseline_weeks: int = 8,
        prior_rate: float = 0.5,
        prior_weeks: float = 2.0,
        p_raise: float = 0.01,
        p_clear: float = 0.05,
        min_count: int = 3,
        started: datetime | None = None,
    ) -> None:
        if recent < timedelta(hours=1) or baseline_weeks < 1 or prior_rate <= 0 or prior_weeks <= 0:
            raise ValueError("recent ≥ 1 h, baseline_weeks ≥ 1, prior_rate > 0 and prior_weeks > 0 are required")
        if not 0 < p_raise <= p_clear < 1 or min_count < 1:
            raise ValueError("need 0 < p_raise ≤ p_clear < 1 and min_count ≥ 1")
        self.recent = recent
        self.baseline_weeks = baseline_weeks
        self.prior_rate = prior_rate
        self.prior_weeks = prior_weeks
        self.p_raise = p_raise
        self.p_clear = p_clear
        self.min_count = min_count
        self.started: int | None = _hour(started) if started is not None else None
        self.watermark: int | None = None
        self._cells: dict[tuple[str, str], _Cell] = {}

    @property
    def _recent_hours(self) -> int:
        return max(1, round(self.recent.total_seconds() / _HOUR))

    @property
    def _span_hours(self) -> int:
        return self._recent_hours + self.baseline_weeks * 7 * 24

    def update(self, grid_cell: str, category: str, ts: datetime) -> HotspotFinding | None:
        """Count one report; return a finding if this cell and category became (or stopped being) a hotspot."""
        check_category(category)
        if not isinstance(grid_cell, str) or not grid_cell:
            raise ValueError("grid_cell must be a non-empty string")
        hour = _hour(ts)
        if self.started is None:
            self.started = hour
        self.watermark = hour if self.watermark is None else max(self.watermark, hour)
        if hour <= self.watermark - self._span_hours:
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

    def _evaluate(self, grid_cell: str, category: str, cell: _Cell, now: int) -> HotspotFinding | None:
        recent_start = now - self._recent_hours  # the recent window is (recent_start, now]
        baseline_start = recent_start - self.baseline_weeks * 7 * 24
        for h in [h for h in cell.hours if h <= baseline_start]:
            del cell.hours[h]
        count = sum(n for h, n in cell.hours.items() if h > recent_start)
        baseline = sum(n for h, n in cell.hours.items() if h <= recent_start)
        started = self.started if self.started is not None else now
        weeks_seen = min(float(self.baseline_weeks), max(0.0, (recent_start - started) / (7 * 24)))
        rate = (baseline + self.prior_rate * self.prior_weeks) / (weeks_seen + self.prior_weeks)
        window_weeks = self._recent_hours / (7 * 24)
        expected = rate * window_weeks
        p = poisson_tail(count, expected)
        transition: Transition
        if cell.raised_at is None and count >= self.min_count and p < self.p_raise:
            cell.raised_at = now
            transition = "raised"
        elif cell.raised_at is not None and (count < self.min_count or p >= self.p_clear):
            transition = "resolved"
        else:
            return None
        since = _at(cell.raised_at)
        if transition == "resolved":
            cell.raised_at = None
        return self._finding(transition, grid_cell, category, since, _at(now), count, rate, expected, p)

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
    ) -> HotspotFinding:
        days = self._recent_hours / 24
        d = f"{days:g}"
        zh_cat, en_cat = CATEGORY_ZH[category], CATEGORY_EN[category]
        plural = "report" if count == 1 else "reports"
        if transition == "raised":
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
            "params": {
                "recent_s": self.recent.total_seconds(),
                "baseline_weeks": self.baseline_weeks,
                "prior_rate": self.prior_rate,
                "prior_weeks": self.prior_weeks,
                "p_raise": self.p_raise,
                "p_clear": self.p_clear,
                "min_count": self.min_count,
            },
            "started_hour": self.started,
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
    def from_dict(cls, state: dict[str, Any]) -> WindowHotspotDetector:  # decoded JSON
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported hotspot state version {state.get('version')!r}")
        p = state["params"]
        detector = cls(
            timedelta(seconds=float(p["recent_s"])),
            int(p["baseline_weeks"]),
            float(p["prior_rate"]),
            float(p["prior_weeks"]),
            float(p["p_raise"]),
            float(p["p_clear"]),
            int(p["min_count"]),
        )
        detector.started = state["started_hour"]
        detector.watermark = state["watermark_hour"]
        for item in state["cells"]:
            check_category(item["category"])
            detector._cells[(item["grid_cell"], item["category"])] = _Cell(
                {int(h): int(n) for h, n in item["hours"].items()}, item["raised_hour"]
            )
        return detector
