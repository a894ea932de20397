"""A detector bank: every detector of one meter, with the meter's whole state in one blob.

One bank per meter. ``update`` turns a reading into an interval once (``detectors.intervals``)
and hands it to each detector in turn; ``advance`` lets the passing of time speak (an overdue
meter); ``dump``/``load`` move the whole state — a few hundred bytes — in and out of a Faust
table or a replay checkpoint. Everything runs on the readings' event time.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from detectors.base import Detector, Finding, Interval, Observation
from detectors.continuous_flow import ContinuousFlowDetector
from detectors.data_quality import DataQualityDetector
from detectors.day_summary import DaySummary, DayTracker
from detectors.history import UsageHistory
from detectors.intervals import IntervalBuilder
from detectors.meter_flags import MeterFlagsDetector
from detectors.meter_offline import MeterOfflineDetector
from detectors.no_usage import NoUsageDetector
from detectors.routine_change import RoutineChangeDetector
from detectors.spike import SpikeDetector

# Version 2 adds the day tracker (the daily all-is-well message); a version-1 blob still loads and the
# tracker starts fresh, so an upgraded worker keeps every household's learned routine.
_FORMAT_VERSION = 2
_FORMAT_VERSION_WITHOUT_DAYS = 1
_LENGTH = struct.Struct("<H")
_ALERTING = frozenset({"raised", "escalated"})
_WATER_KINDS = frozenset({"no_usage", "continuous_flow", "spike", "routine_change"})  # what the chart is for


@functools.lru_cache(maxsize=65_536)
def _utc_offset(zone: ZoneInfo, hour: int) -> float:
    """A zone's offset from UTC in the epoch hour ``hour``. Shared by every bank: a day's upload
    has 24 hours, and the meters of one worker all read about the same hours."""
    delta = datetime.fromtimestamp(hour * 3600.0, zone).utcoffset()
    return delta.total_seconds() if delta else 0.0


def state_reading_time(data: bytes) -> float | None:
    """The time of the last reading a bank state (``DetectorBank.dump``) applied, read from its header
    without loading it; None for anything else (an empty bank, a marker, another format). It only moves
    forward in a meter's history, so of two states of one meter the later is the one with the later time."""
    if len(data) < 1 + _LENGTH.size or data[0] not in (_FORMAT_VERSION, _FORMAT_VERSION_WITHOUT_DAYS):
        return None
    (length,) = _LENGTH.unpack_from(data, 1)
    try:
        return IntervalBuilder.last_reading_time(data[1 + _LENGTH.size : 1 + _LENGTH.size + length])
    except ValueError:
        return None


def default_detectors() -> list[Detector]:
    """The household detectors, with their default settings."""
    return [
        DataQualityDetector(),
        MeterOfflineDetector(),
        NoUsageDetector(),
        ContinuousFlowDetector(),
        SpikeDetector(),
        RoutineChangeDetector(),
    ]


