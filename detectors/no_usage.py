"""``no_usage``: a silence that is improbable for *this* household at *this* time of day.

The detector learns, per household, how long its silences last depending on the local hour at
which they begin (a silence that starts at 22:00 usually lasts the night; one that starts at
09:00 usually does not). When a silence starts it works out how long a silence from that hour
may last before it becomes rarer than the household's alarm budget allows, and raises when the
silence outgrows it. A population prior fills in for new households and for the far tail; a
hard ceiling raises regardless; severity grows as the silence grows; water use resolves it.

The alarm budget is the sensitivity setting: ``false_alarms_per_month`` is the expected number
of alarms per household and month on silences that end by themselves.
"""

from __future__ import annotations

import functools
import math
import struct
from typing import ClassVar

import numpy as np

from detectors.base import Finding, Interval, Transition
from detectors.findings import finding
from detectors.priors import NO_USAGE_SURVIVAL, SILENCE_START_SHARE, SILENCE_THRESHOLDS_H
from detectors.state import StateLayout
from detectors.timefmt import (
    clock_of_minute,
    duration_en,
    duration_zh,
    local_datetime,
    local_day,
    local_hour,
    when_en,
    when_zh,
)

_COLUMNS = len(SILENCE_THRESHOLDS_H)
_LAYOUT = StateLayout(1, "ddddddBIdiHi", halves=24 * _COLUMNS + 24)
_ROW = struct.Struct(f"<{_COLUMNS}e")
_ABSENCE_S = 24 * 3600.0
_DEFAULT_SILENCES_PER_MONTH = 75.0
_SEVERITY = {1: "high", 2: "critical"}
_THRESHOLDS = np.array(SILENCE_THRESHOLDS_H, dtype=float)
_GRID = np.arange(1.0, 24.01, 0.25)
_PRIOR = np.asarray(NO_USAGE_SURVIVAL)
# Linear interpolation (in log survival) from the thresholds onto the grid, as one matrix product.
_TO_GRID = np.stack([np.interp(_GRID, _THRESHOLDS, np.eye(len(_THRESHOLDS))[k]) for k in range(len(_THRESHOLDS))])
_LAMBDAS = np.geomspace(1.0, 1e5, 80)
_HALF = struct.Struct("<24e")
# The limits move with what a household's silences have taught, which a day barely changes; worked
# out weekly, they cost a seventh of the time (they were a sixth of a worker's time, daily).
LIMITS_REFRESH_DAYS = 7


def _around(table: np.ndarray) -> np.ndarray:
    """Each hour's row: the previous hour's plus the next hour's, round the clock (as two
    ``np.roll``, which costs more than the rest of the sum)."""
    return np.concatenate((table[-1:], table[:-1])) + np.concatenate((table[1:], table[:1]))


@functools.lru_cache(maxsize=8)
def _blended_prior(neighbour_weight: float) -> np.ndarray:
    """The population prior with the neighbouring hours blended in, as the household's own table."""
    blended = (_PRIOR + neighbour_weight * _around(_PRIOR)) / (1 + 2 * neighbour_weight)
    blended.flags.writeable = False
    return blended


