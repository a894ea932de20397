"""Hotspots over neighbouring cells: one kind of problem rising in two or three adjacent grid cells at
once, none of them unusual alone, raised once for the area.

The registry (``GridNeighbours``) says which cells neighbour each other; it is made symmetric (B is
A's neighbour if A is B's). An **area** is a cell and its neighbours; two cells with the same
neighbourhood make one area (named after the first cell). For each area and category, the reports
of its cells are summed hour by hour and watched with the per-cell hotspot machinery
(``HotspotDetector.score``: the same Poisson CUSUM on daily counts, the same burst scan, the same
false-alarm budget per series and warm-up), the area's watch starting with its first cell's first
report. An area hotspot is raised when that sum is significant and

- at least two of its cells had more reports of the category in the recent window than their own
  usual (a rise in one cell is that cell's own business: its detector watches it with more power),
- no cell of the area is a hotspot of that category alone (the incidents agent says which cells are,
  with every report it forwards): the cell's own alert already says it, and
- no overlapping area (sharing a cell) is raised for the category: the first one raised stands for
  the spreading problem until it resolves.

It resolves as a cell's hotspot does: the area's CUSUM back at 0, a day after it was raised, no burst.

State is split by key so that each write stays small however many cells the registry knows: one
dict per cell (its hourly counts per category over the baseline horizon, the categories it is a
hotspot of, the ids of its recent reports so that a report counted twice after a crash is counted
once) and one under ``RAISED_KEY`` (the areas raised, with their cells, and the event-time
watermark). ``AreaWatch`` loads what it needs through ``load(key)`` and ``states()`` gives what it
changed. Event-time driven, like ``HotspotDetector``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from detectors.base import Transition
from detectors.incidents.categories import CATEGORY_EN, CATEGORY_ZH, check_category
from detectors.incidents.hotspot import HotspotDetector, _Score, poisson_tail

STATE_VERSION = 1
RAISED_KEY = "@areas"  # not a grid cell code (those start with a letter or digit)
MAX_NEIGHBOURS = 20  # an "area" of more cells than this is no neighbourhood: the signal drowns in it
_CELL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_CELL_RULE = "1–32 letters, digits or . _ -, starting with a letter or digit"
_HOUR, _DAY_H, _WEEK_H = 3600, 24, 7 * 24
_SEEN_H = 48  # a report processed again after a crash comes back within minutes; two days is ample
_MAX_SEEN = 500


class NeighboursError(ValueError):
    """The neighbour registry cannot be used; the message names the entry and what is wrong (one line)."""


@dataclass(frozen=True, slots=True)
class Area:
    centre: str  # the cell whose neighbourhood it is: the alert's grid cell
    cells: tuple[str, ...]  # sorted, the centre included


class GridNeighbours:
    """Which grid cells neighbour each other: ``{cell: [neighbouring cells]}``, made symmetric."""

    def __init__(self, mapping: Mapping[str, Iterable[str]]) -> None:
        adjacent: dict[str, set[str]] = {}
        for cell, listed in mapping.items():
            _check_cell(cell, "cell")
            if isinstance(listed, str | bytes) or not isinstance(listed, Iterable):
                raise NeighboursError(
                    f"cell {cell!r}: expected a list of neighbouring cells, got {type(listed).__name__}"
                )
            for other in listed:
                if not isinstance(other, str):
                    raise NeighboursError(f"cell {cell!r}: neighbour {other!r} is not a string")
                _check_cell(other, f"cell {cell!r}: neighbour")
                if other == cell:
                    raise NeighboursError(f"cell {cell!r} lists itself as its neighbour")
                adjacent.setdefault(cell, set()).add(other)
                adjacent.setdefault(other, set()).add(cell)  # the symmetric closure
        for cell, others in adjacent.items():
            if len(others) > MAX_NEIGHBOURS:
                raise NeighboursError(
                    f"cell {cell!r} has {len(others)} neighbours (at most {MAX_NEIGHBOURS}, counting those that "
                    f"list it): an area that large is no neighbourhood"
                )
        self._adjacent = {cell: tuple(sorted(others)) for cell, others in adjacent.items()}
        self.areas: dict[str, Area] = {}
        seen: set[tuple[str, ...]] = set()
        for cell in sorted(self._adjacent):
            cells = tuple(sorted({cell, *self._adjacent[cell]}))
            if cells not in seen:  # the same neighbourhood from another centre is the same area
                seen.add(cells)
                self.areas[cell] = Area(cell, cells)
        self._areas_with: dict[str, list[Area]] = {}
        for area in self.areas.values():
            for cell in area.cells:
                self._areas_with.setdefault(cell, []).append(area)

    @classmethod
    def from_json(cls, text: str) -> GridNeighbours:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise NeighboursError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        if not isinstance(data, dict):
            raise NeighboursError(f"expected a JSON object {{cell: [neighbouring cells]}}, got {type(data).__name__}")
        return cls(data)

    def of(self, cell: str) -> tuple[str, ...]:
        """The cell's neighbours (none for a cell the registry does not know)."""
        return self._adjacent.get(cell, ())

    def knows(self, cell: str) -> bool:
        """Whether the cell has a neighbour, so that its reports count towards an area."""
        return cell in self._adjacent

    def areas_with(self, cell: str) -> list[Area]:
        return list(self._areas_with.get(cell, ()))

    def __len__(self) -> int:
        return len(self._adjacent)


