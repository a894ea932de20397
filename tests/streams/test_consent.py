"""Consent in the worker: withdrawn, a meter's learned state is deleted and its readings dropped; given
again, it starts afresh. Pure processors, no Kafka."""

from __future__ import annotations

import json

from shouwang.events import ConsentChange, encode
from streams.feedback import FeedbackProcessor
from streams.processing import NO_CONSENT, ReadingProcessor, SourceRecord
from tests.streams.test_feedback import FACTORY, PARTITIONS, _record, _state_after_three_weeks


def _consent(withdrawn: bool) -> SourceRecord:
    return _record(encode(ConsentChange(meter_id="m1", withdrawn=withdrawn, at="2026-03-22T10:00:00+08:00")))


def _reading(register: float) -> SourceRecord:
    value = json.dumps({"meter_id": "m1", "ts": "2026-03-22T11:00:00+08:00", "register_l": register}).encode()
    return SourceRecord("t.readings", 0, 1, b"m1", value)


def test_withdrawal_deletes_the_learned_state_and_drops_readings() -> None:
    learned = _state_after_three_weeks()
    processor = FeedbackProcessor(FACTORY, partitions=PARTITIONS)
    withdrawn = processor.process(_consent(True), learned)
    assert withdrawn.dead_letter is None and withdrawn.state == NO_CONSENT
    dropped = ReadingProcessor(FACTORY).process(_reading(900.0), withdrawn.state)
    assert dropped.state is None and dropped.alerts == [] and dropped.dropped_no_consent == 1
    # Nothing is learned about it meanwhile either.
    assert processor.process(_consent(True), NO_CONSENT).state == NO_CONSENT


def test_a_new_grant_starts_afresh() -> None:
    processor = FeedbackProcessor(FACTORY, partitions=PARTITIONS)
    granted = processor.process(_consent(False), NO_CONSENT)
    assert granted.state == FACTORY().dump()  # nothing of before is kept
    taken = ReadingProcessor(FACTORY).process(_reading(900.0), granted.state)
    assert taken.state is not None and taken.dropped_no_consent == 0
