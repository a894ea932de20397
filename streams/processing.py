"""The pure core of the readings agent: bytes in, alert events and dead letters out.

No Faust and no Kafka here, so it is tested without either; the agent only moves bytes.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone

from detectors import DetectorBank, Finding
from detectors.day_summary import DaySummary
from shouwang.deadletter import DeadLetter
from shouwang.events import (
    AlertEvent,
    AlertKind,
    DailySummary,
    EventError,
    Explanation,
    Severity,
    alert_id_for,
)
from shouwang.reading_points import decode_reading_points

log = logging.getLogger(__name__)
_EPOCH_DAY = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """Where a Kafka record came from, and its raw key and value."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


# The state of a meter whose household withdrew consent: not a detector bank's state (its first byte is no
# bank version), so the learned routine is gone from the table and its changelog, and readings are dropped.
NO_CONSENT = b"\x00consent-withdrawn"
# The state of a meter whose household was erased (streams.feedback): likewise no bank's state, and for good. Its
# readings are dead letters without their bytes: the reason and the place they came from, not the water use.
ERASED = b"\x00erased"
ERASED_VALUE_DROPPED = "an erased household's reading is not kept"


@dataclass(slots=True)
class Outcome:
    """What processing one record produced.

    ``rekeyed``: the record was not keyed by its meter id, so it sits in a partition that does not
    hold the meter's state; the agent sends it again under the right key instead of processing it.
    ``state``: the meter's new detector state, to be written to the table (None: unchanged).
    ``daily``: the meter's day summaries this record brought (a morning's first use, a day over).
    """

    reading_count: int = 0
    alerts: list[AlertEvent] = field(default_factory=list)
    daily: list[DailySummary] = field(default_factory=list)
    dead_letter: DeadLetter | None = None
    rekeyed: bool = False
    meter_id: str | None = None
    state: bytes | None = None
    state_reset: bool = False
    dropped_no_consent: int = 0  # readings dropped: their household withdrew consent
    wake_at: float = math.inf  # when time alone could next tell something about this meter


def finding_to_alert(meter_id: str, finding: Finding) -> AlertEvent:
    """A detector's finding as an alert event with its stable episode id."""
    kind = AlertKind(finding.kind)
    return AlertEvent(
        alert_id=alert_id_for(meter_id, kind, finding.since),
        event=finding.transition,
        meter_id=meter_id,
        kind=kind,
        severity=Severity(finding.severity),
        since=finding.since,
        at=finding.at,
        explanation=Explanation(zh=finding.explanation_zh, en=finding.explanation_en),
        facts=dict(finding.facts),
    )


def day_summary_event(meter_id: str, summary: DaySummary) -> DailySummary:
    """A tracker's day summary as the daily topic's event: the local day as a date, times with the offset."""
    zone = timezone(timedelta(seconds=summary.utc_offset))
    first_use = None if summary.first_use is None else datetime.fromtimestamp(summary.first_use, zone)
    return DailySummary(
        meter_id=meter_id,
        day=(_EPOCH_DAY + timedelta(days=summary.day)).isoformat(),
        first_use_at=first_use,
        litres=round(summary.litres, 1),
        hours_with_use=summary.hours_with_use,
        complete=summary.complete,
    )


class RecordProcessor:
    """A record and its meter's state in, an ``Outcome`` out, never an exception: a bad record becomes a
    dead letter with its reason (shared by the readings and the feedback processors)."""

    def process(self, record: SourceRecord, state: bytes | None = None) -> Outcome:
        try:
            return self._process(record, state)
        except EventError as exc:
            return Outcome(dead_letter=dead_letter_for(record, str(exc), "invalid"))
        except Exception as exc:  # one bad record must never stop the worker
            log.exception("failed on %s[%d]@%d", record.topic, record.partition, record.offset)
            reason = f"internal error: {type(exc).__name__}"
            return Outcome(dead_letter=dead_letter_for(record, reason, "internal"))

    def _process(self, record: SourceRecord, state: bytes | None) -> Outcome:
        raise NotImplementedError