def _check_cell(value: object, what: str) -> None:
    if not isinstance(value, str) or not _CELL.match(value):
        raise NeighboursError(f"{what} {value!r} is not a grid cell code ({_CELL_RULE})")


@dataclass(frozen=True, slots=True)
class AreaFinding:
    transition: Transition  # "raised" or "resolved"
    area: Area
    category: str
    since: datetime  # when the area hotspot was raised
    at: datetime  # event time of this decision
    count: int  # the area's reports in the recent window (in the burst's hours for a burst)
    cell_counts: tuple[tuple[str, int], ...]  # each cell's reports in the recent window
    window_days: float
    baseline_per_week: float  # the area's usual weekly rate (with the prior)
    expected: float  # expected reports of the area in the recent window
    p_value: float  # P(at least `count` in the window | the usual rate)
    explanation_zh: str
    explanation_en: str


@dataclass
class _Cell:
    first_hour: int | None = None
    counts: dict[str, dict[int, int]] = field(default_factory=dict)  # category → hour → reports
    hotspots: tuple[str, ...] = ()  # categories the cell is a hotspot of alone
    seen: dict[str, int] = field(default_factory=dict)  # recent report id → its hour


@dataclass(frozen=True, slots=True)
class _Raised:
    area: Area
    category: str
    hour: int


