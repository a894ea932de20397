"""``routine_change``: the daily pattern drifting away from the household's own history.

Each local day becomes four features — first use of the morning, litres used, litres used at
night (00:00–05:00) and hours with any use. Once a day, the last week is compared with the four
weeks before it: scikit-learn's Ledoit–Wolf covariance (well behaved on a few dozen days) gives
the Mahalanobis distance of the week's mean from the household's usual days. A far week whose
change is also large in plain terms (an hour later, a third less water, water at night) raises
a low-severity early warning for the grid worker's next visit, never a family alarm.
"""

from __future__ import annotations

import math
import struct
from typing import ClassVar

import numpy as np

from detectors.base import Finding, Interval
from detectors.findings import finding
from detectors.state import StateLayout
from detectors.timefmt import clock_of_minute, local_day, local_hour

DAYS = 35
RECENT = 7
FEATURES = 4  # first use (hour), log1p(litres), log1p(night litres), hours with use
_LAYOUT = StateLayout(1, "iddddBdB", halves=DAYS * FEATURES)
_MIN_COVERAGE_S = 20 * 3600.0
_DAY = struct.Struct(f"<{FEATURES}e")


def ledoit_wolf_shrinkage(centred: np.ndarray, gram: np.ndarray) -> float:
    """scikit-learn's ``ledoit_wolf_shrinkage(centred, assume_centered=True)``, the same operations
    in the same order (so the same bits), for ``gram = centred.T @ centred``. Called through
    scikit-learn, its input and parameter checks cost three times the estimate, once a day per
    meter; a test holds the two equal."""
    samples, features = centred.shape
    squared = centred**2
    trace = np.sum(squared, axis=0) / samples
    mu = np.sum(trace) / features
    delta_ = float(np.sum(gram**2)) / samples**2  # squared coefficients of <X.T, X>
    beta_ = float(np.sum(squared.T @ squared))  # coefficients of <X2.T, X2>
    beta = 1.0 / (features * samples) * (beta_ / samples - delta_)
    delta = (delta_ - 2.0 * mu * trace.sum() + features * mu**2) / features
    beta = min(beta, delta)  # never shrink past the target
    return 0.0 if beta == 0 else float(beta / delta)