class ReadingProcessor(RecordProcessor):
    """Decode → validate → the meter's detector bank → alert events, one record at a time.

    The meter's state comes in as bytes (from the worker's table) and goes out as bytes, so the
    processor itself holds nothing between records and a restarted worker loses nothing.
    """

    def __init__(
        self,
        bank_factory: Callable[[], DetectorBank] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        max_skew_s: float = 600.0,
    ) -> None:
        self._bank_factory = bank_factory or DetectorBank
        self._clock = clock
        self._max_skew_s = max_skew_s

    def _process(self, record: SourceRecord, state: bytes | None) -> Outcome:
        if record.value is None:
            raise EventError("empty message (null value)")
        message = decode_reading_points(record.value)
        meter_id, points = message.meter_id, message.points
        outcome = Outcome(reading_count=len(points), meter_id=meter_id)
        if record.key != meter_id.encode():
            outcome.rekeyed = True
            return outcome
        if state == NO_CONSENT:
            outcome.reading_count, outcome.dropped_no_consent = 0, len(points)
            return outcome
        if state == ERASED:
            outcome.reading_count = 0
            reason = f"meter {meter_id!r} belonged to a household whose data was erased: its readings are refused"
            outcome.dead_letter = dead_letter_for(record, reason, "invalid").without_value(ERASED_VALUE_DROPPED)
            return outcome
        flags, flagged_at = message.flags, message.flagged_at
        latest = self._clock() + self._max_skew_s
        if points[-1][0] > latest:  # points are in event-time order: only the end can be in the future
            future = [point for point in points if point[0] > latest]
            points = points[: len(points) - len(future)]
            flags, flagged_at = frozenset(), None  # they came with the last point, which is left out
            first = datetime.fromtimestamp(future[0][0], UTC).isoformat(timespec="seconds")
            outcome.dead_letter = dead_letter_for(
                record,
                f"{len(future)} reading(s) dated after this worker's clock by more than {self._max_skew_s:g} s "
                f"(first: {first}): left out, a reading from the future must not move the meter's clock",
                "invalid",
            )
            outcome.reading_count = len(points)
            if not points:
                return outcome
        bank = self._bank_factory()
        if state:
            try:
                bank.load(state)
            except ValueError as exc:  # a state from an incompatible version: start learning again
                log.warning("meter %s: detector state not usable (%s); starting afresh", meter_id, exc)
                bank, outcome.state_reset = self._bank_factory(), True
        for finding in bank.update_points(meter_id, points, flags, flagged_at):
            outcome.alerts.append(finding_to_alert(meter_id, finding))
        for summary in bank.take_day_summaries():
            outcome.daily.append(day_summary_event(meter_id, summary))
        outcome.state = bank.dump()
        outcome.wake_at = bank.wake_at()
        return outcome

    def advance(self, meter_id: str, state: bytes, now: float) -> tuple[list[AlertEvent], float]:
        """The passing of time for one meter (the worker's timer): its alerts, and when time could
        next tell something (inf once told: until the meter's next reading)."""
        bank = self._loaded(state)
        if bank is None:
            return [], math.inf
        alerts = [finding_to_alert(meter_id, finding) for finding in bank.advance(now)]
        return alerts, bank.wake_at()

    def wake_at(self, state: bytes) -> float:
        """When time alone could next tell something about the meter of this state."""
        bank = self._loaded(state)
        return math.inf if bank is None else bank.wake_at()

    def _loaded(self, state: bytes) -> DetectorBank | None:
        """A bank restored from ``state``; None if the state is not usable (time cannot speak for it)."""
        bank = self._bank_factory()
        try:
            bank.load(state)
        except ValueError:
            return None
        return bank


def dead_letter_for(record: SourceRecord, reason: str, error_class: str) -> DeadLetter:
    return DeadLetter(
        reason=reason,
        error_class=error_class,
        key=record.key,
        value=record.value,
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
    )