class AreaWatch:
    """Area hotspots over a neighbour registry. ``load(key)`` gives a stored state (a cell's, or
    ``RAISED_KEY``'s) or None; a stored state that cannot be read counts as none (the watch of that key
    starts afresh rather than refusing every later report) and ``unreadable(key, error)`` is told.
    ``params`` are ``HotspotDetector``'s (its defaults otherwise)."""

    def __init__(
        self,
        neighbours: GridNeighbours,
        load: Callable[[str], Mapping[str, Any] | None] | None = None,
        unreadable: Callable[[str, Exception], None] | None = None,
        **params: Any,
    ) -> None:
        self.neighbours = neighbours
        self._params = params
        self._template = HotspotDetector(**params)  # refuses bad parameters here, once
        self._load = load or (lambda key: None)
        self._unreadable = unreadable or (lambda key, error: None)
        self._cells: dict[str, _Cell] = {}
        self._changed: set[str] = set()
        self.watermark: int | None = None
        self._raised: dict[tuple[str, str], _Raised] = {}
        raised = self._load(RAISED_KEY)
        if raised:
            try:
                self.watermark, self._raised = _raised_from(raised)
            except (ValueError, KeyError, TypeError) as exc:
                self._unreadable(RAISED_KEY, exc)

    def update(
        self,
        grid_cell: str,
        category: str,
        ts: datetime,
        *,
        hotspots: Iterable[str] = (),
        report_id: str | None = None,
    ) -> list[AreaFinding]:
        """Count one report of ``grid_cell`` (which is a hotspot alone of the categories ``hotspots``);
        return the area hotspots raised or resolved. A ``report_id`` seen in the last two days is not
        counted again."""
        check_category(category)
        hour = _hour(ts)
        self._move(hour)
        assert self.watermark is not None
        cell = self._cell(grid_cell)
        if tuple(sorted(set(hotspots))) != cell.hotspots:
            cell.hotspots = tuple(sorted(set(hotspots)))
            self._changed.add(grid_cell)
        findings = self._resolve(self.watermark)
        if report_id is not None and report_id in cell.seen:
            return findings  # the same report again (processed twice): counted already
        if hour < self._horizon(self.watermark) or not self.neighbours.knows(grid_cell):
            return findings  # too late to matter, or no area to count it in
        if report_id is not None:
            cell.seen[report_id] = hour
        if cell.first_hour is None:
            cell.first_hour = hour
        hours = cell.counts.setdefault(category, {})
        hours[hour] = hours.get(hour, 0) + 1
        self._changed.add(grid_cell)
        for area in self.neighbours.areas_with(grid_cell):
            finding = self._consider(area, category, self.watermark)
            if finding is not None:
                findings.append(finding)
        return findings

    def advance(self, now: datetime) -> list[AreaFinding]:
        """Move event time forward to ``now``: resolve area hotspots that subsided."""
        self._move(_hour(now))
        assert self.watermark is not None
        return self._resolve(self.watermark)

    def active(self) -> list[tuple[str, str]]:
        """The (area centre, category) pairs raised now."""
        return sorted(self._raised)

    def states(self) -> dict[str, dict[str, Any]]:
        """The states this watch changed, by key, as plain JSON-able dicts (old counts dropped)."""
        out: dict[str, dict[str, Any]] = {}
        horizon = self._horizon(self.watermark) if self.watermark is not None else None
        for key in sorted(self._changed):
            if key == RAISED_KEY:
                out[key] = {
                    "v": STATE_VERSION,
                    "watermark_hour": self.watermark,
                    "raised": [
                        {"centre": r.area.centre, "cells": list(r.area.cells), "category": r.category, "hour": r.hour}
                        for _, r in sorted(self._raised.items())
                    ],
                }
                continue
            cell = self._cells[key]
            counts = {
                category: {str(h): n for h, n in sorted(hours.items()) if horizon is None or h >= horizon}
                for category, hours in sorted(cell.counts.items())
            }
            seen = sorted(cell.seen.items(), key=lambda item: item[1])
            if self.watermark is not None:
                seen = [(r, h) for r, h in seen if h >= self.watermark - _SEEN_H]
            out[key] = {
                "v": STATE_VERSION,
                "first_hour": cell.first_hour,
                "counts": {c: hours for c, hours in counts.items() if hours},
                "hotspots": list(cell.hotspots),
                "seen": dict(seen[-_MAX_SEEN:]),
            }
        return out

    def _move(self, hour: int) -> None:
        if self.watermark is None or hour > self.watermark:
            self.watermark = hour
            self._changed.add(RAISED_KEY)

    def _days(self) -> int:
        """The recent window in whole days, as ``HotspotDetector`` counts it."""
        return max(1, round(self._template.recent.total_seconds() / (_DAY_H * _HOUR)))

    def _horizon(self, now: int) -> int:
        """Counts before this hour can no longer matter: the recent window and the baseline weeks before it."""
        recent_days = math.ceil(self._template.recent.total_seconds() / (_DAY_H * _HOUR))
        return (now // _DAY_H - recent_days) * _DAY_H - self._template.baseline_weeks * _WEEK_H

    def _cell(self, key: str) -> _Cell:
        cell = self._cells.get(key)
        if cell is None:
            stored = self._load(key)
            try:
                cell = _cell_from(stored) if stored else _Cell()
            except (ValueError, KeyError, TypeError) as exc:
                self._unreadable(key, exc)
                cell = _Cell()
            self._cells[key] = cell
        return cell

    def _scorer(self, area: Area) -> HotspotDetector | None:
        starts = [s for s in (self._cell(c).first_hour for c in area.cells) if s is not None]
        if not starts:
            return None
        detector = HotspotDetector(**self._params)
        detector.started = min(starts)  # the area's watch began with its first cell's first report
        return detector

    def _consider(self, area: Area, category: str, now: int) -> AreaFinding | None:
        if (area.centre, category) in self._raised:
            return None
        if any(category in self._cell(c).hotspots for c in area.cells):
            return None  # a cell's own hotspot says it already
        if any(r.category == category and set(r.area.cells) & set(area.cells) for r in self._raised.values()):
            return None  # an overlapping area stands for this problem
        detector = self._scorer(area)
        if detector is None:
            return None
        by_cell = [(c, self._cell(c).counts.get(category, {})) for c in area.cells]
        score = detector.score(_summed(hours for _, hours in by_cell), now)
        sustained = score.over_limit and score.run_count >= detector.min_count
        burst = score.burst >= score.burst_limit
        if not (sustained or burst):
            return None
        cells = [detector.score(hours, now) for _, hours in by_cell]
        days = self._days()
        if sum(1 for s in cells if s.count > s.rate * days / 7) < 2:
            return None  # not two cells above their usual: a rise in one cell is its own detector's question
        cell_counts = tuple((c, s.count) for (c, _), s in zip(by_cell, cells, strict=True))
        self._raised[(area.centre, category)] = _Raised(area, category, now)
        self._changed.add(RAISED_KEY)
        burst_hours = detector.burst_hours if burst and not sustained else None
        count = score.burst if burst_hours else score.count
        return self._finding("raised", area, category, now, now, detector, score, count, cell_counts, burst_hours)

    def _resolve(self, now: int) -> list[AreaFinding]:
        findings = []
        for key, raised in sorted(self._raised.items()):
            detector = self._scorer(raised.area)
            by_cell = [(c, self._cell(c).counts.get(raised.category, {})) for c in raised.area.cells]
            hours = _summed(h for _, h in by_cell)
            if detector is None:
                del self._raised[key]  # nothing stored of its cells any more (a registry or state reset)
                self._changed.add(RAISED_KEY)
                continue
            score = detector.score(hours, now)
            if score.cusum > 0 or now - raised.hour < _DAY_H or score.burst >= score.burst_limit:
                continue
            del self._raised[key]
            self._changed.add(RAISED_KEY)
            cell_counts = tuple((c, detector.score(h, now).count) for c, h in by_cell)
            findings.append(
                self._finding(
                    "resolved",
                    raised.area,
                    raised.category,
                    raised.hour,
                    now,
                    detector,
                    score,
                    score.count,
                    cell_counts,
                )
            )
        return findings

    def _finding(
        self,
        transition: Transition,
        area: Area,
        category: str,
        since: int,
        now: int,
        detector: HotspotDetector,
        score: _Score,
        count: int,
        cell_counts: tuple[tuple[str, int], ...],
        burst_hours: int | None = None,
    ) -> AreaFinding:
        days = self._days()
        expected = score.rate * days / 7
        p = poisson_tail(score.count, expected)
        zh, en = _explain(
            transition, area, category, days, count, cell_counts, score.rate, p, score.warming_up, burst_hours
        )
        return AreaFinding(
            transition,
            area,
            category,
            _at(since),
            _at(now),
            count,
            cell_counts,
            float(days),
            score.rate,
            expected,
            float(f"{p:.3g}"),
            zh,
            en,
        )


def _explain(
    transition: Transition,
    area: Area,
    category: str,
    days: int,
    count: int,
    cell_counts: tuple[tuple[str, int], ...],
    rate: float,
    p: float,
    warming_up: bool,
    burst_hours: int | None,
) -> tuple[str, str]:
    zh_cat, en_cat = CATEGORY_ZH[category], CATEGORY_EN[category]
    cells_zh = "、".join(area.cells)
    cells_en = ", ".join(area.cells[:-1]) + f" and {area.cells[-1]}" if len(area.cells) > 1 else area.cells[0]
    each_zh = "、".join(f"{c} {n} 起" for c, n in cell_counts)
    each_en = ", ".join(f"{c} {n}" for c, n in cell_counts)
    plural = "report" if count == 1 else "reports"
    usual_zh = "该片区观察时间还短" if warming_up else f"平时合计约每周 {_fmt(rate)} 起"
    usual_en = "the area has not been watched long" if warming_up else f"usually {_fmt(rate)} a week together"
    if transition == "resolved":
        return (
            f"相邻网格 {cells_zh} 的“{zh_cat}”类报告已回落：近 {days} 天共 {count} 起（{each_zh}），{usual_zh}。",
            f"Reports of {en_cat} across neighbouring cells {cells_en} have subsided: {count} in {days} days "
            f"({each_en}); {usual_en}.",
        )
    if burst_hours is not None:  # the cells' counts are of the whole window, the burst's of its hours
        when_zh, when_en = f"{burst_hours} 小时内", f"within {burst_hours} hours"
        each_zh, each_en = f"近 {days} 天：{each_zh}", f"in {days} days: {each_en}"
    else:
        when_zh, when_en = f"近 {days} 天", f"in {days} days"
    # the chance is of the window's count: it says nothing of a burst's hours
    chance_zh, chance_en = ("", "") if warming_up or burst_hours is not None else _chance(p)
    return (
        f"相邻网格 {cells_zh} {when_zh}共有 {count} 起“{zh_cat}”类报告（{each_zh}；{usual_zh}）。"
        f"单个网格都不算异常，合起来明显偏多{f'（纯属偶然的可能{chance_zh}）' if chance_zh else ''}，"
        f"可能是同一问题在扩散，请一并查看。",
        f"{count} {plural} of {en_cat} {when_en} across neighbouring cells {cells_en} ({each_en}; "
        f"{usual_en}). No cell stands out alone, but together this is unusual"
        f"{f' (chance of this by luck {chance_en})' if chance_en else ''}: perhaps one problem spreading. "
        f"Look at them together.",
    )


def _chance(p: float) -> tuple[str, str]:
    if p < 0.001:
        return "不到千分之一", "under 0.1 %"
    return f"约 {p * 100:.1g}%", f"about {p * 100:.1g} %"


def _fmt(x: float) -> str:
    if x >= 0.95:
        return f"{x:.1f}"
    return f"{x:.2f}".rstrip("0").rstrip(".") if x > 0 else "0"


def _summed(series: Iterable[dict[int, int]]) -> dict[int, int]:
    total: dict[int, int] = {}
    for hours in series:
        for h, n in hours.items():
            total[h] = total.get(h, 0) + n
    return total


def _raised_from(stored: Mapping[str, Any]) -> tuple[int | None, dict[tuple[str, str], _Raised]]:
    if stored.get("v") != STATE_VERSION:
        raise ValueError(f"unsupported area state version {stored.get('v')!r}")
    raised = {}
    for item in stored["raised"]:
        area = Area(str(item["centre"]), tuple(str(c) for c in item["cells"]))
        raised[(area.centre, str(item["category"]))] = _Raised(
            area, check_category(item["category"]), int(item["hour"])
        )
    watermark = stored["watermark_hour"]
    return (None if watermark is None else int(watermark)), raised


def _cell_from(stored: Mapping[str, Any]) -> _Cell:
    if stored.get("v") != STATE_VERSION:
        raise ValueError(f"unsupported area cell state version {stored.get('v')!r}")
    counts = {}
    for category, hours in stored["counts"].items():
        check_category(category)
        counts[category] = {int(h): int(n) for h, n in hours.items()}
    first = stored.get("first_hour")
    return _Cell(
        None if first is None else int(first),
        counts,
        tuple(str(c) for c in stored.get("hotspots", ())),
        {str(r): int(h) for r, h in stored.get("seen", {}).items()},
    )


def _hour(ts: datetime) -> int:
    if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("ts must be a timezone-aware datetime")
    return math.floor(ts.timestamp() / _HOUR)


def _at(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * _HOUR, UTC)
