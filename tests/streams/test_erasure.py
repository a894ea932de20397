"""A household's erasure in the worker: the meter's learned state is replaced by a marker for good and its later
readings are dead letters with the reason, without the reading's bytes. Pure processors, no Kafka."""

from __future__ import annotations

import json
from datetime import datetime

from shouwang.events import ConsentChange, MeterErased, MeterHints, RoutineHints, encode
from streams.feedback import FeedbackProcessor
from streams.processing import ERASED, ERASED_VALUE_DROPPED, NO_CONSENT, ReadingProcessor, SourceRecord
from tests.streams.test_feedback import FACTORY, PARTITIONS, _record, _state_after_three_weeks

AT = datetime.fromisoformat("2026-03-22T10:00:00+08:00")


def _erase() -> SourceRecord:
    return _record(encode(MeterErased(meter_id="m1", at=AT)))


def _reading() -> SourceRecord:
    value = json.dumps({"meter_id": "m1", "ts": "2026-03-22T11:00:00+08:00", "register_l": 900.0}).encode()
    return SourceRecord("t.readings", 0, 12, b"m1", value)


def test_erasure_replaces_the_learned_state_and_refuses_readings_with_the_reason() -> None:
    processor = FeedbackProcessor(FACTORY, partitions=PARTITIONS)
    for before in (_state_after_three_weeks(), NO_CONSENT, None):  # learned, withdrawn, never seen
        erased = processor.process(_erase(), before)
        assert erased.dead_letter is None and erased.state == ERASED and erased.meter_id == "m1"
    refused = ReadingProcessor(FACTORY).process(_reading(), ERASED)
    assert refused.state is None and refused.alerts == [] and refused.reading_count == 0
    letter = refused.dead_letter
    assert letter is not None and "m1" in letter.reason and "erased" in letter.reason
    assert letter.value is None and letter.value_dropped == ERASED_VALUE_DROPPED  # the water use is not kept
    assert (letter.key, letter.source_topic, letter.source_offset) == (b"m1", "t.readings", 12)


def test_nothing_brings_an_erased_meter_back() -> None:
    processor = FeedbackProcessor(FACTORY, partitions=PARTITIONS)
    granted = _record(encode(ConsentChange(meter_id="m1", withdrawn=False, at=AT)))
    hints = _record(encode(MeterHints(meter_id="m1", hints=RoutineHints.model_validate({"wake_up": "06:30"}))))
    for message in (granted, hints, _erase()):
        outcome = processor.process(message, ERASED)
        assert outcome.dead_letter is None and outcome.state in (None, ERASED)