class RoutineChangeDetector:
    """Raises when the last week's routine is far from the four weeks before it."""

    name: ClassVar[str] = "routine_change"

    def __init__(self, *, distance: float = 2.0, resolve_distance: float = 1.0) -> None:
        self.distance = distance
        self.resolve_distance = resolve_distance
        self._day = 0
        self._first_use_h = -1.0
        self._litres = 0.0
        self._night_litres = 0.0
        self._covered_s = 0.0
        self._active_hours = 0
        self._episode_since = 0.0
        self._open = 0
        self._days: list[float] = []  # oldest first, FEATURES values per kept day, at most DAYS days

    def update(self, interval: Interval) -> list[Finding]:
        if interval.litres is None or interval.end <= interval.start:
            return []
        day = local_day(interval.end, interval.utc_offset)
        findings: list[Finding] = []
        if day != self._day:
            if self._day and self._covered_s >= _MIN_COVERAGE_S and self._first_use_h >= 0:
                day_features = (
                    self._first_use_h,
                    math.log1p(self._litres),
                    math.log1p(self._night_litres),
                    float(self._active_hours),
                )
                # Kept at the precision it is stored with, so a restored detector scores exactly alike.
                self._days.extend(_DAY.unpack(_DAY.pack(*day_features)))
                del self._days[: -DAYS * FEATURES]
                findings = self._judge(interval)
            self._day, self._first_use_h, self._litres, self._night_litres = day, -1.0, 0.0, 0.0
            self._covered_s, self._active_hours = 0.0, 0
        self._covered_s += min(interval.end - interval.start, 7200.0)
        if interval.litres > 0:
            hour = local_hour(interval.end, interval.utc_offset)
            self._litres += interval.litres
            self._active_hours += 1
            if hour < 5.0:
                self._night_litres += interval.litres
            elif self._first_use_h < 0:
                self._first_use_h = hour
        return findings

    def advance(self, now: float, utc_offset: float) -> list[Finding]:
        return []

    def wake_at(self) -> float:
        return math.inf

    def score(self) -> tuple[float, np.ndarray, np.ndarray] | None:
        """Distance of the last week from the weeks before, with both means; None until 5 weeks."""
        if len(self._days) < DAYS * FEATURES:
            return None
        days = np.asarray(self._days, dtype=float).reshape(DAYS, FEATURES)
        usual, recent = days[:-RECENT], days[-RECENT:]
        mean_usual, mean_recent = usual.mean(axis=0), recent.mean(axis=0)
        centred = usual - mean_usual
        gram = centred.T @ centred
        shrinkage = ledoit_wolf_shrinkage(centred, gram)
        empirical = gram / len(centred)
        covariance = (1.0 - shrinkage) * empirical + shrinkage * (np.trace(empirical) / FEATURES) * np.eye(FEATURES)
        offset = mean_recent - mean_usual
        # In units of one usual day's spread: a whole week's average that far off is no bad day.
        distance = math.sqrt(max(0.0, float(offset @ np.linalg.solve(covariance, offset))))
        return distance, mean_usual, mean_recent

    def _judge(self, interval: Interval) -> list[Finding]:
        scored = self.score()
        if scored is None:
            return []
        distance, usual, recent = scored
        changes = _plain_changes(usual, recent)
        offset, at = interval.utc_offset, interval.start
        if not self._open and distance >= self.distance and changes:
            self._open = 1
            self._episode_since = (self._day - RECENT + 1) * 86400.0 - offset
            zh = "近一周生活规律有变化：" + "；".join(zh for zh, _ in changes) + "。建议下次走访时关注。"
            en = (
                "The routine changed over the past week: "
                + "; ".join(en for _, en in changes)
                + ". Worth a look at the next visit."
            )
            return [
                finding(
                    self.name,
                    "raised",
                    "low",
                    since=self._episode_since,
                    at=at,
                    utc_offset=offset,
                    zh=zh,
                    en=en,
                    facts={"distance": round(distance, 2)},
                )
            ]
        if self._open and distance < self.resolve_distance:
            self._open = 0
            return [
                finding(
                    self.name,
                    "resolved",
                    "low",
                    since=self._episode_since,
                    at=at,
                    utc_offset=offset,
                    zh="近一周的用水规律已回到平常水平。",
                    en="The past week's routine is back to usual.",
                    facts={"distance": round(distance, 2)},
                )
            ]
        return []

    def dump(self) -> bytes:
        days = self._days + [0.0] * (DAYS * FEATURES - len(self._days))
        return _LAYOUT.pack(
            (
                self._day,
                self._first_use_h,
                self._litres,
                self._night_litres,
                self._covered_s,
                self._active_hours,
                self._episode_since,
                self._open * 2 + 0,
            ),
            days,
        ) + bytes([len(self._days) // FEATURES])

    def load(self, data: bytes) -> None:
        if not data:
            raise ValueError("routine_change state is empty")
        kept = data[-1]
        scalars, days = _LAYOUT.unpack(data[:-1])
        (
            self._day,
            self._first_use_h,
            self._litres,
            self._night_litres,
            self._covered_s,
            self._active_hours,
            self._episode_since,
            flags,
        ) = scalars  # type: ignore[assignment]
        self._open = int(flags) // 2
        self._days = days[: kept * FEATURES]


def _plain_changes(usual: np.ndarray, recent: np.ndarray) -> list[tuple[str, str]]:
    """The changes large enough to matter in plain terms, worded for a grid worker."""
    changes = []
    first_usual, first_recent = usual[0] * 60.0, recent[0] * 60.0
    if first_recent - first_usual >= 60.0:
        changes.append(
            (
                f"早上首次用水由平时约 {clock_of_minute(first_usual)} 推迟到约 {clock_of_minute(first_recent)}",
                f"first water use moved from about {clock_of_minute(first_usual)} "
                f"to about {clock_of_minute(first_recent)}",
            )
        )
    litres_usual, litres_recent = math.expm1(usual[1]), math.expm1(recent[1])
    if litres_recent <= 0.65 * litres_usual:
        changes.append(
            (
                f"日均用水由约 {litres_usual:.0f} 升降到约 {litres_recent:.0f} 升",
                f"daily water use fell from about {litres_usual:.0f} L to about {litres_recent:.0f} L",
            )
        )
    night_usual, night_recent = math.expm1(usual[2]), math.expm1(recent[2])
    if night_recent >= night_usual + 10.0 and night_recent >= 2.0 * night_usual:
        changes.append(
            (
                f"夜间（0–5 点）用水增多：日均约 {night_recent:.0f} 升，平时约 {night_usual:.0f} 升",
                f"more water at night (00:00–05:00): about {night_recent:.0f} L a day, usually {night_usual:.0f} L",
            )
        )
    if recent[3] <= usual[3] - 3.0:
        changes.append(
            (
                f"有用水的小时数由约 {usual[3]:.0f} 个降到约 {recent[3]:.0f} 个",
                f"hours with any water use fell from about {usual[3]:.0f} to about {recent[3]:.0f}",
            )
        )
    return changes