class NoUsageDetector:
    """Raises ``no_usage`` when the current silence is improbable for the household."""

    name: ClassVar[str] = "no_usage"

    def __init__(
        self,
        *,
        false_alarms_per_month: float = 0.3,
        ceiling_h: float = 18.0,
        min_silence_h: float = 4.0,
        prior_weight: float = 20.0,
        memory: float = 0.985,
        use_litres: float = 0.5,
        neighbour_weight: float = 0.5,
    ) -> None:
        self.false_alarms_per_month = false_alarms_per_month
        self.ceiling_h = ceiling_h
        self.min_silence_h = min_silence_h
        self.prior_weight = prior_weight
        self.memory = memory
        self.use_litres = use_litres
        self.neighbour_weight = neighbour_weight
        self._first_seen = 0.0
        self._last_reading = 0.0
        self._last_use = 0.0  # end of the last interval with water use; 0: none yet
        self._limit_s = 0.0  # how long the current silence may last; 0: not worked out yet
        self._limit_hour = 0.0
        self._episode_since = 0.0
        self._episode_level = 0
        self._silences = 0  # silences of an hour or more seen (for the household's rate)
        self._first_use_minute = -1.0  # an upper quantile (80 %) of the day's first use, local minutes
        self._today = 0
        self._first_use_today = 0xFFFF
        self._counts = [0.0] * (24 * _COLUMNS)  # per start hour: decayed count of silences ≥ each threshold
        self._limits = [0.0] * 24  # hours a silence starting in each local hour may last; worked out daily
        self._limits_day = 0

    # -- learning and deciding -------------------------------------------------------------
    def update(self, interval: Interval) -> list[Finding]:
        if not self._first_seen:
            self._first_seen = interval.start
        self._last_reading = interval.end
        litres = interval.litres
        if interval.end <= interval.start:
            return []
        if litres is None:
            # Usage unknown (a reset or a glitch): water may have been used, so no silence is
            # measured across it — a glitch must not turn into an alarm.
            if not self._episode_level and self._last_use:
                self._last_use, self._limit_s = interval.end, 0.0
            return []
        if litres >= self.use_litres:
            return self._on_use(interval)
        if not self._last_use:
            return []
        silence = interval.end - self._last_use
        if not self._limit_s:
            self._limit_hour = local_hour(self._last_use, interval.utc_offset)
            self._limit_s = self.limit_hours(self._limit_hour, local_day(interval.end, interval.utc_offset)) * 3600.0
        if self._episode_level == 0:
            if silence >= self._limit_s:
                self._episode_since, self._episode_level = self._last_use, 1
                return [self._finding("raised", interval, silence)]
        elif self._episode_level == 1 and silence >= min(_ABSENCE_S, 2 * self._limit_s):
            self._episode_level = 2
            return [self._finding("escalated", interval, silence)]
        return []

    def advance(self, now: float, utc_offset: float) -> list[Finding]:
        return []  # silence is only known from readings: no reading, no verdict (meter_offline's job)

    def wake_at(self) -> float:
        return math.inf

    def _on_use(self, interval: Interval) -> list[Finding]:
        findings: list[Finding] = []
        if self._last_use:
            silence = interval.start - self._last_use
            if silence >= 3600.0:
                self._silences += 1
                if silence < _ABSENCE_S:
                    self._learn(local_hour(self._last_use, interval.utc_offset), silence / 3600.0)
        if self._episode_level:
            findings.append(self._finding("resolved", interval, interval.start - self._last_use))
            self._episode_since, self._episode_level = 0.0, 0
        self._last_use, self._limit_s = interval.end, 0.0
        self._note_first_use(interval.end, interval.utc_offset)
        return findings

    def _learn(self, start_hour: float, hours: float) -> None:
        base = int(start_hour) * _COLUMNS
        counts, memory = self._counts, self.memory
        row = [
            min(count * memory + (1.0 if hours >= threshold else 0.0), 60000.0)
            for count, threshold in zip(counts[base : base + _COLUMNS], SILENCE_THRESHOLDS_H, strict=True)
        ]
        # Kept at the precision it is stored with, so a restored detector decides exactly alike.
        counts[base : base + _COLUMNS] = _ROW.unpack(_ROW.pack(*row))

    def _note_first_use(self, t: float, utc_offset: float) -> None:
        day = local_day(t, utc_offset)
        if day != self._today:
            self._today, self._first_use_today = day, 0xFFFF
        minute = local_hour(t, utc_offset) * 60.0
        if self._first_use_today != 0xFFFF or minute < 240.0:  # a night visit is not the morning
            return
        self._first_use_today = int(minute)
        if self._first_use_minute < 0:
            self._first_use_minute = minute
        else:  # stochastic-approximation quantile: settles where 80 % of mornings start earlier
            self._first_use_minute += 20.0 * (0.8 - (minute < self._first_use_minute))

    # -- the household's silence model -------------------------------------------------------
    def alarm_budget(self) -> float:
        """Tolerated probability that a silence outgrows its limit, from the alarm budget."""
        return min(0.05, max(1e-4, self.false_alarms_per_month / self.silences_per_month()))

    def survival(self, start_hour: float) -> tuple[list[float], float]:
        """P(silence ≥ each threshold) for a silence starting at ``start_hour`` (one row of
        ``survival_table``), and how many own silences it rests on."""
        row = int(start_hour) % 24
        return self.survival_table()[row].tolist(), float(self._own_table()[row, 0])

    def limit_hours(self, start_hour: float, day: int = 0) -> float:
        """How long a silence starting at ``start_hour`` may last before it is raised (the table
        is worked out again every ``LIMITS_REFRESH_DAYS`` local days, or whenever ``day`` is 0)."""
        if not day or not 0 <= day - self._limits_day < LIMITS_REFRESH_DAYS:
            self._limits = self.limits_table()
            self._limits_day = day
        return self._limits[int(start_hour) % 24]

    def limits_table(self) -> list[float]:
        """The limit for each start hour, spending the alarm budget where it buys the most speed.

        Minimising the expected delay Σ_h n_h·L_h subject to Σ_h n_h·S_h(L_h) = budget gives, per
        hour, the L that minimises L + λ·S_h(L): a limit sits where silences this long have become
        rare *per extra hour waited*, not where they pass a fixed rarity. λ is then chosen so the
        household's expected false alarms per month (its silences per hour times their chance to
        outgrow the limit) match ``false_alarms_per_month``.
        """
        keep = (self.min_silence_h <= _GRID) & (self.ceiling_h >= _GRID)
        grid = _GRID[keep]
        log_survival = np.log(np.maximum(self.survival_table(), 1e-9))  # 24 × columns
        on_grid = np.exp(log_survival @ _TO_GRID[:, keep])  # 24 × G
        on_grid[:, grid > _THRESHOLDS[-1]] *= 0.5  # beyond what is learned: assume the tail keeps thinning
        per_month = self.silences_per_month() * self.start_shares()  # 24
        rows = np.arange(24)

        def best_for(index: int) -> tuple[np.ndarray, float]:
            """Each hour's limit (grid index) for one λ, and the false alarms per month it costs."""
            best = (grid[None, :] + _LAMBDAS[index] * on_grid).argmin(axis=1)  # 24
            return best, float((on_grid[rows, best] * per_month).sum())

        # The first λ whose limits fit the budget. A larger λ never shortens a limit (survival does
        # not grow with the limit), so the false alarms fall monotonically in λ and a bisection
        # finds the same λ as trying them all, in 7 steps instead of 80.
        low, high = 0, len(_LAMBDAS) - 1
        best, cost = best_for(high)
        if cost <= self.false_alarms_per_month:
            while low < high:
                middle = (low + high) // 2
                best_middle, cost_middle = best_for(middle)
                if cost_middle <= self.false_alarms_per_month:
                    high, best = middle, best_middle
                else:
                    low = middle + 1
        limits = grid[best]
        return [float(value) for value in _HALF.unpack(_HALF.pack(*limits))]

    def survival_table(self) -> np.ndarray:
        """P(silence ≥ each threshold) for every start hour (24 × thresholds): the household's own
        silences starting in that hour (and the hours either side at ``neighbour_weight``)
        blended with the population prior, weighted the same way."""
        own = self._own_table()
        return (own + self.prior_weight * _blended_prior(self.neighbour_weight)) / (own[:, :1] + self.prior_weight)

    def _own_table(self) -> np.ndarray:
        """Own silences per start hour and threshold, the neighbouring hours at ``neighbour_weight``."""
        counts = np.asarray(self._counts).reshape(24, _COLUMNS)
        return counts + self.neighbour_weight * _around(counts)

    def silences_per_month(self) -> float:
        span_days = (self._last_reading - self._first_seen) / 86400.0
        if span_days >= 14 and self._silences:
            return self._silences / span_days * 30.4
        return _DEFAULT_SILENCES_PER_MONTH

    def start_shares(self) -> np.ndarray:
        """Share of the household's silences that begin in each local hour (prior-blended)."""
        own = np.array(self._counts[0::_COLUMNS])
        prior = np.array(SILENCE_START_SHARE)
        total = own.sum()
        weight = total / (total + 20.0)
        shares = weight * (own / total if total else prior) + (1 - weight) * prior
        return shares / shares.sum()

    # -- words -----------------------------------------------------------------------------------
    def _finding(self, transition: Transition, interval: Interval, silence: float) -> Finding:
        since, at, offset = self._episode_since, interval.end, interval.utc_offset
        facts: dict[str, float | int | str | bool] = {
            "silence_h": round(silence / 3600.0, 2),
            "limit_h": round(self._limit_s / 3600.0, 2),
            "budget": round(self.alarm_budget(), 5),
        }
        if transition == "resolved":
            zh = f"已恢复用水：{when_zh(interval.end, at, offset)} 前后再次用水，此前 {duration_zh(silence)} 未用水。"
            en = f"Water use resumed by {when_en(interval.end, at, offset)} after {duration_en(silence)} without any."
            return finding(
                self.name, "resolved", "high", since=since, at=at, utc_offset=offset, zh=zh, en=en, facts=facts
            )
        survival, seen = self.survival(self._limit_hour)
        column = max(k for k, t in enumerate(SILENCE_THRESHOLDS_H) if t <= max(1.0, silence / 3600.0))
        own_long = float(self._own_table()[int(self._limit_hour) % 24, column])
        facts.update(
            probability=round(survival[column], 5), similar_silences=round(seen), as_long_silences=round(own_long)
        )
        parts_zh, parts_en = [], []
        if self._first_use_minute >= 0 and self._last_reading - self._first_seen >= 7 * 86400:
            usual = clock_of_minute(self._first_use_minute)
            parts_zh.append(f"平时一般 {usual} 前开始用水")
            parts_en.append(f"usually first water use by {usual}")
            facts["usual_first_use"] = usual
        parts_zh.append(f"自{when_zh(since, at, offset)}起已 {duration_zh(silence)} 未用水")
        parts_en.append(f"none since {when_en(since, at, offset)} ({duration_en(silence)})")
        start_clock = local_datetime(since, offset).strftime("%H")
        if seen >= 10:
            parts_zh.append(
                f"此前 {round(seen)} 次在 {start_clock} 点前后开始的无用水时段中，这么长的只有 {round(own_long)} 次"
            )
            parts_en.append(
                f"of {round(seen)} earlier silences starting around {start_clock}:00, "
                f"{round(own_long)} lasted this long"
            )
        else:
            parts_zh.append("该户历史尚短，按一般家庭规律判断")
            parts_en.append("this household's history is still short, so it is judged against typical homes")
        if transition == "escalated":
            parts_zh.append("仍未恢复，已升级")
            parts_en.append("still silent, escalated")
        zh = "；".join(parts_zh) + "。"
        en = "; ".join(parts_en).capitalize() + "."
        return finding(
            self.name,
            transition,
            _SEVERITY[self._episode_level],
            since=since,
            at=at,
            utc_offset=offset,
            zh=zh,
            en=en,
            facts=facts,
        )

    # -- state ---------------------------------------------------------------------------------
    def dump(self) -> bytes:
        return _LAYOUT.pack(
            (
                self._first_seen,
                self._last_reading,
                self._last_use,
                self._limit_s,
                self._limit_hour,
                self._episode_since,
                self._episode_level,
                self._silences,
                self._first_use_minute,
                self._today,
                self._first_use_today,
                self._limits_day,
            ),
            self._counts + self._limits,
        )

    def load(self, data: bytes) -> None:
        scalars, halves = _LAYOUT.unpack(data)
        self._counts, self._limits = halves[: 24 * _COLUMNS], halves[24 * _COLUMNS :]
        (
            self._first_seen,
            self._last_reading,
            self._last_use,
            self._limit_s,
            self._limit_hour,
            self._episode_since,
            self._episode_level,
            self._silences,
            self._first_use_minute,
            self._today,
            self._first_use_today,
            self._limits_day,
        ) = scalars  # type: ignore[assignment]
