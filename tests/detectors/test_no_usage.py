"""``no_usage``: an improbable silence for this household is raised, escalated and resolved."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

import numpy as np
import pytest

from detectors import DetectorBank, Finding, Observation
from detectors.meter_offline import MeterOfflineDetector
from detectors.no_usage import NoUsageDetector
from tests.detectors.series import HOUR, START, Household, add_use, at_day, feed, hourly_intervals

COLLAPSES = [at_day(30, 6), at_day(30, 9), at_day(30, 14), at_day(30, 21)]


def last_use_before(readings: list[Observation], moment: datetime) -> datetime:
    """The end of the last hour with water use (≥ 0.5 L) at or before ``moment``."""
    used = [b.ts for a, b in pairwise(readings) if b.ts <= moment and b.register_l - a.register_l >= 0.5]
    return used[-1]


def run(readings: list[Observation], **settings: float) -> list[Finding]:
    """The alarm tier alone (no check-ins) unless ``check_ins_per_month`` is given."""
    settings.setdefault("check_ins_per_month", 0.0)
    return feed(DetectorBank([NoUsageDetector(**settings)], tz="UTC"), readings)


def episode(findings: list[Finding], after: datetime) -> list[Finding]:
    """The findings of the first episode whose silence began at or after ``after``."""
    first = next(f for f in findings if f.since >= after)
    return [f for f in findings if f.since == first.since]


def day_word(since: datetime, at: datetime) -> tuple[str, str]:
    return {0: ("今天", "today"), 1: ("昨天", "yesterday")}[(at.date() - since.date()).days]


@pytest.mark.parametrize("collapse", COLLAPSES, ids=lambda c: f"{c:%H}h")
def test_a_collapse_is_raised_within_a_day_since_the_last_use(collapse: datetime) -> None:
    readings = Household(collapse_at=collapse).build()
    findings = run(readings)
    assert not [f for f in findings if f.at <= collapse], "a regular household raised before the collapse"
    raised = findings[0]
    assert (raised.transition, raised.kind, raised.severity) == ("raised", "no_usage", "high")
    assert raised.since == last_use_before(readings, collapse)
    assert raised.at - collapse <= timedelta(hours=24)
    silence_h = (raised.at - raised.since) / HOUR
    limit_h = float(raised.facts["limit_h"])
    assert limit_h <= silence_h < limit_h + 1.0  # the first hourly reading past the limit


@pytest.mark.parametrize("collapse", COLLAPSES, ids=lambda c: f"{c:%H}h")
def test_it_escalates_once_at_the_lesser_of_a_day_and_twice_the_limit(collapse: datetime) -> None:
    readings = Household(collapse_at=collapse).build()
    raised, escalated = run(readings)[:2]
    assert (escalated.transition, escalated.severity) == ("escalated", "critical")
    assert escalated.since == raised.since
    due_h = min(24.0, 2 * float(raised.facts["limit_h"]))
    silence_h = (escalated.at - escalated.since) / HOUR
    assert due_h <= silence_h < due_h + 1.0
    assert "升级" in escalated.explanation_zh and "escalated" in escalated.explanation_en


@pytest.mark.parametrize("settings", [{"ceiling_h": 6.0}, {"false_alarms_per_month": 5.0}])
def test_a_short_limit_escalates_at_twice_the_limit(settings: dict[str, float]) -> None:
    collapse = at_day(30, 9)
    readings = Household(collapse_at=collapse).build()
    findings = episode(run(readings, **settings), last_use_before(readings, collapse))
    raised, escalated = findings[:2]
    limit_h = float(raised.facts["limit_h"])
    assert 2 * limit_h < 24.0
    assert (escalated.at - escalated.since) / HOUR == pytest.approx(2 * limit_h, abs=1.0)
    assert [f.transition for f in findings] == ["raised", "escalated"]  # never escalated twice


def test_use_resuming_resolves_the_episode() -> None:
    collapse = at_day(30, 9)
    resumed = collapse + timedelta(hours=40)
    readings = add_use(Household(collapse_at=collapse).build(), {resumed: 20.0})
    findings = run(readings)
    assert [f.transition for f in findings][:3] == ["raised", "escalated", "resolved"]
    resolved = findings[2]
    assert resolved.since == findings[0].since
    assert resolved.at == resumed
    silent_h = round((resumed - HOUR - resolved.since) / HOUR)  # until the hour in which use resumed
    assert f"{silent_h} 小时" in resolved.explanation_zh
    assert f"after {silent_h} h" in resolved.explanation_en
    assert f"{resumed:%H:%M}" in resolved.explanation_en


@pytest.mark.parametrize("collapse", COLLAPSES, ids=lambda c: f"{c:%H}h")
def test_the_explanation_names_the_last_use_and_the_silence(collapse: datetime) -> None:
    raised = run(Household(collapse_at=collapse).build())[0]
    hours = round((raised.at - raised.since) / HOUR)
    zh_day, en_day = day_word(raised.since, raised.at)
    assert f"{zh_day} {raised.since:%H:%M}" in raised.explanation_zh
    assert f"{hours} 小时" in raised.explanation_zh
    assert f"{raised.since:%H:%M} {en_day} ({hours} h)" in raised.explanation_en
    assert raised.facts["silence_h"] == hours


def test_an_outage_is_not_a_silence() -> None:
    start, end = at_day(20, 10), at_day(21, 16)
    readings = Household(offline=(start, end)).build()
    bank = DetectorBank([NoUsageDetector(check_ins_per_month=0.0), MeterOfflineDetector()], tz="UTC")
    findings: list[Finding] = []
    for previous, reading in zip([None, *readings], readings, strict=False):
        if previous is not None:  # the stream's clock ticks every half hour, readings or not
            moment = previous.ts + timedelta(minutes=30)
            while moment < reading.ts:
                findings.extend(bank.advance(moment.timestamp()))
                moment += timedelta(minutes=30)
        findings.extend(bank.update(reading))
    assert [(f.kind, f.transition) for f in findings] == [("meter_offline", "raised"), ("meter_offline", "resolved")]
    assert start <= findings[0].at < end


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"false_alarms_per_month": 5.0},
        {"min_silence_h": 6.0, "ceiling_h": 12.0},
        {"false_alarms_per_month": 50.0, "min_silence_h": 3.0},
    ],
)
def test_a_new_household_gets_limits_from_the_prior(settings: dict[str, float]) -> None:
    detector = NoUsageDetector(**settings)
    limits = [detector.limit_hours(hour) for hour in range(24)]
    assert all(detector.min_silence_h <= limit <= detector.ceiling_h for limit in limits), limits


def test_the_prior_allows_longer_silences_from_the_evening_than_the_afternoon() -> None:
    detector = NoUsageDetector(false_alarms_per_month=5.0)
    assert detector.limit_hours(22) > detector.limit_hours(17)
    assert detector.limit_hours(22) < detector.ceiling_h


def learned(days: int, **settings: float) -> NoUsageDetector:
    detector = NoUsageDetector(**settings)
    feed(DetectorBank([detector], tz="UTC"), Household(days=days).build())
    return detector


@pytest.mark.parametrize("days", [0, 42])
def test_a_larger_alarm_budget_never_lengthens_a_limit(days: int) -> None:
    budgets = [0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0]
    tables = []
    for budget in budgets:
        detector = (
            learned(days, false_alarms_per_month=budget) if days else NoUsageDetector(false_alarms_per_month=budget)
        )
        tables.append([detector.limit_hours(hour) for hour in range(24)])
    for looser, stricter in zip(tables[1:], tables, strict=False):
        assert all(a <= b for a, b in zip(looser, stricter, strict=True)), (looser, stricter)
    assert sum(tables[-1]) < sum(tables[0])  # the setting does something


def _limits_trying_every_lambda(detector: NoUsageDetector) -> list[float]:
    """The limits table by exhaustive search over λ: what the bisection must reproduce."""
    from detectors import no_usage as module

    keep = (detector.min_silence_h <= module._GRID) & (detector.ceiling_h >= module._GRID)
    grid = module._GRID[keep]
    on_grid = np.exp(np.log(np.maximum(detector.survival_table(), 1e-9)) @ module._TO_GRID[:, keep])
    on_grid[:, grid > module._THRESHOLDS[-1]] *= 0.5
    per_month = detector.silences_per_month() * detector.start_shares()
    for lam in module._LAMBDAS:
        best = (grid[None, :] + lam * on_grid).argmin(axis=1)
        if float((on_grid[np.arange(24), best] * per_month).sum()) <= detector.false_alarms_per_month:
            break
    return [float(v) for v in module._HALF.unpack(module._HALF.pack(*grid[best]))]


@pytest.mark.parametrize("days", [0, 20, 42])
@pytest.mark.parametrize("budget", [0.01, 0.1, 0.3, 1.0, 4.0, 50.0])
def test_the_limits_bisection_finds_what_trying_every_lambda_finds(days: int, budget: float) -> None:
    detector = learned(days, false_alarms_per_month=budget) if days else NoUsageDetector(false_alarms_per_month=budget)
    assert detector.limits_table() == _limits_trying_every_lambda(detector)


def test_the_limits_are_worked_out_again_weekly_and_after_a_clock_jump() -> None:
    from detectors.no_usage import LIMITS_REFRESH_DAYS

    detector = NoUsageDetector()

    def worked_out(day: int = 0) -> bool:  # a new table object: worked out (the detector may be compiled)
        before = detector._limits
        detector.limit_hours(7, day)
        return detector._limits is not before

    days = [100, 101, 100 + LIMITS_REFRESH_DAYS - 1, 100 + LIMITS_REFRESH_DAYS, 95, 95]
    assert [worked_out(day) for day in days] == [True, False, False, True, True, False]
    assert worked_out() and worked_out()  # no day given: always afresh


def test_the_nightly_silence_does_not_raise_once_learned() -> None:
    readings = Household(days=56).build()
    findings = run(readings)
    assert not [f for f in findings if f.at >= at_day(14, 0)]
    detector = learned(28)
    # The household's nights run about 22:00 → 07:00 or 08:00: the limit leaves room for them.
    assert detector.limit_hours(22) > 10.0 and detector.limit_hours(23) > 9.0


@pytest.mark.parametrize("ceiling_h", [8.0, 12.0, 18.0])
def test_a_silence_beyond_the_ceiling_always_raises(ceiling_h: float) -> None:
    # A household that uses water once every 23 hours teaches the detector that 22 h silences are normal ...
    litres: list[float | None] = ([30.0] + [0.0] * 22) * 21 + [30.0]
    detector = NoUsageDetector(ceiling_h=ceiling_h, false_alarms_per_month=0.01)
    findings = [f for interval in hourly_intervals(litres) for f in detector.update(interval)]
    assert max(detector.limit_hours(hour) for hour in range(24)) <= ceiling_h
    # ... yet every one of its 21 silences is raised once it outgrows the ceiling.
    raised = [f for f in findings if f.transition == "raised"]
    assert len(raised) == 21
    assert all((f.at - f.since) / HOUR <= ceiling_h for f in raised)


def test_unknown_usage_restarts_the_silence_instead_of_counting_it() -> None:
    detector = NoUsageDetector(ceiling_h=6.0)
    intervals = hourly_intervals([10.0] + [None] * 20 + [0.0] * 7)
    findings = [f for interval in intervals for f in detector.update(interval)]
    # Twenty hours of unknown usage (a glitch, a reset) may have hidden water use: the silence is
    # counted from their end, so only six dry hours after them raise.
    assert [f.transition for f in findings] == ["raised"]
    assert findings[0].since == START + 21 * HOUR
    assert findings[0].at == START + 27 * HOUR
