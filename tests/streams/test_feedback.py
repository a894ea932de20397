"""The feedback agent's pure core, without Kafka: verdicts on alarms and routine hints teach a meter's
detector bank; anything that cannot be applied is a dead letter with its reason."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from detectors import DetectorBank
from detectors.no_usage import NoUsageDetector
from shouwang.events import alert_id_for
from shouwang.settings import Settings
from streams.detection import bank_factory
from streams.feedback import FeedbackProcessor
from streams.offline import partition_of
from streams.processing import Outcome, ReadingProcessor, SourceRecord

FACTORY = bank_factory(Settings())
ZONE = ZoneInfo(Settings().household_tz)
START = datetime(2026, 3, 1, tzinfo=ZONE)
DAYS = 21
PARTITIONS = 4


def _record(value: bytes | None, key: bytes | None = b"m1", *, partition: int | None = None) -> SourceRecord:
    if partition is None:
        partition = partition_of("m1", PARTITIONS)
    return SourceRecord(topic="t.feedback", partition=partition, offset=7, key=key, value=value)


def _processor() -> FeedbackProcessor:
    return FeedbackProcessor(FACTORY, partitions=PARTITIONS)


def _state_after_three_weeks() -> bytes:
    """m1's state after three weeks of hourly readings: water used every hour from 07:00 to 22:00."""
    readings, register = [], 0.0
    for hour in range(DAYS * 24):
        at = START + timedelta(hours=hour)
        if 7 <= at.hour < 22:
            register += 5.0
        readings.append({"ts": int(at.timestamp()), "register_l": register})
    batch = json.dumps({"meter_id": "m1", "readings": readings}).encode()
    outcome = ReadingProcessor(FACTORY).process(SourceRecord("t.readings", 0, 0, b"m1", batch))
    assert outcome.dead_letter is None and outcome.state is not None
    return outcome.state


def _no_usage(state: bytes) -> NoUsageDetector:
    bank = FACTORY()
    bank.load(state)
    return next(d for d in bank.detectors if isinstance(d, NoUsageDetector))


def _feedback(since: datetime, silence_h: float, *, kind: str = "no_usage", **extra: object) -> bytes:
    message = {
        "type": "feedback",
        "alert_id": alert_id_for("m1", kind, since),
        "meter_id": "m1",
        "kind": kind,
        "since": since.isoformat(),
        "silence_h": silence_h,
        "outcome": "false_alarm",
        "at": (since + timedelta(hours=silence_h)).isoformat(),
        **extra,
    }
    return json.dumps(message).encode()


def _hints(**hints: object) -> bytes:
    return json.dumps({"type": "routine_hints", "meter_id": "m1", "hints": hints}).encode()


def _reason(outcome: Outcome) -> str:
    assert outcome.dead_letter is not None, "expected a dead letter"
    assert outcome.state is None, "a dead-lettered record must not change the state"
    return outcome.dead_letter.reason


SINCE = START + timedelta(days=DAYS - 1, hours=14)  # a silence from 14:00 on the last day


def test_a_false_alarm_makes_the_limit_of_its_hour_longer() -> None:
    state = _state_after_three_weeks()
    before = _no_usage(state).limit_hours(14)
    # Raised at the limit, answered an hour later (as replay --feedback simulates).
    outcome = _processor().process(_record(_feedback(SINCE, before + 1)), state)
    assert outcome.dead_letter is None and outcome.meter_id == "m1"
    assert outcome.state is not None
    after = _no_usage(outcome.state).limit_hours(14)
    assert after > before, f"limit at 14:00 was {before} h and is {after} h after a false alarm"


def test_resident_fine_teaches_as_a_false_alarm_does() -> None:
    state = _state_after_three_weeks()
    before = _no_usage(state).limit_hours(14)
    outcome = _processor().process(_record(_feedback(SINCE, before + 1, outcome="resident_fine")), state)
    assert outcome.state is not None and _no_usage(outcome.state).limit_hours(14) > before


