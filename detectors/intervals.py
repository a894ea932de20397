"""Readings → intervals: the one place where raw registers are checked.

A cumulative register is easy to get wrong in the field: readings arrive twice, late or out of
order; registers are replaced (reset to zero) or roll over at their last digit; a glitch jumps
by thousands of litres. The builder turns consecutive readings into an ``Interval`` of known (or
explicitly unknown) usage and names what was wrong, so that no detector ever mistakes a glitch
for a burst or a replaced meter for a week of silence.
"""

from __future__ import annotations

import math
from typing import ClassVar

from detectors.base import Interval
from detectors.state import StateLayout

_LAYOUT = StateLayout(2, "ddId")


class IntervalBuilder:
    """Consecutive readings of one meter as intervals, with data-quality issues named.

    - The first reading is a zero-length interval: nothing was used yet, but the meter was heard.
    - A reading older than the last one is late and ignored (``late`` counts them): the
      detectors have already moved past its time.
    - The same timestamp again with the same register is a duplicate and ignored; with a
      different register it is a ``conflicting_duplicate`` (the first one stands).
    - A step back by at most ``jitter_l`` is read as no use (the higher value stays the base).
    - A register near its last digit that restarts near zero is a ``rollover``: usage is the
      distance across the wrap. A drop to almost nothing is a ``reset`` (a replaced meter), any
      other drop ``backwards``: usage unknown, the new value becomes the base.
    - More than ``max_rate_lph`` is more than a household connection can pass: an
      ``impossible_rate`` glitch, usage unknown.
    """

    name: ClassVar[str] = "intervals"

    def __init__(self, *, max_rate_lph: float = 5000.0, jitter_l: float = 5.0) -> None:
        self.max_rate_lph = max_rate_lph
        self.jitter_l = jitter_l
        self._last_ts = -math.inf
        self._register = 0.0  # the base usage is counted from (the higher value after jitter)
        self._last_raw = 0.0  # the register as last reported (what a duplicate must repeat)
        self.late = 0

    def accept(self, ts: float, register: float, utc_offset: float) -> Interval | None:
        last_ts = self._last_ts
        if ts <= last_ts:
            if ts == last_ts:
                if register == self._last_raw:
                    return None
                return Interval(ts, ts, None, utc_offset, ("conflicting_duplicate",))
            self.late += 1
            return None
        self._last_ts, self._last_raw = ts, register
        if last_ts == -math.inf:
            self._register = register
            return Interval(ts, ts, 0.0, utc_offset)  # the first reading: zero length, "heard from"
        delta = register - self._register
        if delta >= 0:
            litres: float | None = delta
            issues: tuple[str, ...] = ()
        elif -delta <= self.jitter_l:
            return Interval(last_ts, ts, 0.0, utc_offset)  # the base stays at the higher value
        else:
            litres, issues = self._drop(register)
        self._register = register
        if litres is not None and litres > self.max_rate_lph * (ts - last_ts) / 3600.0 + 10.0:
            litres, issues = None, (*issues, "impossible_rate")
        return Interval(last_ts, ts, litres, utc_offset, issues)

    def _drop(self, register: float) -> tuple[float | None, tuple[str, ...]]:
        previous = self._register
        if previous >= 1.0:
            span = 10.0 ** len(str(int(previous)))  # the register's digits: 99999.5 wraps at 100000
            if previous >= 0.9 * span and register < 0.1 * span:
                return span - previous + register, ("rollover",)
        if register <= 0.01 * previous:
            return None, ("reset",)
        return None, ("backwards",)

    def dump(self) -> bytes:
        last_ts = self._last_ts if self._last_ts != -math.inf else -1.0
        return _LAYOUT.pack((last_ts, self._register, self.late, self._last_raw))

    def load(self, data: bytes) -> None:
        (last_ts, self._register, self.late, self._last_raw), _ = _LAYOUT.unpack(data)  # type: ignore[assignment]
        self._last_ts = last_ts if last_ts != -1.0 else -math.inf

    @staticmethod
    def last_reading_time(data: bytes) -> float | None:
        """``last_ts`` of a dumped state without building one (None before any reading)."""
        (last_ts, *_), _ = _LAYOUT.unpack(data)
        return None if last_ts == -1.0 else float(last_ts)

    @property
    def last_ts(self) -> float:
        return self._last_ts
