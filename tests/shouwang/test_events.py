"""Event schemas: what is accepted, and the precise reason for what is not."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shouwang.events import (
    AlertKind,
    DailySummary,
    EventError,
    MeterReading,
    ReadingBatch,
    alert_id_for,
    decode_alert,
    decode_daily_summary,
    decode_incident,
    decode_reading_message,
    encode,
)


def _raw(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_reading_with_offset_keeps_the_instant() -> None:
    reading = decode_reading_message(_raw(meter_id="SZ-FT-1", ts="2026-03-01T07:40:00+08:00", register_l=1234.5))
    assert isinstance(reading, MeterReading)
    assert reading.ts == datetime(2026, 2, 28, 23, 40, tzinfo=UTC)
    assert reading.register_l == 1234.5


def test_epoch_seconds_are_utc() -> None:
    reading = decode_reading_message(_raw(meter_id="m1", ts=1_767_225_600, register_l=0))
    assert isinstance(reading, MeterReading)
    assert reading.ts.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b'{"meter_id":"m1","ts":1767225600,"register_l":NaN}', "NaN is not a JSON number"),
        (_raw(v=2, meter_id="m1", ts=1, register_l=1), "unsupported schema version v=2"),
        (_raw(meter_id="m1", ts="2026-01-01T00:00:00", register_l=1), "has no UTC offset"),
        (_raw(meter_id="m1", ts="yesterday", register_l=1), "is not an ISO 8601 timestamp"),
        (_raw(meter_id="m1", ts=True, register_l=1), "not a boolean"),
        (_raw(meter_id="m1", ts="1990-01-01T00:00:00Z", register_l=1), "outside 2000–2099"),
        (_raw(meter_id="m1", ts=1767225600, register_l=-3), "register_l: Input should be greater than or equal"),
        (_raw(meter_id="m1", ts=1767225600, register_l=2e9), "register_l: Input should be less than or equal to"),
        (_raw(meter_id="m 1", ts=1767225600, register_l=1), "meter_id: must be 1–64 letters"),
        (_raw(meter_id="m1", ts=1767225600), "register_l: Field required"),
        (_raw(meter_id="m1", ts=1767225600, register_l=1, register=2), "register: unknown field"),
        (_raw(meter_id="m1", ts=1767225600, register_l=1, flags=["smoke"]), "flags.0: Input should be"),
        (_raw(meter_id="m1", readings=[]), "readings: Tuple should have at least 1 item"),
        (_raw(type="alert", meter_id="m1"), "Input tag 'alert' found using 'type' does not match"),
    ],
)
def test_bad_readings_are_rejected_with_a_precise_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(EventError) as caught:
        decode_reading_message(raw)
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_oversized_message_is_rejected_before_parsing() -> None:
    with pytest.raises(EventError, match="limit is"):
        decode_reading_message(b"{" + b" " * 1_000_001 + b"}")


def test_batch_splits_in_event_time_order_with_status_on_the_last() -> None:
    batch = decode_reading_message(
        _raw(
            meter_id="nb-1",
            battery_pct=40,
            flags=["low_battery"],
            readings=[
                {"ts": "2026-03-01T02:00:00+08:00", "register_l": 12},
                {"ts": "2026-03-01T01:00:00+08:00", "register_l": 10},
            ],
        )
    )
    assert isinstance(batch, ReadingBatch)
    readings = batch.split()
    assert [r.register_l for r in readings] == [10, 12]
    assert readings[0].flags == () and readings[0].battery_pct is None
    assert [f.value for f in readings[1].flags] == ["low_battery"] and readings[1].battery_pct == 40


def test_incident_and_alert_round_trip() -> None:
    incident = decode_incident(
        _raw(incident_id="inc-1", text="楼道堆放杂物", grid_cell="FT-12-3", ts="2026-03-01T09:00:00+08:00")
    )
    assert incident.grid_cell == "FT-12-3"
    since = datetime(2026, 3, 1, 21, 15, tzinfo=timezone(timedelta(hours=8)))
    alert_id = alert_id_for("m1", AlertKind.NO_USAGE, since)
    alert = decode_alert(
        _raw(
            alert_id=alert_id,
            event="raised",
            meter_id="m1",
            kind="no_usage",
            severity="high",
            since=since.isoformat(),
            at="2026-03-02T09:00:00+08:00",
            explanation={"zh": "长时间无用水", "en": "no water use"},
        )
    )
    assert alert.alert_id == alert_id
    with pytest.raises(EventError, match="text"):
        decode_incident(_raw(incident_id="inc-2", text="", grid_cell="FT-1", ts=1767225600))


def test_alert_id_is_stable_per_episode_and_independent_of_offset() -> None:
    start = datetime(2026, 3, 1, 13, 15, tzinfo=UTC)
    same_instant = start.astimezone(timezone(timedelta(hours=8)))
    assert alert_id_for("m1", "no_usage", start) == alert_id_for("m1", "no_usage", same_instant)
    assert alert_id_for("m1", "no_usage", start) != alert_id_for("m1", "spike", start)
    assert alert_id_for("m1", "no_usage", start) != alert_id_for("m2", "no_usage", start)
    assert alert_id_for("m1", "no_usage", start) != alert_id_for("m1", "no_usage", start + timedelta(seconds=1))


def test_a_day_summary_decodes_and_a_bad_one_says_why() -> None:
    summary = DailySummary(
        meter_id="m1",
        day="2026-03-02",
        first_use_at=datetime.fromisoformat("2026-03-02T07:12:00+08:00"),
        litres=35.5,
        hours_with_use=3,
        complete=False,
    )
    assert decode_daily_summary(encode(summary)) == summary
    good = json.loads(encode(summary))
    for change, words in (
        ({"day": "2026-02-30"}, "not a calendar day"),
        ({"hours_with_use": 25}, "hours_with_use"),
        ({"litres": -1}, "litres"),
        ({"first_use_at": "2026-03-02T07:12:00"}, "no UTC offset"),
    ):
        with pytest.raises(EventError, match=words):
            decode_daily_summary(json.dumps({**good, **change}).encode())
