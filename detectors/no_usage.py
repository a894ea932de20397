"""``no_usage``: a silence that is improbable for *this* household at *this* time of day.

The detector learns, per household, how long its silences last depending on the local hour at
which they begin (a silence that starts at 22:00 usually lasts the night; one that starts at
09:00 usually does not). When a silence starts it works out how long a silence from that hour
may last before it becomes rarer than the household's alarm budget allows, and raises when the
silence outgrows it. A population prior fills in for new households and for the far tail; a
hard ceiling raises regardless; severity grows as the silence grows; water use resolves it.

The alarm budget is the sensitivity setting: ``false_alarms_per_month`` is the expected number
of alarms per household and month on silences that end by themselves.

Before the alarm, a faster *check* limit asks the elder first: ``check_ins_per_month`` is its own
budget (how often a resident may be asked "are you well?" about a silence that ends by itself), and
``check_ceiling_h`` its ceiling. At the check limit the detector says ``check_in``; the router asks the
resident, and tells carers only if nobody answers (or at the alarm limit, ``raised``, as before). The
check tier never moves the alarm: with it or without it the ``raised`` lines are the same.
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
# Version 2 adds the check tier (the current silence's check limit, whether it was asked, 24 check
# limits); a version-1 state still loads, so an upgrade keeps every household's learned routine.
_LAYOUT_V1 = StateLayout(1, "ddddddBIdiHi", halves=24 * _COLUMNS + 24)
_LAYOUT = StateLayout(2, "ddddddBIdiHidB", halves=24 * _COLUMNS + 48)
_ROW = struct.Struct(f"<{_COLUMNS}e")
_ABSENCE_S = 24 * 3600.0
_DEFAULT_SILENCES_PER_MONTH = 75.0
_SEVERITY = {1: "high", 2: "critical"}
# Feedback that an alarm was needless (``false_alarm``, ``resident_fine``) counts its silence this many
# times: the household's own say weighs more than one more silence seen.
FEEDBACK_WEIGHT = 3.0
# Routine hints given at enrolment count as this many weeks of the household's own silences.
HINT_WEEKS = 2.0
_BEDTIME_MINUTE = 22 * 60  # a hint gives the getting-up time only: the night is assumed to start at 22:00
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
        check_ins_per_month: float = 2.0,
        check_ceiling_h: float = 11.0,
    ) -> None:
        self.false_alarms_per_month = false_alarms_per_month
        self.ceiling_h = ceiling_h
        self.min_silence_h = min_silence_h
        self.prior_weight = prior_weight
        self.memory = memory
        self.use_litres = use_litres
        self.neighbour_weight = neighbour_weight
        self.check_ins_per_month = check_ins_per_month  # 0: no check tier
        self.check_ceiling_h = check_ceiling_h
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
        self._check_s = 0.0  # how long the current silence may last before the resident is asked; 0: not yet
        self._checked = 0  # 1: the resident was asked about the current silence
        self._check_limits = [0.0] * 24

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
            if not self._episode_level and not self._checked and self._last_use:
                self._last_use, self._limit_s, self._check_s = interval.end, 0.0, 0.0
            return []
        if litres >= self.use_litres:
            return self._on_use(interval)
        if not self._last_use:
            return []
        silence = interval.end - self._last_use
        if not self._limit_s:
            self._limit_hour = local_hour(self._last_use, interval.utc_offset)
            day = local_day(interval.end, interval.utc_offset)
            self._limit_s = self.limit_hours(self._limit_hour, day) * 3600.0
            self._check_s = self._check_limits[int(self._limit_hour) % 24] * 3600.0 if self.check_ins_per_month else 0.0
        if self._episode_level == 0:
            if silence >= self._limit_s:
                # Past the alarm limit when first seen (late readings): carers at once, no check-in first.
                self._episode_since, self._episode_level = self._last_use, 1
                return [self._finding("raised", interval, silence)]
            if self._check_s and not self._checked and silence >= self._check_s:
                self._episode_since, self._checked = self._last_use, 1
                return [self._finding("check_in", interval, silence)]
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
        if self._episode_level or self._checked:
            findings.append(self._finding("resolved", interval, interval.start - self._last_use))
            self._episode_since, self._episode_level, self._checked = 0.0, 0, 0
        self._last_use, self._limit_s, self._check_s = interval.end, 0.0, 0.0
        self._note_first_use(interval.end, interval.utc_offset)
        return findings

    def _learn(self, start_hour: float, hours: float, weight: float = 1.0, memory: float | None = None) -> None:
        base = int(start_hour) * _COLUMNS
        counts = self._counts
        memory = self.memory if memory is None else memory
        row = [
            min(count * memory + (weight if hours >= threshold else 0.0), 60000.0)
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
            if self.check_ins_per_month:
                self._check_limits = self.limits_table(self.check_ins_per_month, self.check_ceiling_h)
            self._limits_day = day
        return self._limits[int(start_hour) % 24]

    def check_limit_hours(self, start_hour: float, day: int = 0) -> float:
        """How long a silence starting at ``start_hour`` may last before the resident is asked (0: never)."""
        self.limit_hours(start_hour, day)
        return self._check_limits[int(start_hour) % 24] if self.check_ins_per_month else 0.0

    # -- what people and enrolment teach ----------------------------------------------------------
    def learn_feedback(self, since: float, silence_h: float, utc_offset: float) -> None:
        """A person answered that an alarm (or a check-in) on a silence from ``since`` was needless
        (``false_alarm`` / ``resident_fine``): that silence counts as normal for its start hour, with
        ``FEEDBACK_WEIGHT``, and the limits are worked out again at the next silence."""
        if not math.isfinite(silence_h) or silence_h <= 0:
            return
        self._learn(local_hour(since, utc_offset), min(silence_h, 23.99), FEEDBACK_WEIGHT, memory=1.0)
        self._limits_day = 0

    def learn_hints(
        self, *, wake_minute: float | None, outings: list[tuple[int, float, float]], utc_offset: float = 0.0
    ) -> None:
        """Start from what enrolment says about the elder's routine: the usual getting-up time (local
        minutes) and regular outings (days of the week as a bit mask, Monday = 1, start and end in local
        minutes). Each counts as ``HINT_WEEKS`` weeks of the household's own silences."""
        del utc_offset  # hints are in local time already
        if wake_minute is not None:
            night_h = ((wake_minute - _BEDTIME_MINUTE) % 1440) / 60.0
            self._learn(_BEDTIME_MINUTE / 60.0, night_h, 7 * HINT_WEEKS, memory=1.0)
            self._first_use_minute = float(wake_minute)
        for days, start, end in outings:
            hours = ((end - start) % 1440) / 60.0
            per_week = bin(days & 0x7F).count("1")
            if hours > 0 and per_week:
                self._learn(start / 60.0, hours, per_week * HINT_WEEKS, memory=1.0)
        self._limits_day = 0

    def limits_table(self, per_month: float | None = None, ceiling_h: float | None = None) -> list[float]:
        """The limit for each start hour, spending the alarm budget where it buys the most speed.

        Minimising the expected delay Σ_h n_h·L_h subject to Σ_h n_h·S_h(L_h) = budget gives, per
        hour, the L that minimises L + λ·S_h(L): a limit sits where silences this long have become
        rare *per extra hour waited*, not where they pass a fixed rarity. λ is then chosen so the
        household's expected false alarms per month (its silences per hour times their chance to
        outgrow the limit) match ``false_alarms_per_month``.
        """
        budget = self.false_alarms_per_month if per_month is None else per_month
        ceiling = self.ceiling_h if ceiling_h is None else min(ceiling_h, self.ceiling_h)
        keep = (self.min_silence_h <= _GRID) & (ceiling >= _GRID)
        grid = _GRID[keep]
        log_survival = np.log(np.maximum(self.survival_table(), 1e-9))  # 24 × columns
        on_grid = np.exp(log_survival @ _TO_GRID[:, keep])  # 24 × G
        on_grid[:, grid > _THRESHOLDS[-1]] *= 0.5  # beyond what is learned: assume the tail keeps thinning
        silences_by_hour = self.silences_per_month() * self.start_shares()  # per month, 24
        rows = np.arange(24)

        def best_for(index: int) -> tuple[np.ndarray, float]:
            """Each hour's limit (grid index) for one λ, and the false alarms per month it costs."""
            best = (grid[None, :] + _LAMBDAS[index] * on_grid).argmin(axis=1)  # 24
            return best, float((on_grid[rows, best] * silences_by_hour).sum())

        # The first λ whose limits fit the budget. A larger λ never shortens a limit (survival does
        # not grow with the limit), so the false alarms fall monotonically in λ and a bisection
        # finds the same λ as trying them all, in 7 steps instead of 80.
        low, high = 0, len(_LAMBDAS) - 1
        best, cost = best_for(high)
        if cost <= budget:
            while low < high:
                middle = (low + high) // 2
                best_middle, cost_middle = best_for(middle)
                if cost_middle <= budget:
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
        if transition == "check_in":
            facts["check_limit_h"] = round(self._check_s / 3600.0, 2)
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
        elif transition == "check_in":
            parts_zh.append("先询问老人本人")
            parts_en.append("asking the resident first")
        zh = "；".join(parts_zh) + "。"
        en = "; ".join(parts_en).capitalize() + "."
        return finding(
            self.name,
            transition,
            _SEVERITY[max(1, self._episode_level)],  # a check-in is as serious as the alarm it may become
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
                self._check_s,
                self._checked,
            ),
            self._counts + self._limits + self._check_limits,
        )

    def load(self, data: bytes) -> None:
        if data[:1] == bytes([_LAYOUT_V1.version]):  # before the check tier: asked nothing yet
            scalars, halves = _LAYOUT_V1.unpack(data)
            scalars, halves = (*scalars, 0.0, 0), halves + [0.0] * 24
            limits_day_index = 11
            scalars = (*scalars[:limits_day_index], 0, *scalars[limits_day_index + 1 :])  # work the tables out again
        else:
            scalars, halves = _LAYOUT.unpack(data)
        split = 24 * _COLUMNS
        self._counts, self._limits = halves[:split], halves[split : split + 24]
        self._check_limits = halves[split + 24 :]
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
            self._check_s,
            self._checked,
        ) = scalars  # type: ignore[assignment]
