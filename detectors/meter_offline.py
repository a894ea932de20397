"""``meter_offline``: readings are overdue for this meter's own reporting interval.

Never confused with silence: a meter that does not report says nothing about water use, so
``no_usage`` waits for readings and this detector speaks instead. Raised either by the passing
of time (``advance``, from the stream's timer) or, if nobody was watching the clock, as soon as
the late reading shows the gap; resolved by the next reading.
"""

from __future__ import annotations

import math
from typing import ClassVar

from detectors.base import Finding, Interval
from detectors.findings import finding
from detectors.state import StateLayout
from detectors.timefmt import duration_en, duration_zh, when_en, when_zh

_LAYOUT = StateLayout(1, "dddB")
_LEARN = 0.05


class MeterOfflineDetector:
    """Raises when no reading arrived for ``factor`` reporting intervals (at least ``min_h``)."""

    name: ClassVar[str] = "meter_offline"

    def __init__(self, *, factor: float = 3.0, min_h: float = 6.0) -> None:
        self.factor = factor
        self.min_h = min_h
        self._last = 0.0
        self._log_interval = 0.0  # running mean of log(seconds between readings); 0: not learned
        self._episode_since = 0.0
        self._open = 0

    def usual_interval_s(self) -> float:
        """The meter's own reporting interval, as learned (an hour until it has reported twice)."""
        return math.exp(self._log_interval) if self._log_interval else 3600.0

    def overdue_s(self) -> float:
        """Seconds without a reading after which the meter counts as offline."""
        return max(self.min_h * 3600.0, self.factor * self.usual_interval_s())

    def update(self, interval: Interval) -> list[Finding]:
        if interval.end <= interval.start:
            if not self._last:
                self._last = interval.end  # the meter's first reading: from now on it can be overdue
            return []
        findings: list[Finding] = []
        gap = interval.end - interval.start
        overdue = self.overdue_s()
        if not self._open and gap > overdue:  # nobody advanced the clock: say it now, in event time
            self._open, self._episode_since = 1, interval.start
            findings.append(self._raised(interval.start + overdue, interval.utc_offset))
        if self._open:
            self._open = 0
            findings.append(self._resolved(interval))
        # Every gap is learned, outages too (slowly, in log space): a meter that reports once a
        # day must come to be expected once a day, and one outage barely moves an hourly meter.
        sample = math.log(min(max(gap, 10.0), 7 * 86400.0))
        self._log_interval = (
            sample if not self._log_interval else (self._log_interval + _LEARN * (sample - self._log_interval))
        )
        self._last = interval.end
        return findings

    def advance(self, now: float, utc_offset: float) -> list[Finding]:
        if self._open or not self._last or now - self._last <= self.overdue_s():
            return []
        self._open, self._episode_since = 1, self._last
        return [self._raised(now, utc_offset)]

    def wake_at(self) -> float:
        if self._open or not self._last:
            return math.inf
        return self._last + self.overdue_s()

    def _raised(self, at: float, offset: float) -> Finding:
        since = self._episode_since
        usual = self.usual_interval_s()
        zh = (
            f"水表自{when_zh(since, at, offset)}起没有上报读数（已 {duration_zh(at - since)}，"
            f"平时约每 {duration_zh(usual)} 一次）。这不代表没有用水，请检查水表或通信。"
        )
        en = (
            f"The meter has not reported since {when_en(since, at, offset)} ({duration_en(at - since)}; it "
            f"usually reports every {duration_en(usual)}). This says nothing about water use: check the "
            "meter or its link."
        )
        return finding(
            self.name,
            "raised",
            "low",
            since=since,
            at=at,
            utc_offset=offset,
            zh=zh,
            en=en,
            facts={"overdue_h": round((at - since) / 3600.0, 2), "usual_interval_s": round(usual)},
        )

    def _resolved(self, interval: Interval) -> Finding:
        since, at, offset = self._episode_since, interval.end, interval.utc_offset
        zh = f"水表已恢复上报（{when_zh(at, at, offset)}），中断约 {duration_zh(at - since)}。"
        en = f"The meter reports again ({when_en(at, at, offset)}) after about {duration_en(at - since)}."
        return finding(self.name, "resolved", "low", since=since, at=at, utc_offset=offset, zh=zh, en=en)

    def dump(self) -> bytes:
        return _LAYOUT.pack((self._last, self._log_interval, self._episode_since, self._open))

    def load(self, data: bytes) -> None:
        (self._last, self._log_interval, self._episode_since, self._open), _ = _LAYOUT.unpack(data)  # type: ignore[assignment]