def test_feedback_keyed_by_another_key_is_dead_lettered_saying_so() -> None:
    state = _state_after_three_weeks()
    reason = _reason(_processor().process(_record(_feedback(SINCE, 12.0), key=b"m2"), state))
    assert "key 'm2' is not the meter id 'm1'" in reason
    assert "no key" in _reason(_processor().process(_record(_feedback(SINCE, 12.0), key=None), state))


def test_feedback_in_another_partition_than_its_meters_readings_is_dead_lettered() -> None:
    state = _state_after_three_weeks()
    elsewhere = (partition_of("m1", PARTITIONS) + 1) % PARTITIONS
    reason = _reason(_processor().process(_record(_feedback(SINCE, 12.0), partition=elsewhere), state))
    assert "partition count" in reason and f"partition {elsewhere}" in reason


def test_feedback_for_a_meter_without_state_is_an_unknown_meter() -> None:
    reason = _reason(_processor().process(_record(_feedback(SINCE, 12.0)), None))
    assert reason.startswith("unknown meter 'm1'")


def test_feedback_naming_no_episode_of_the_meter_is_an_unknown_alert() -> None:
    state = _state_after_three_weeks()
    other = alert_id_for("m1", "no_usage", SINCE + timedelta(hours=1))
    reason = _reason(_processor().process(_record(_feedback(SINCE, 12.0, alert_id=other)), state))
    assert reason.startswith(f"unknown alert '{other}'")
    assert alert_id_for("m1", "no_usage", SINCE) in reason  # the episode the message describes


def test_feedback_on_a_kind_no_detector_learns_from_is_dead_lettered() -> None:
    state = _state_after_three_weeks()
    reason = _reason(_processor().process(_record(_feedback(SINCE, 2.0, kind="spike")), state))
    assert reason == "no detector learns from false_alarm on spike alerts"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "empty message"),
        (b"not json", "JSON"),
        (json.dumps({"meter_id": "m1"}).encode(), "type: required"),
        (_feedback(SINCE, -1.0), "silence_h"),
    ],
)
def test_malformed_feedback_is_dead_lettered_as_invalid(value: bytes | None, expected: str) -> None:
    outcome = _processor().process(_record(value), _state_after_three_weeks())
    assert expected in _reason(outcome)
    assert outcome.dead_letter is not None and outcome.dead_letter.error_class == "invalid"
    assert outcome.dead_letter.value == value and outcome.dead_letter.source_topic == "t.feedback"


def test_hints_for_a_meter_without_state_start_a_fresh_bank_from_them() -> None:
    outcome = _processor().process(
        _record(
            _hints(
                wake_up="06:30",
                outings=[{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "11:00"}],
            )
        ),
        None,
    )
    assert outcome.dead_letter is None and outcome.state is not None
    fresh = next(d for d in FACTORY().detectors if isinstance(d, NoUsageDetector))
    assert _no_usage(outcome.state).limits_table() != fresh.limits_table(), "the hints changed nothing"


def test_hints_for_a_meter_with_state_apply_and_keep_what_it_learned() -> None:
    state = _state_after_three_weeks()
    outcome = _processor().process(_record(_hints(wake_up="05:00")), state)
    assert outcome.dead_letter is None and outcome.state is not None
    assert _no_usage(outcome.state).limits_table() != _no_usage(state).limits_table()
    # Learned from both: not the table a fresh bank gets from the same hints.
    fresh = _processor().process(_record(_hints(wake_up="05:00")), None)
    assert fresh.state is not None
    assert _no_usage(outcome.state).limits_table() != _no_usage(fresh.state).limits_table()


def test_a_state_of_another_version_starts_afresh_as_the_readings_do() -> None:
    outcome = _processor().process(_record(_hints(wake_up="06:30")), b"\xff not a state")
    assert outcome.dead_letter is None and outcome.state_reset and outcome.state is not None


def test_an_unexpected_error_is_an_internal_dead_letter_never_an_exception() -> None:
    def broken() -> DetectorBank:
        raise RuntimeError("boom")

    outcome = FeedbackProcessor(broken).process(_record(_hints(wake_up="06:30")), None)
    assert outcome.dead_letter is not None and outcome.dead_letter.error_class == "internal"
    assert outcome.dead_letter.reason == "internal error: RuntimeError"
