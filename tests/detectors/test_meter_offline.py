"""``meter_offline``: overdue readings, raised by the clock or by the late reading, resolved by the next."""

from __future__ import annotations

from datetime import timedelta

import pytest

from detectors import DetectorBank
from detectors.base import Interval
from detectors.meter_offline import MeterOfflineDetector
from tests.detectors.series import START, Household, feed, hourly_intervals

T0 = START.timestamp()


def hourly_meter(hours: int = 48) -> tuple[MeterOfflineDetector, float]:
    """A detector that has seen ``hours`` hourly readings, and the time of the last one."""
    detector = MeterOfflineDetector()
    for interval in hourly_intervals([3.0] * hours):
        assert detector.update(interval) == []
    return detector, T0 + hours * 3600.0


def test_an_hourly_meter_is_overdue_after_min_h() -> None:
    detector, _ = hourly_meter()
    # Three usual intervals (3 h) is less than min_h (6 h): min_h decides.
    assert detector.overdue_s() == pytest.approx(detector.min_h * 3600.0)


def test_the_overdue_time_follows_the_meters_own_interval() -> None:
    detector = MeterOfflineDetector(min_h=0.0)
    for interval in hourly_intervals([1.0] * 200, step_s=900.0):
        detector.update(interval)
    assert detector.overdue_s() == pytest.approx(detector.factor * 900.0, rel=1e-3)


def test_a_meter_that_reports_daily_learns_that_daily_is_normal() -> None:
    daily = MeterOfflineDetector()
    findings = [f for interval in hourly_intervals([100.0] * 30, step_s=86400.0) for f in daily.update(interval)]
    assert daily.overdue_s() >= 86400.0
    assert len(findings) <= 2  # at most the first, before the meter's interval is known


def test_advance_raises_once_after_the_overdue_time() -> None:
    detector, last = hourly_meter()
    overdue = detector.overdue_s()
    assert detector.advance(last + 3600.0, 0.0) == []
    assert detector.advance(last + overdue, 0.0) == []
    found = detector.advance(last + overdue + 60.0, 0.0)
    assert [(f.kind, f.transition, f.severity) for f in found] == [("meter_offline", "raised", "low")]
    raised = found[0]
    assert raised.since.timestamp() == last
    assert raised.at.timestamp() == last + overdue + 60.0
    assert raised.facts["overdue_h"] == pytest.approx((overdue + 60.0) / 3600.0, abs=0.01)
    assert detector.advance(last + overdue + 3600.0, 0.0) == []  # not twice
    assert detector.advance(last + 10 * overdue, 0.0) == []


def test_the_next_reading_resolves_it() -> None:
    detector, last = hourly_meter()
    detector.advance(last + 8 * 3600.0, 0.0)
    found = detector.update(Interval(last, last + 9 * 3600.0, 12.0, 0.0))
    assert [f.transition for f in found] == ["resolved"]
    assert found[0].since.timestamp() == last
    assert found[0].at.timestamp() == last + 9 * 3600.0
    assert "9 h" in found[0].explanation_en and "9 小时" in found[0].explanation_zh
    # Back to normal: the next hourly reading says nothing, and the gap was not learned as usual.
    assert detector.update(Interval(last + 9 * 3600.0, last + 10 * 3600.0, 1.0, 0.0)) == []
    assert detector.overdue_s() == pytest.approx(detector.min_h * 3600.0)


def test_a_gap_seen_only_from_the_late_reading_is_raised_and_resolved_at_once() -> None:
    detector, last = hourly_meter()
    overdue = detector.overdue_s()
    found = detector.update(Interval(last, last + 10 * 3600.0, 40.0, 0.0))
    assert [f.transition for f in found] == ["raised", "resolved"]
    raised, resolved = found
    assert raised.since == resolved.since
    assert raised.since.timestamp() == last
    assert raised.at.timestamp() == last + overdue  # when it became overdue, in event time
    assert resolved.at.timestamp() == last + 10 * 3600.0


def test_a_gap_shorter_than_the_overdue_time_is_nothing() -> None:
    detector, last = hourly_meter()
    assert detector.update(Interval(last, last + 5 * 3600.0, 40.0, 0.0)) == []


def test_advance_never_raises_before_any_reading() -> None:
    detector = MeterOfflineDetector()
    assert detector.advance(T0, 0.0) == []
    assert detector.advance(T0 + 30 * 86400.0, 0.0) == []
    bank = DetectorBank([MeterOfflineDetector()], tz="UTC")
    assert bank.advance(T0 + 30 * 86400.0) == []


def test_advance_before_the_overdue_time_after_a_reading_is_nothing() -> None:
    detector, last = hourly_meter()
    assert all(detector.advance(last + minutes * 60.0, 0.0) == [] for minutes in range(0, 361, 15))


def test_a_meter_that_reported_once_and_went_silent_is_offline() -> None:
    bank = DetectorBank([MeterOfflineDetector()], tz="UTC")
    bank.update(Household(days=1).build()[0])
    found = bank.advance(T0 + 3 * 86400.0)
    assert [f.transition for f in found] == ["raised"]


def test_in_a_bank_an_outage_is_raised_by_the_clock_and_resolved_by_the_reading() -> None:
    start, end = START + timedelta(days=3, hours=5), START + timedelta(days=4, hours=2)
    readings = Household(days=6, offline=(start, end)).build()
    bank = DetectorBank([MeterOfflineDetector()], tz="UTC")
    before = [r for r in readings if r.ts < start]
    after = [r for r in readings if r.ts >= end]
    assert feed(bank, before) == []
    last = before[-1].ts
    ticks = [bank.advance((last + k * timedelta(minutes=10)).timestamp()) for k in range(1, 6 * 20)]
    raised = [f for tick in ticks for f in tick]
    assert [f.transition for f in raised] == ["raised"]
    assert raised[0].since == last
    assert raised[0].at - last == timedelta(hours=6, minutes=10)  # the first tick past six hours
    resolved = feed(bank, after)
    assert [f.transition for f in resolved] == ["resolved"]
    assert resolved[0].at == end and resolved[0].since == last


def test_explanations_name_the_silence() -> None:
    detector, last = hourly_meter()
    raised = detector.advance(last + 7 * 3600.0, 0.0)[0]
    assert "(7 h;" in raised.explanation_en and "已 7 小时" in raised.explanation_zh
    assert "00:00 today" in raised.explanation_en and "今天 00:00" in raised.explanation_zh
    assert "says nothing about water use" in raised.explanation_en and "不代表没有用水" in raised.explanation_zh


def test_explanations_name_the_meters_usual_interval() -> None:
    detector, last = hourly_meter()
    raised = detector.advance(last + 7 * 3600.0, 0.0)[0]
    assert raised.facts["usual_interval_s"] == 3600
    assert "every 1 h" in raised.explanation_en and "每 1 小时" in raised.explanation_zh


def test_state_round_trip_keeps_an_open_episode() -> None:
    detector, last = hourly_meter()
    detector.advance(last + 8 * 3600.0, 0.0)
    restored = MeterOfflineDetector()
    restored.load(detector.dump())
    assert restored.advance(last + 9 * 3600.0, 0.0) == []  # still open: not raised again
    found = restored.update(Interval(last, last + 9 * 3600.0, 1.0, 0.0))
    assert [f.transition for f in found] == ["resolved"]
    assert found[0].since.timestamp() == last
