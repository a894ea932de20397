"""``spike``: far more water in one hour than this household ever uses (a burst pipe, a tap
left open at full flow).

The household's normal is its largest hourly volume of recent weeks (a slowly forgetting
maximum); an hour above ``factor`` times that — and above an absolute floor, so a small home
does not alarm on its first full bath — is raised. The hour's volume is not learned from when
it is raised, so a burst never teaches the detector that bursts are normal. Glitches (more than
a connection can pass) never reach this detector: they are ``data_quality``.
"""

from __future__ import annotations

import math
from typing import ClassVar

from detectors.base import Finding, Interval
from detectors.findings import finding
from detectors.state import StateLayout
from detectors.timefmt import when_en, when_zh

_LAYOUT = StateLayout(1, "idddBdd")
_HOUR = 3600.0


class SpikeDetector:
    """Raises when one hour's volume is far above the household's own largest hours."""

    name: ClassVar[str] = "spike"

    def __init__(
        self,
        *,
        floor_l: float = 250.0,
        factor: float = 1.3,
        cap_l: float = 700.0,
        half_life_days: float = 30.0,
        warm_up_days: float = 14.0,
    ) -> None:
        self.floor_l = floor_l
        self.factor = factor
        self.cap_l = cap_l
        self.half_life_days = half_life_days
        self.warm_up_days = warm_up_days
        self._first = 0.0  # the first reading's time: until warm-up ends only the cap applies
        self._hour = 0  # the clock hour (epoch hours) being summed
        self._hour_litres = 0.0
        self._high_l = 0.0  # the household's largest recent hourly volume, slowly forgotten
        self._high_at = 0.0  # when ``_high_l`` was last refreshed (for the forgetting)
        self._open = 0
        self._episode_since = 0.0

    def threshold(self) -> float:
        """Litres in one hour above which this household's hour is raised."""
        usual = self.factor * self._high_l
        if self._high_at - self._first < self.warm_up_days * 86400.0:
            return max(self.cap_l, usual)  # too early to know the household's large hours
        return max(self.floor_l, min(self.cap_l, usual))

    def update(self, interval: Interval) -> list[Finding]:
        litres = interval.litres
        if litres is None or interval.end <= interval.start:
            return []
        hours = interval.hours
        if hours > 2.0:  # a gap in the readings: compare its average hour, never its total
            litres /= hours
        if not self._first:
            self._first = interval.start
        hour = int(interval.end // _HOUR)
        findings: list[Finding] = []
        if hour != self._hour:
            findings = self._close_hour(interval)
            self._hour, self._hour_litres = hour, 0.0
        self._hour_litres += litres
        if not self._open and self._hour_litres >= self.threshold():
            self._open, self._episode_since = 1, max(interval.start, hour * _HOUR - _HOUR)
            findings.append(self._raised(interval))
        return findings

    def advance(self, now: float, utc_offset: float) -> list[Finding]:
        return []

    def wake_at(self) -> float:
        return math.inf

    def _close_hour(self, interval: Interval) -> list[Finding]:
        volume, was_open = self._hour_litres, self._open
        if not was_open:
            self._learn(volume, interval.start)
            return []
        # A raised hour is learned only up to the threshold it broke: one burst does not teach that
        # bursts are normal, but a household that really fills a pool now and then stops alarming.
        self._learn(min(volume, self.threshold()), interval.start)
        self._open = 0
        since, at, offset = self._episode_since, interval.end, interval.utc_offset
        zh = f"用水量已回落到正常水平（{when_zh(at, at, offset)}）。"
        en = f"Water use is back to normal ({when_en(at, at, offset)})."
        return [finding(self.name, "resolved", "high", since=since, at=at, utc_offset=offset, zh=zh, en=en)]

    def _learn(self, volume: float, t: float) -> None:
        if self._high_at:
            forget = math.exp(-math.log(2.0) * (t - self._high_at) / (self.half_life_days * 86400.0))
            self._high_l *= forget
        self._high_at = t
        self._high_l = max(self._high_l, volume)

    def _raised(self, interval: Interval) -> Finding:
        since, at, offset = self._episode_since, interval.end, interval.utc_offset
        volume, usual = self._hour_litres, self._high_l
        zh = (
            f"{when_zh(at, at, offset)}前一小时内用水 {volume:.0f} 升，"
            f"该户近几周单小时最多约 {usual:.0f} 升，疑似爆管或水龙头大开未关。"
        )
        en = (
            f"{volume:.0f} L of water in the hour to {when_en(at, at, offset)}; this home's largest hour in "
            f"recent weeks was about {usual:.0f} L. A burst pipe or a tap left fully open?"
        )
        return finding(
            self.name,
            "raised",
            "high",
            since=since,
            at=at,
            utc_offset=offset,
            zh=zh,
            en=en,
            facts={
                "hour_l": round(volume, 1),
                "usual_max_l": round(usual, 1),
                "threshold_l": round(self.threshold(), 1),
            },
        )

    def dump(self) -> bytes:
        return _LAYOUT.pack(
            (self._hour, self._hour_litres, self._high_l, self._high_at, self._open, self._episode_since, self._first)
        )

    def load(self, data: bytes) -> None:
        (
            (self._hour, self._hour_litres, self._high_l, self._high_at, self._open, self._episode_since, self._first),
            _,
        ) = _LAYOUT.unpack(data)  # type: ignore[assignment]
