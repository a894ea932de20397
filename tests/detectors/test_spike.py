"""``spike``: an hour far above the household's own largest hours."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from itertools import pairwise

import pytest

from detectors import DetectorBank, Finding, Observation
from detectors.spike import SpikeDetector
from tests.detectors.series import HOUR, START, Household, add_use, at_day, feed, hourly_intervals

BURST_AT = at_day(30, 19)


def run(readings: list[Observation], detector: SpikeDetector | None = None) -> list[Finding]:
    return feed(DetectorBank([detector or SpikeDetector()], tz="UTC"), readings)


def test_a_burst_after_the_warm_up_is_raised_in_its_own_hour() -> None:
    readings = Household(burst_at=BURST_AT, burst_l=500.0).build()
    findings = run(readings)
    raised = [f for f in findings if f.transition == "raised"]
    assert len(raised) == 1
    assert raised[0].at == BURST_AT
    assert raised[0].since == BURST_AT - HOUR
    assert raised[0].severity == "high"
    hour_l = next(b.register_l - a.register_l for a, b in pairwise(readings) if b.ts == BURST_AT)
    assert raised[0].facts["hour_l"] == pytest.approx(hour_l)
    assert f"{hour_l:.0f} 升" in raised[0].explanation_zh and f"{hour_l:.0f} L" in raised[0].explanation_en


@pytest.mark.parametrize("seed", [7, 1, 2])
def test_a_150_litre_hour_is_not_a_spike(seed: int) -> None:
    assert run(Household(seed=seed, burst_at=BURST_AT, burst_l=150.0).build()) == []


def test_the_raised_hour_is_resolved_in_the_next_hour() -> None:
    findings = run(Household(burst_at=BURST_AT, burst_l=500.0).build())
    assert [f.transition for f in findings] == ["raised", "resolved"]
    raised, resolved = findings
    assert resolved.since == raised.since
    assert resolved.at == BURST_AT + HOUR


@pytest.mark.parametrize(("litres", "raised"), [(600.0, False), (800.0, True)])
def test_during_the_warm_up_only_the_cap_raises(litres: float, raised: bool) -> None:
    detector = SpikeDetector()
    early = at_day(5, 19)
    assert early - START < timedelta(days=detector.warm_up_days)
    findings = run(Household(burst_at=early, burst_l=litres).build(), detector)
    assert bool([f for f in findings if f.transition == "raised"]) is raised


def test_the_same_hour_after_the_warm_up_is_raised() -> None:
    # 600 L is below the cap that guards the warm-up, but far above this household's largest hours.
    findings = run(Household(burst_at=at_day(20, 19), burst_l=600.0).build())
    assert [f.transition for f in findings] == ["raised", "resolved"]


def test_a_glitch_never_raises_a_spike() -> None:
    readings = Household().build()
    at = next(i for i, r in enumerate(readings) if r.ts == BURST_AT)
    glitched = list(readings)
    glitched[at] = replace(readings[at], register_l=readings[at].register_l + 20000.0)  # one wild reading
    jumped = add_use(readings, {BURST_AT + 5 * HOUR: 30000.0})  # a jump that stays
    for series in (glitched, jumped):
        findings = feed(DetectorBank(tz="UTC"), series)
        assert not [f for f in findings if f.kind == "spike"]
        assert [f.facts["issues"] for f in findings if f.kind == "data_quality" and f.transition == "raised"] == [
            "impossible_rate"
        ]


def test_a_burst_is_not_learned_as_normal() -> None:
    # Two bursts a week apart: the first does not teach the detector that the second is normal.
    readings = add_use(Household().build(), {BURST_AT: 500.0, BURST_AT + timedelta(days=7): 500.0})
    raised = [f for f in run(readings) if f.transition == "raised"]
    assert [f.at for f in raised] == [BURST_AT, BURST_AT + timedelta(days=7)]


def test_repeated_big_hours_stop_alarming() -> None:
    # From day 20 the household fills a 450 L tank every evening: after a few alarms that is its normal.
    days = range(20, 42)
    readings = add_use(Household().build(), {at_day(day, 19): 450.0 for day in days})
    raised = [f for f in run(readings) if f.transition == "raised"]
    assert 1 <= len(raised) < len(days) // 2
    assert all(f.at < at_day(30, 0) for f in raised)
    thresholds = [f.facts["threshold_l"] for f in raised]  # each alarm taught the detector a little
    assert thresholds == sorted(thresholds) and len(set(thresholds)) == len(thresholds)


def test_a_long_gap_is_compared_by_its_average_hour() -> None:
    detector = SpikeDetector()
    quiet: list[float | None] = [10.0] * (24 * 20)
    findings = [f for interval in hourly_intervals(quiet) for f in detector.update(interval)]
    gap_start = START + len(quiet) * HOUR
    # 12 hours of normal use reported at once (1200 L) is no spike ...
    findings += detector.update(hourly_intervals([1200.0], gap_start, step_s=12 * 3600.0)[0])
    assert findings == []
    # ... but one hour of 1200 L is.
    after = gap_start + 12 * HOUR
    assert [f.transition for f in detector.update(hourly_intervals([1200.0], after)[0])] == ["raised"]


def test_readings_within_an_hour_add_up() -> None:
    detector = SpikeDetector()
    for interval in hourly_intervals([10.0] * (24 * 20)):
        detector.update(interval)
    threshold = detector.threshold()
    start = START + 24 * 20 * HOUR
    quarters = hourly_intervals([threshold / 3] * 4, start, step_s=900.0)
    transitions = [[f.transition for f in detector.update(interval)] for interval in quarters]
    # The hourly reading that ended at ``start`` belongs to the same clock hour; the fourth quarter
    # ends on the next hour, which closes (and resolves) the raised one.
    assert transitions == [[], [], ["raised"], ["resolved"]]


def test_state_round_trip_keeps_the_learned_maximum() -> None:
    detector = SpikeDetector()
    for interval in hourly_intervals([10.0, 80.0, 5.0] * 24 * 10):
        detector.update(interval)
    restored = SpikeDetector()
    restored.load(detector.dump())
    assert restored.threshold() == detector.threshold()
    assert restored.dump() == detector.dump()
