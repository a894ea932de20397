"""``continuous_flow``: water that never stops (a leak, a running toilet, a tap left open).

Every home has hours without any use, at least at night. Flow that has not paused for
``run_h`` hours — each interval at least a floor above the household's own normal minimum — is
raised once and stays one episode until the flow has really stopped for ``clear_h`` hours, so a
persistent leak is one alarm, not one per pause.
"""

from __future__ import annotations

import math
from typing import ClassVar

from detectors.base import Finding, Interval
from detectors.findings import finding
from detectors.state import StateLayout
from detectors.timefmt import duration_en, duration_zh, local_day, when_en, when_zh

_LAYOUT = StateLayout(1, "ddddBidd")
_BASELINE_RATE = 0.05  # weight of one day's minimum in the household's normal minimum flow
_LONGEST_EVIDENCE_H = 3.0  # a longer interval (an outage) cannot start a run


class ContinuousFlowDetector:
    """Raises when flow has not paused for ``run_h`` hours."""

    name: ClassVar[str] = "continuous_flow"

    def __init__(
        self,
        *,
        run_h: float = 22.0,
        floor_lph: float = 3.0,
        clear_h: float = 4.0,
        high_lph: float = 30.0,
        fast_lph: float = 25.0,
        fast_run_h: float = 16.0,
    ) -> None:
        self.run_h = run_h
        self.floor_lph = floor_lph
        self.clear_h = clear_h
        self.high_lph = high_lph
        self.fast_lph = fast_lph  # a flow this strong that never stops is raised after fast_run_h
        self.fast_run_h = fast_run_h
        self._run_start = 0.0  # when the current unbroken flow began; 0: not flowing
        self._episode_since = 0.0
        self._quiet_since = 0.0  # in an episode: when the flow last stopped; 0: still flowing
        self._run_min_lph = 0.0
        self._open = 0
        self._day = 0
        self._day_min_lph = -1.0  # the lowest rate seen today (intervals of at most two hours)
        self._baseline_lph = 0.0  # the household's normal daily minimum flow

    def floor(self) -> float:
        """Rate above which an interval counts as flowing for this household."""
        return self.floor_lph + self._baseline_lph

    def update(self, interval: Interval) -> list[Finding]:
        litres = interval.litres
        hours = interval.hours
        if litres is None or hours <= 0:
            return []
        rate = litres / hours
        self._note_day(interval, rate)
        if hours > _LONGEST_EVIDENCE_H and not (self._run_start and rate >= self.floor()):
            # A gap in the readings: its average alone cannot say the flow never paused (a day of
            # ordinary use averages several litres an hour), so it never starts a run. It may carry
            # on a run that was already flowing, if it kept up the flow on average.
            self._run_start = 0.0
            return []
        if rate >= self.floor():
            self._quiet_since = 0.0
            if not self._run_start:
                self._run_start, self._run_min_lph = interval.start, rate
            else:
                self._run_min_lph = min(self._run_min_lph, rate)
            lasted = interval.end - self._run_start
            if not self._open and (
                lasted >= self.run_h * 3600.0
                or (self._run_min_lph >= self.fast_lph and lasted >= self.fast_run_h * 3600.0)
            ):
                self._open, self._episode_since = 1, self._run_start
                return [self._raised(interval)]
            return []
        self._run_start = 0.0
        if self._open:
            if not self._quiet_since:
                self._quiet_since = interval.start
            if interval.end - self._quiet_since >= self.clear_h * 3600.0:
                self._open = 0
                return [self._resolved(interval)]
        return []

    def advance(self, now: float, utc_offset: float) -> list[Finding]:
        return []

    def wake_at(self) -> float:
        return math.inf

    def _note_day(self, interval: Interval, rate: float) -> None:
        day = local_day(interval.end, interval.utc_offset)
        if day != self._day:
            # Not while an episode is open: a leak must not teach that leaking is normal.
            if self._day_min_lph >= 0 and not self._open and day == self._day + 1:
                self._baseline_lph += _BASELINE_RATE * (self._day_min_lph - self._baseline_lph)
            self._day, self._day_min_lph = day, -1.0
        if interval.hours <= 2.0 and (self._day_min_lph < 0 or rate < self._day_min_lph):
            self._day_min_lph = rate

    def _raised(self, interval: Interval) -> Finding:
        since, at, offset = self._episode_since, interval.end, interval.utc_offset
        lasted, rate = at - since, self._run_min_lph
        severity = "high" if rate >= self.high_lph else "medium"
        zh = (
            f"自{when_zh(since, at, offset)}起已连续 {duration_zh(lasted)} 不停流水，"
            f"每小时至少 {rate:.1f} 升；平时每天总有不用水的时段，疑似漏水或水龙头未关。"
        )
        en = (
            f"Water has flowed without a break for {duration_en(lasted)} since {when_en(since, at, offset)}, "
            f"at least {rate:.1f} L every hour; normally this home has hours without any use every day. "
            "A leak or a tap left running?"
        )
        return finding(
            self.name,
            "raised",
            severity,
            since=since,
            at=at,
            utc_offset=offset,
            zh=zh,
            en=en,
            facts={
                "flow_h": round(lasted / 3600.0, 2),
                "min_rate_lph": round(rate, 2),
                "floor_lph": round(self.floor(), 2),
            },
        )

    def _resolved(self, interval: Interval) -> Finding:
        since, at, offset = self._episode_since, interval.end, interval.utc_offset
        stopped = self._quiet_since
        zh = f"流水已于{when_zh(stopped, at, offset)}前后停止（持续约 {duration_zh(stopped - since)}）。"
        en = f"The flow stopped around {when_en(stopped, at, offset)} after about {duration_en(stopped - since)}."
        return finding(
            self.name,
            "resolved",
            "medium",
            since=since,
            at=at,
            utc_offset=offset,
            zh=zh,
            en=en,
            facts={"flow_h": round((stopped - since) / 3600.0, 2)},
        )

    def dump(self) -> bytes:
        return _LAYOUT.pack(
            (
                self._run_start,
                self._episode_since,
                self._quiet_since,
                self._run_min_lph,
                self._open,
                self._day,
                self._day_min_lph,
                self._baseline_lph,
            )
        )

    def load(self, data: bytes) -> None:
        (
            (
                self._run_start,
                self._episode_since,
                self._quiet_since,
                self._run_min_lph,
                self._open,
                self._day,
                self._day_min_lph,
                self._baseline_lph,
            ),
            _,
        ) = _LAYOUT.unpack(data)  # type: ignore[assignment]
