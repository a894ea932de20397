"""The emitter: an outcome's alerts and dead letter on their topics, with the producer's refusals
handled (stand-in topics; the outcomes come from the real processors)."""

from __future__ import annotations

import asyncio
import json

from aiokafka.errors import KafkaConnectionError
from faust.exceptions import ProducerSendError

from shouwang.deadletter import ERROR_CLASS, REASON, SOURCE_OFFSET, VALUE_DROPPED, read_headers
from shouwang.events import decode_alert, decode_daily_summary
from streams.emitter import Emitter
from streams.incidents import process_incident
from streams.processing import ReadingProcessor, SourceRecord
from streams.state_writes import can_mend
from tests.streams.kafka_fakes import FakeTopic, sample


def _flagged_reading(meter: str = "m1") -> SourceRecord:
    value = json.dumps({"meter_id": meter, "ts": "2026-03-01T08:00:00+08:00", "register_l": 5, "flags": ["burst"]})
    return SourceRecord("t.readings", 2, 40, meter.encode(), value.encode())


def _emit(emitter: Emitter, record: SourceRecord) -> list:
    return asyncio.run(emitter.emit(ReadingProcessor().process(record)))


def test_alerts_go_to_their_topic_keyed_by_meter_and_their_deliveries_come_back() -> None:
    alerts, letters = FakeTopic(), FakeTopic()
    emitted = sample("shouwang_worker_alerts_emitted_total", {"kind": "spike", "severity": "high", "event": "raised"})
    [sent] = _emit(Emitter(alerts.send, letters.send), _flagged_reading("m-77"))
    [record] = alerts.sent
    assert record.key == sent.key == b"m-77" and record.value == sent.value
    assert decode_alert(record.value).kind.value == "spike"
    assert sent.delivery is alerts.deliveries[0] and letters.sent == []
    assert sample("shouwang_worker_alerts_emitted_total", {"kind": "spike", "severity": "high", "event": "raised"}) == (
        emitted + 1
    )


def test_an_incident_alert_is_keyed_by_its_grid_cell() -> None:
    alerts, letters = FakeTopic(), FakeTopic()
    report = {"incident_id": "r1", "text": "5栋的电梯又坏了", "grid_cell": "C7", "ts": "2026-11-02T09:00:00+00:00"}
    outcome = process_incident(SourceRecord("t.incidents", 0, 0, b"C7", json.dumps(report).encode()), {}.get)
    asyncio.run(Emitter(alerts.send, letters.send).emit(outcome))
    assert [s.key for s in alerts.sent] == [b"C7"]


def test_an_alert_refused_at_the_send_comes_back_as_a_failed_delivery() -> None:
    alerts, letters = FakeTopic(), FakeTopic()
    alerts.refuse = [KafkaConnectionError("no leader")]

    async def run() -> BaseException | None:
        [sent] = await Emitter(alerts.send, letters.send).emit(ReadingProcessor().process(_flagged_reading()))
        assert isinstance(sent.delivery, asyncio.Future)
        return sent.delivery.exception()

    refused = asyncio.run(run())
    assert isinstance(refused, KafkaConnectionError) and can_mend(refused)  # the state writer sends it again


def test_a_rejected_record_becomes_a_dead_letter_with_its_bytes_and_where_it_came_from() -> None:
    alerts, letters = FakeTopic(), FakeTopic()
    before = sample("shouwang_worker_dead_letters_total", {"source": "t.readings", "error_class": "invalid"})
    sent = _emit(Emitter(alerts.send, letters.send), SourceRecord("t.readings", 2, 41, b"m1", b"{not json"))
    [letter] = letters.sent
    headers = read_headers(letter.headers)
    assert sent == [] and alerts.sent == []
    assert (letter.key, letter.value) == (b"m1", b"{not json")
    assert headers[ERROR_CLASS] == "invalid" and headers[SOURCE_OFFSET] == "41" and headers[REASON]
    assert (
        sample("shouwang_worker_dead_letters_total", {"source": "t.readings", "error_class": "invalid"}) == before + 1
    )


def test_a_dead_letter_too_large_for_its_topic_is_written_without_its_value() -> None:
    alerts, letters = FakeTopic(), FakeTopic()
    letters.refuse = [ProducerSendError("MessageSizeTooLargeError")]
    _emit(Emitter(alerts.send, letters.send), SourceRecord("t.readings", 2, 42, b"m1", b"x" * 1000))
    [letter] = letters.sent
    headers = read_headers(letter.headers)
    assert letter.key == b"m1" and letter.value is None
    assert headers[VALUE_DROPPED].startswith("ProducerSendError") and headers[SOURCE_OFFSET] == "42"


def _batch(meter: str, hours: dict[int, float], offset: str = "+08:00") -> SourceRecord:
    """A day's upload of hourly registers (local hours 0–23 of 1 March, then 00:00 of 2 March)."""
    register, readings = 100.0, []
    for hour in range(25):
        register += hours.get(hour, 0.0)
        day, clock = (1, hour) if hour < 24 else (2, 0)
        readings.append({"ts": f"2026-03-0{day}T{clock:02d}:00:00{offset}", "register_l": register})
    return SourceRecord(
        "t.readings", 0, 7, meter.encode(), json.dumps({"meter_id": meter, "readings": readings}).encode()
    )


def test_day_summaries_go_to_the_daily_topic_and_the_state_waits_for_them() -> None:
    alerts, letters, daily = FakeTopic(), FakeTopic(), FakeTopic()
    outcome = ReadingProcessor().process(_batch("m-5", {7: 12.0, 8: 3.0, 19: 20.0}))  # the bank's zone: Shanghai
    sent = asyncio.run(Emitter(alerts.send, letters.send, daily.send).emit(outcome))
    summaries = [decode_daily_summary(record.value) for record in daily.sent]
    assert [s.complete for s in summaries] == [False, True] and {r.key for r in daily.sent} == {b"m-5"}
    first, whole = summaries
    assert first.day == whole.day == "2026-03-01"
    assert first.first_use_at is not None and first.first_use_at.isoformat() == "2026-03-01T07:00:00+08:00"
    assert (whole.litres, whole.hours_with_use) == (35.0, 3)
    # The meter's new state is held behind them (sent again to the daily topic if the producer gave up).
    assert [s.resend for s in sent] == [daily.send, daily.send] and alerts.sent == []


def test_without_a_daily_topic_no_summary_is_sent() -> None:
    alerts, letters = FakeTopic(), FakeTopic()
    outcome = ReadingProcessor().process(_batch("m-6", {7: 5.0}))
    assert len(outcome.daily) == 2
    sent = asyncio.run(Emitter(alerts.send, letters.send).emit(outcome))
    assert [s.resend for s in sent if s.resend is not None] == []
    assert all(decode_alert(record.value) for record in alerts.sent)  # alerts only
