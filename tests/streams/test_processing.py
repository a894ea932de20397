"""The readings agent's pure core, without Kafka."""

from __future__ import annotations

import json

from detectors import DetectorBank, Finding
from detectors.base import Interval
from detectors.data_quality import DataQualityDetector
from shouwang.events import decode_alert, encode
from streams.processing import ReadingProcessor, SourceRecord


def _record(value: bytes | None, key: bytes | None = b"m1", offset: int = 0) -> SourceRecord:
    return SourceRecord(topic="t.readings", partition=3, offset=offset, key=key, value=value)


def _reading(**extra: object) -> bytes:
    return json.dumps({"meter_id": "m1", "ts": "2026-03-01T08:00:00+08:00", "register_l": 5, **extra}).encode()


def test_flagged_reading_becomes_an_alert_event() -> None:
    outcome = ReadingProcessor().process(_record(_reading(flags=["burst"])))
    assert outcome.dead_letter is None
    assert outcome.reading_count == 1
    [alert] = outcome.alerts
    assert (alert.kind.value, alert.severity.value, alert.event) == ("spike", "high", "raised")
    assert decode_alert(encode(alert)) == alert  # what goes on the topic decodes back


def test_same_reading_twice_gives_the_same_alert_id() -> None:
    processor = ReadingProcessor()
    first = processor.process(_record(_reading(flags=["leak"]), offset=1)).alerts
    again = processor.process(_record(_reading(flags=["leak"]), offset=2)).alerts
    assert [a.alert_id for a in first] == [a.alert_id for a in again]


def test_batch_is_split_and_every_reading_runs_the_bank() -> None:
    batch = json.dumps(
        {"meter_id": "m1", "readings": [{"ts": 1767225600 + 3600 * i, "register_l": 10 + i} for i in range(24)]}
    ).encode()
    outcome = ReadingProcessor().process(_record(batch))
    assert outcome.reading_count == 24 and outcome.dead_letter is None


def test_a_batch_gives_what_its_readings_one_by_one_give() -> None:
    # Unsorted, with a burst in it and status flags that belong to the last reading only.
    hours = [5, 0, 3, 1, 2, 4]
    registers = {0: 10.0, 1: 12.0, 2: 12.0, 3: 700.0, 4: 705.0, 5: 705.0}
    batch = json.dumps(
        {
            "meter_id": "m1",
            "flags": ["leak", "burst"],
            "readings": [{"ts": 1767225600 + 3600 * h, "register_l": registers[h]} for h in hours],
        }
    ).encode()
    batched = ReadingProcessor().process(_record(batch))
    processor, state, alerts = ReadingProcessor(), None, []
    for h in sorted(hours):
        extra = {"flags": ["leak", "burst"]} if h == max(hours) else {}
        single = json.dumps(
            {"meter_id": "m1", "ts": 1767225600 + 3600 * h, "register_l": registers[h], **extra}
        ).encode()
        outcome = processor.process(_record(single), state)
        state, alerts = outcome.state, alerts + outcome.alerts
    assert batched.state == state
    assert [(a.alert_id, a.event) for a in batched.alerts] == [(a.alert_id, a.event) for a in alerts]
    assert {a.kind.value for a in alerts} >= {"spike", "continuous_flow"}


def test_invalid_record_becomes_a_dead_letter_with_its_bytes_and_place() -> None:
    raw = _reading(register_l=-1)
    outcome = ReadingProcessor().process(_record(raw, offset=42))
    assert outcome.alerts == [] and outcome.reading_count == 0
    letter = outcome.dead_letter
    assert letter is not None
    assert letter.value == raw and letter.key == b"m1"
    assert letter.error_class == "invalid"
    headers = dict(letter.headers())
    assert headers["shouwang.source.offset"] == b"42"
    assert b"register_l" in headers["shouwang.reason"]


def test_null_value_is_a_dead_letter() -> None:
    letter = ReadingProcessor().process(_record(None)).dead_letter
    assert letter is not None and letter.reason == "empty message (null value)"


def test_mis_keyed_record_is_handed_back_for_its_own_partition_not_processed() -> None:
    outcome = ReadingProcessor().process(_record(_reading(flags=["burst"]), key=b"other"))
    assert outcome.rekeyed and outcome.meter_id == "m1"
    assert outcome.alerts == [] and outcome.state is None and outcome.dead_letter is None
    assert not ReadingProcessor().process(_record(_reading(), key=b"m1")).rekeyed


def _hourly(hour: int, register: float) -> bytes:
    return json.dumps({"meter_id": "m1", "ts": 1767225600 + 3600 * hour, "register_l": register}).encode()


def test_state_goes_out_and_comes_back_in_so_learning_continues_across_records() -> None:
    processor = ReadingProcessor()
    state = None
    for hour in range(3):
        outcome = processor.process(_record(_hourly(hour, 100.0), offset=hour), state)
        assert outcome.state is not None
        state = outcome.state
    # The register fell by 90 L: only a meter that remembers the last one can tell.
    remembered = processor.process(_record(_hourly(3, 10.0), offset=3), state)
    assert [a.kind.value for a in remembered.alerts] == ["data_quality"]
    forgetful = processor.process(_record(_hourly(3, 10.0), offset=3), None)
    assert forgetful.alerts == []


def test_a_state_from_another_version_starts_afresh_and_says_so() -> None:
    outcome = ReadingProcessor().process(_record(_reading()), b"\x09garbage")
    assert outcome.state_reset and outcome.state is not None and outcome.dead_letter is None


class _Exploding:
    """A data-quality detector with a bug (wrapped, not subclassed: the detectors may be compiled)."""

    name = "data_quality"

    def __init__(self) -> None:
        self._inner = DataQualityDetector()
        self.advance, self.wake_at = self._inner.advance, self._inner.wake_at
        self.dump, self.load = self._inner.dump, self._inner.load

    def update(self, interval: Interval) -> list[Finding]:
        raise ZeroDivisionError("detector bug")


def test_a_detector_crash_is_a_dead_letter_not_a_dead_worker() -> None:
    processor = ReadingProcessor(bank_factory=lambda: DetectorBank([_Exploding()]))
    state = processor.process(_record(_hourly(0, 1.0))).state
    letter = processor.process(_record(_hourly(1, 2.0)), state).dead_letter
    assert letter is not None
    assert (letter.error_class, letter.reason) == ("internal", "internal error: ZeroDivisionError")