class DetectorBank:
    """All detectors for one meter, fed in event-time order; the household's local time is ``tz``."""

    def __init__(
        self,
        detectors: Sequence[Detector] | None = None,
        *,
        tz: str = "Asia/Shanghai",
        intervals: IntervalBuilder | None = None,
    ) -> None:
        self.detectors = list(detectors) if detectors is not None else default_detectors()
        self.tz = tz
        self._zone = ZoneInfo(tz)
        self._intervals = intervals or IntervalBuilder()
        self._history = UsageHistory()
        self._days = DayTracker()
        self._day_summaries: list[DaySummary] = []
        self._flags = MeterFlagsDetector()
        self._offset_hour = -1
        self._offset = 0.0

    def utc_offset(self, t: float) -> float:
        """The household's UTC offset at epoch second ``t`` (offsets change on the hour)."""
        hour = int(t // 3600.0)
        if hour != self._offset_hour:
            self._offset_hour, self._offset = hour, _utc_offset(self._zone, hour)
        return self._offset

    def update(self, observation: Observation) -> list[Finding]:
        """One reading (the replay feeds them this way)."""
        return self.update_points(
            observation.meter_id,
            [(observation.ts.timestamp(), observation.register_l)],
            observation.flags,
            observation.ts,
        )

    def update_points(
        self,
        meter_id: str,
        points: Sequence[tuple[float, float]],
        flags: frozenset[str] = frozenset(),
        flagged_at: datetime | None = None,
    ) -> list[Finding]:
        """An upload's readings in event-time order, as (epoch seconds, register litres): the same as
        ``update`` for each, without an ``Observation`` per reading. ``flags`` came with the last
        reading, whose time as sent is ``flagged_at`` (UTC from its epoch seconds if not given)."""
        findings: list[Finding] = []
        self._day_summaries = []
        last = len(points) - 1
        for index, (t, register_l) in enumerate(points):
            if flags and index == last:
                at = flagged_at if flagged_at is not None else datetime.fromtimestamp(t, UTC)
                findings.extend(self._flags.update(Observation(meter_id, at, register_l, flags)))
            interval = self._intervals.accept(t, register_l, self.utc_offset(t))
            if interval is not None:
                findings.extend(self.update_interval(interval))
        return findings

    def update_interval(self, interval: Interval) -> list[Finding]:
        """Run every detector on one interval (the replay and the stream both end up here)."""
        self._history.note(interval)
        days = self._days.update(interval)
        if days:
            self._day_summaries.extend(days)
        findings: list[Finding] = []
        for detector in self.detectors:
            found = detector.update(interval)
            if found:
                findings.extend(found)
        return self._with_series(findings) if findings else findings

    def take_day_summaries(self) -> list[DaySummary]:
        """The day summaries of the last ``update``/``update_points`` (a first use seen, a day over), once."""
        summaries, self._day_summaries = self._day_summaries, []
        return summaries

    def advance(self, now: float) -> list[Finding]:
        """Time (epoch seconds) has passed without a reading: what only time can tell."""
        offset = self.utc_offset(now)
        findings: list[Finding] = []
        for detector in self.detectors:
            findings.extend(detector.advance(now, offset))
        return findings

    def learn_feedback(self, kind: str, since: float, silence_h: float) -> bool:
        """A person said an alarm of ``kind`` on the episode from ``since`` (epoch seconds) was needless:
        the detector of that kind learns from it. False when no detector of the bank learns from people."""
        for detector in self.detectors:
            if detector.name == kind and isinstance(detector, NoUsageDetector):
                detector.learn_feedback(since, silence_h, self.utc_offset(since))
                return True
        return False

    def learn_hints(self, *, wake_minute: float | None, outings: list[tuple[int, float, float]]) -> None:
        """What enrolment says about the elder's routine (local minutes; see ``NoUsageDetector.learn_hints``)."""
        for detector in self.detectors:
            if isinstance(detector, NoUsageDetector):
                detector.learn_hints(wake_minute=wake_minute, outings=outings)

    def wake_at(self) -> float:
        """The earliest epoch second after which ``advance`` could find something (inf: never)."""
        return min((detector.wake_at() for detector in self.detectors), default=math.inf)

    def _with_series(self, findings: list[Finding]) -> list[Finding]:
        series = None
        out = []
        for finding in findings:
            if finding.transition in _ALERTING and finding.kind in _WATER_KINDS:
                series = series or self._history.series()
                finding = replace(finding, facts={**finding.facts, "usage_hourly_l": series})
            out.append(finding)
        return out

    # -- state ----------------------------------------------------------------------------------------
    def dump(self) -> bytes:
        """The whole meter state: a version byte, then each part length-prefixed."""
        parts = [self._intervals.dump(), self._history.dump(), *(d.dump() for d in self.detectors), self._days.dump()]
        return bytes([_FORMAT_VERSION]) + b"".join(_LENGTH.pack(len(part)) + part for part in parts)

    def load(self, data: bytes) -> None:
        """Restore from ``dump``; ``ValueError`` if the blob does not fit this bank."""
        if not data or data[0] not in (_FORMAT_VERSION, _FORMAT_VERSION_WITHOUT_DAYS):
            raise ValueError("not a detector bank state of a known version")
        targets: list[IntervalBuilder | UsageHistory | Detector | DayTracker] = [
            self._intervals,
            self._history,
            *self.detectors,
        ]
        if data[0] == _FORMAT_VERSION:
            targets.append(self._days)
        else:
            self._days = DayTracker()  # written before the tracker existed: today is learned from now on
        position = 1
        for target in targets:
            if position + _LENGTH.size > len(data):
                raise ValueError("detector bank state is truncated")
            (length,) = _LENGTH.unpack_from(data, position)
            position += _LENGTH.size
            target.load(data[position : position + length])
            position += length
        if position != len(data):
            raise ValueError("detector bank state has trailing bytes")
