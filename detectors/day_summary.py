"""One meter's local day as a family reads it: when the water was first used, how much, in how many hours.

Not a detector: it raises nothing. It feeds the daily all-is-well (平安) message, which says "妈妈今天 07:12
开始用水，一切如常" once the day's first use is seen. The morning is judged exactly as ``no_usage`` judges
it (``NoUsageDetector._note_first_use``): the end of the first interval of the local day with at least
``use_litres``, at or after 04:00 local (a night visit to the bathroom is not the morning).

An interval counts for the local day of its last second (an hourly reading at 00:00 closes the day
before), and the day is over when an interval ends at or past the next local midnight: the summary of a
day then needs no reading of the next day but its first. A gap across several days counts for the day it
ends in; the days it skipped have no summary (nothing is known of them).
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors.base import Interval
from detectors.state import StateLayout
from detectors.timefmt import local_day, local_hour

# day (local days since the epoch; 0: none yet), first use (epoch s; 0: not seen), litres,
# the hours with use as a 24-bit mask, the household's UTC offset last seen.
_LAYOUT = StateLayout(1, "iddId")
MORNING_MINUTE = 240.0  # 04:00: what no_usage takes for the start of the morning


@dataclass(frozen=True, slots=True)
class DaySummary:
    """One local day of one meter so far (``complete``: the day is over)."""

    day: int  # local days since 1970-01-01
    first_use: float | None  # epoch seconds of the morning's first use; None: not seen (yet)
    litres: float
    hours_with_use: int
    utc_offset: float  # the household's offset that day (seconds east of UTC)
    complete: bool


class DayTracker:
    """Per meter: the current local day. ``update`` says when the first use is seen and when the day ends."""

    def __init__(self, *, use_litres: float = 0.5) -> None:
        self.use_litres = use_litres
        self._day = 0
        self._first_use = 0.0
        self._litres = 0.0
        self._hours = 0
        self._offset = 0.0

    def update(self, interval: Interval) -> list[DaySummary]:
        """The summaries this interval brings: the end of an earlier day, the morning's first use, or both."""
        offset = interval.utc_offset
        if interval.end <= interval.start:  # a meter's first reading: heard from, nothing used
            if not self._day:
                self._day, self._offset = local_day(interval.end, offset), offset
            return []
        out: list[DaySummary] = []
        day = local_day(interval.end - 1.0, offset)
        if day > self._day:
            if self._day:
                out.append(self._summary(complete=True))
            self._start(day, offset)
        self._offset = offset
        litres = interval.litres
        if litres is not None and litres > 0.0:  # unknown usage (a reset, a glitch) adds nothing
            self._litres += litres
            if litres >= self.use_litres:
                self._hours |= 1 << int(local_hour(interval.end - 1.0, offset))
                if not self._first_use and local_hour(interval.end, offset) * 60.0 >= MORNING_MINUTE:
                    self._first_use = interval.end
                    out.append(self._summary(complete=False))
        next_day = local_day(interval.end, offset)
        if next_day > self._day:  # ended at (or past) midnight: this day is over, the next one begins
            out.append(self._summary(complete=True))
            self._start(next_day, offset)
        return out

    def _start(self, day: int, offset: float) -> None:
        self._day, self._first_use, self._litres, self._hours, self._offset = day, 0.0, 0.0, 0, offset

    def _summary(self, *, complete: bool) -> DaySummary:
        return DaySummary(
            day=self._day,
            first_use=self._first_use or None,
            litres=self._litres,
            hours_with_use=self._hours.bit_count(),
            utc_offset=self._offset,
            complete=complete,
        )

    def dump(self) -> bytes:
        return _LAYOUT.pack((self._day, self._first_use, self._litres, self._hours, self._offset))

    def load(self, data: bytes) -> None:
        (day, first_use, litres, hours, offset), _ = _LAYOUT.unpack(data)
        self._day, self._first_use, self._litres = int(day), float(first_use), float(litres)
        self._hours, self._offset = int(hours), float(offset)
