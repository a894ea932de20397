"""``continuous_flow``: water that never stops is one episode, resolved when the flow really stops."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from detectors import DetectorBank, Finding, Observation
from detectors.continuous_flow import ContinuousFlowDetector
from tests.detectors.series import HOUR, START, Household, add_use, at_day, feed, hourly_intervals

LEAK_FROM = at_day(30, 3)


def run(readings: list[Observation], detector: ContinuousFlowDetector | None = None) -> list[Finding]:
    return feed(DetectorBank([detector or ContinuousFlowDetector()], tz="UTC"), readings)


def leak_for(hours: int, lph: float = 5.0, seed: int = 7) -> list[Observation]:
    """A regular household with a leak of ``lph`` that runs ``hours`` from ``LEAK_FROM`` and then stops."""
    return add_use(Household(seed=seed).build(), {LEAK_FROM + k * HOUR: lph for k in range(1, hours + 1)})


@pytest.mark.parametrize("seed", [7, 1, 2])
def test_a_small_leak_is_raised_within_26_hours(seed: int) -> None:
    findings = run(Household(seed=seed, leak_from=LEAK_FROM, leak_lph=5.0).build())
    assert [f.transition for f in findings][:1] == ["raised"]
    raised = findings[0]
    assert raised.kind == "continuous_flow"
    assert raised.since == LEAK_FROM  # the first leaking hour starts there
    assert raised.at - LEAK_FROM <= timedelta(hours=26)
    assert raised.facts["min_rate_lph"] >= 5.0


@pytest.mark.parametrize(("lph", "severity"), [(30.0, "high"), (5.0, "medium")])
def test_severity_follows_the_rate(lph: float, severity: str) -> None:
    raised = run(Household(leak_from=LEAK_FROM, leak_lph=lph).build())[0]
    assert raised.severity == severity


def test_the_explanation_says_how_long_and_how_much() -> None:
    raised = run(Household(leak_from=LEAK_FROM, leak_lph=5.0).build())[0]
    hours = round((raised.at - raised.since) / HOUR)
    assert f"{hours} 小时" in raised.explanation_zh and f"{hours} h" in raised.explanation_en
    assert "5.0" in raised.explanation_zh and "5.0 L" in raised.explanation_en
    assert f"{raised.since:%H:%M}" in raised.explanation_en


def test_a_leak_that_goes_on_for_days_is_raised_once() -> None:
    findings = run(Household(days=42, leak_from=at_day(28, 3), leak_lph=5.0).build())
    assert [f.transition for f in findings if f.transition != "resolved"] == ["raised"]  # 14 days of leak


def test_a_leak_that_goes_on_for_days_is_one_open_episode() -> None:
    findings = run(Household(days=42, leak_from=at_day(28, 3), leak_lph=5.0).build())
    assert [f.transition for f in findings] == ["raised"]


def test_a_short_pause_does_not_end_the_episode() -> None:
    detector = ContinuousFlowDetector(clear_h=2.0)
    litres: list[float | None] = [5.0] * 30 + [0.0] + [5.0] * 30 + [0.0] + [5.0] * 10
    findings = [f for interval in hourly_intervals(litres) for f in detector.update(interval)]
    assert [f.transition for f in findings] == ["raised"]


def test_the_episode_resolves_after_the_flow_stops() -> None:
    stop = LEAK_FROM + 40 * HOUR  # 19:00 the next day; the household's evening use follows
    detector = ContinuousFlowDetector()
    findings = run(leak_for(40), detector)
    assert [f.transition for f in findings] == ["raised", "resolved"]
    raised, resolved = findings
    assert resolved.since == raised.since
    assert stop + detector.clear_h * HOUR <= resolved.at <= stop + 24 * HOUR  # by the end of the night
    assert resolved.facts["flow_h"] >= 40.0
    stopped = raised.since + float(resolved.facts["flow_h"]) * HOUR
    assert f"{stopped:%H:%M}" in resolved.explanation_en


def test_it_resolves_exactly_clear_h_after_the_last_flowing_hour() -> None:
    detector = ContinuousFlowDetector()
    quiet = int(detector.clear_h) + 3
    litres: list[float | None] = [8.0] * 30 + [0.0] * quiet
    findings = [f for interval in hourly_intervals(litres) for f in detector.update(interval)]
    assert [f.transition for f in findings] == ["raised", "resolved"]
    assert findings[1].at == START + (30 + detector.clear_h) * HOUR
    assert findings[1].facts["flow_h"] == 30.0


def test_a_longer_clear_h_resolves_later() -> None:
    litres: list[float | None] = [5.0] * 30 + [0.0] * 8
    times = {}
    for clear_h in (1.0, 2.0, 5.0):
        detector = ContinuousFlowDetector(clear_h=clear_h)
        findings = [f for interval in hourly_intervals(litres) for f in detector.update(interval)]
        resolved = [f for f in findings if f.transition == "resolved"]
        times[clear_h] = resolved[0].at
    assert times[1.0] == START + 31 * HOUR
    assert times[2.0] == START + 32 * HOUR
    assert times[5.0] == START + 35 * HOUR


@pytest.mark.parametrize("seed", range(6))
def test_a_regular_household_never_raises(seed: int) -> None:
    assert run(Household(seed=seed, days=42).build()) == []


def test_the_floor_rises_with_the_households_own_minimum() -> None:
    # A home whose quietest hours still pass 1.5 L/h (a humidifier, say) learns that as normal ...
    learned = ContinuousFlowDetector()
    for interval in hourly_intervals([1.5] * 24 * 60):
        learned.update(interval)
    assert learned.floor() > learned.floor_lph + 1.0
    # ... so 3 L/h for a day is flow for a new home, but not for this one.
    later = START + 24 * 60 * HOUR
    day: list[float | None] = [3.0] * 24
    fresh = ContinuousFlowDetector()
    assert [f.transition for i in hourly_intervals(day, later) for f in fresh.update(i)] == ["raised"]
    assert [f for i in hourly_intervals(day, later) for f in learned.update(i)] == []


def test_unknown_usage_neither_flows_nor_stops() -> None:
    detector = ContinuousFlowDetector()
    litres: list[float | None] = [5.0] * 10 + [None] + [5.0] * 13
    findings = [f for interval in hourly_intervals(litres) for f in detector.update(interval)]
    assert [f.transition for f in findings] == ["raised"]
    assert findings[0].at == START + 22 * HOUR


@pytest.mark.parametrize("outage_h", [24, 36])
def test_a_meter_outage_is_not_continuous_flow(outage_h: int) -> None:
    start: datetime = at_day(25, 10)
    readings = Household(offline=(start, start + timedelta(hours=outage_h))).build()
    assert run(readings) == []
