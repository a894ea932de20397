"""The last two days of hourly use, kept so an alert can show the curve that led to it."""

from __future__ import annotations

from detectors.base import Interval
from detectors.state import StateLayout

HOURS = 48
_LAYOUT = StateLayout(1, "i", halves=HOURS)


class UsageHistory:
    """Litres per clock hour (UTC hours), a ring of ``HOURS``; usage of unknown intervals is 0."""

    def __init__(self) -> None:
        self._hour = 0
        self._litres = [0.0] * HOURS

    def note(self, interval: Interval) -> None:
        hour = int(interval.end // 3600.0)
        if hour != self._hour:
            steps = hour - self._hour
            if steps >= HOURS or steps < 0 or not self._hour:
                self._litres = [0.0] * HOURS
            else:
                for step in range(1, steps + 1):
                    self._litres[(self._hour + step) % HOURS] = 0.0
            self._hour = hour
        if interval.litres:
            self._litres[hour % HOURS] += interval.litres

    def series(self) -> str:
        """Comma-separated litres, oldest first, the current hour last (``usage_hourly_l``)."""
        start = self._hour + 1
        return ",".join(f"{self._litres[(start + i) % HOURS]:.4g}" for i in range(HOURS))

    def dump(self) -> bytes:
        return _LAYOUT.pack((self._hour,), self._litres)

    def load(self, data: bytes) -> None:
        (hour,), litres = _LAYOUT.unpack(data)
        self._hour, self._litres = int(hour), litres
