"""The pure core of the readings agent: bytes in, alert events and dead letters out.

No Faust and no Kafka here, so it is tested without either; the agent only moves bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from detectors import DetectorBank, Finding, Observation
from shouwang.deadletter import DeadLetter
from shouwang.events import (
    AlertEvent,
    AlertKind,
    EventError,
    Explanation,
    MeterReading,
    Severity,
    alert_id_for,
    decode_reading_message,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """Where a Kafka record came from, and its raw key and value."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(slots=True)
class Outcome:
    """What processing one record produced."""

    readings: list[MeterReading] = field(default_factory=list)
    alerts: list[AlertEvent] = field(default_factory=list)
    dead_letter: DeadLetter | None = None
    rekeyed: bool = False


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


class ReadingProcessor:
    """Decode → validate → detector bank → alert events, for one record at a time."""

    def __init__(self, bank_factory: Callable[[str], DetectorBank] | None = None) -> None:
        # Today's detectors keep no per-meter state, so one bank serves every meter; per-meter state
        # (the streams issue) will come from the factory instead.
        shared = DetectorBank()
        self._bank_factory = bank_factory or (lambda _meter_id: shared)

    def process(self, record: SourceRecord) -> Outcome:
        try:
            return self._process(record)
        except EventError as exc:
            return Outcome(dead_letter=dead_letter_for(record, str(exc), "invalid"))
        except Exception as exc:  # one bad record must never stop the worker
            log.exception("failed on %s[%d]@%d", record.topic, record.partition, record.offset)
            reason = f"internal error: {type(exc).__name__}"
            return Outcome(dead_letter=dead_letter_for(record, reason, "internal"))

    def _process(self, record: SourceRecord) -> Outcome:
        if record.value is None:
            raise EventError("empty message (null value)")
        message = decode_reading_message(record.value)
        readings = message.split() if message.type == "reading_batch" else [message]
        meter_id = message.meter_id
        outcome = Outcome(readings=readings, rekeyed=record.key != meter_id.encode())
        bank = self._bank_factory(meter_id)
        for reading in readings:
            observation = Observation(meter_id=meter_id, ts=reading.ts,
                                      register_l=reading.register_l,
                                      flags=frozenset(flag.value for flag in reading.flags))
            for finding in bank.update(observation):
                outcome.alerts.append(finding_to_alert(meter_id, finding))
        return outcome


def dead_letter_for(record: SourceRecord, reason: str, error_class: str) -> DeadLetter:
    return DeadLetter(reason=reason, error_class=error_class, key=record.key, value=record.value,
                      source_topic=record.topic, source_partition=record.partition,
                      source_offset=record.offset)
