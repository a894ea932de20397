"""``no_usage``'s check tier: the resident is asked (``check_in``) before carers are alarmed (``raised``)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from detectors import DetectorBank, Finding, Observation
from detectors.no_usage import NoUsageDetector
from detectors.priors import SILENCE_THRESHOLDS_H
from detectors.state import StateLayout
from tests.detectors.series import HOUR, Household, add_use, at_day, feed

COLLAPSES = [at_day(30, 6), at_day(30, 9), at_day(30, 14), at_day(30, 21)]
WEEKDAYS = 0b0011111  # Monday = 1 … Friday = 16


def run(readings: list[Observation], **settings: float) -> list[Finding]:
    return feed(DetectorBank([NoUsageDetector(**settings)], tz="UTC"), readings)


def episode_of(findings: list[Finding], since: datetime) -> list[Finding]:
    return [f for f in findings if f.since == since]


def alarms(findings: list[Finding]) -> list[tuple[str, datetime, datetime, str, str]]:
    """What carers see: the raised and escalated findings, with their words."""
    return [
        (f.transition, f.since, f.at, f.severity, f.explanation_en)
        for f in findings
        if f.transition in {"raised", "escalated"}
    ]


def collapse_episode(collapse: datetime, **settings: float) -> tuple[list[Observation], list[Finding]]:
    readings = Household(collapse_at=collapse).build()
    findings = run(readings, **settings)
    raised = next(f for f in findings if f.transition == "raised" and f.at > collapse)
    return readings, episode_of(findings, raised.since)


@pytest.mark.parametrize("collapse", COLLAPSES, ids=lambda c: f"{c:%H}h")
def test_a_collapse_asks_the_resident_before_it_alarms_carers(collapse: datetime) -> None:
    _, findings = collapse_episode(collapse)
    check_in, raised = findings[:2]
    assert (check_in.transition, raised.transition) == ("check_in", "raised")
    assert check_in.kind == raised.kind == "no_usage"
    assert check_in.since == raised.since <= collapse
    assert check_in.at < raised.at
    check_limit_h, limit_h = float(check_in.facts["check_limit_h"]), float(check_in.facts["limit_h"])
    assert check_limit_h <= limit_h == float(raised.facts["limit_h"])
    silence_h = (check_in.at - check_in.since) / HOUR
    assert check_limit_h <= silence_h < check_limit_h + 1.0  # the first hourly reading past the check limit
    assert "询问老人本人" in check_in.explanation_zh and "asking the resident" in check_in.explanation_en
    assert [f.transition for f in findings].count("check_in") == 1


@pytest.mark.parametrize("collapse", COLLAPSES, ids=lambda c: f"{c:%H}h")
def test_without_a_check_budget_the_alarms_are_exactly_those_with_one(collapse: datetime) -> None:
    readings = Household(collapse_at=collapse, days=45).build()
    without = run(readings, check_ins_per_month=0.0)
    with_checks = run(readings, check_ins_per_month=2.0)
    assert not [f for f in without if f.transition == "check_in"]
    assert [f for f in with_checks if f.transition == "check_in"], "the budget of 2 asked about nothing"
    assert alarms(without) and alarms(without) == alarms(with_checks)
    # Every raised episode is resolved alike; a check-only episode adds its own all-clear and nothing else.
    alarmed = {f.since for f in without if f.transition == "raised"}
    resolved_without = [(f.since, f.at) for f in without if f.transition == "resolved"]
    resolved_with = [(f.since, f.at) for f in with_checks if f.transition == "resolved" and f.since in alarmed]
    assert resolved_with == resolved_without


def test_a_silence_first_seen_past_the_alarm_limit_raises_without_asking() -> None:
    collapse = at_day(30, 9)
    # The meter sends nothing for 22 hours after the collapse: its next reading shows a silence
    # longer than any limit (the 18-hour ceiling) at once.
    readings = Household(collapse_at=collapse, offline=(collapse + HOUR, collapse + 23 * HOUR)).build()
    findings = run(readings)
    raised = next(f for f in findings if f.transition == "raised" and f.at > collapse)
    assert raised.at == collapse + 23 * HOUR
    assert (raised.at - raised.since) / HOUR > float(raised.facts["limit_h"])
    assert [f.transition for f in episode_of(findings, raised.since)][:2] == ["raised", "escalated"]
    # The same silence seen hour by hour asks first: the gap is what skips the check-in.
    _, seen_hourly = collapse_episode(collapse)
    assert seen_hourly[0].transition == "check_in" and seen_hourly[0].since == raised.since


def test_water_use_after_a_check_in_resolves_the_check_only_episode() -> None:
    collapse = at_day(30, 9)
    readings, findings = collapse_episode(collapse)
    check_in, raised = findings[:2]
    assert raised.at - check_in.at >= 2 * HOUR, "no room between the check and the alarm limits"
    resumed = check_in.at + HOUR
    healed = add_use(readings, {resumed: 15.0})
    episode = episode_of(run(healed), check_in.since)
    assert [f.transition for f in episode] == ["check_in", "resolved"]
    resolved = episode[1]
    assert resolved.at == resumed and resolved.kind == "no_usage"
    # Without a check tier nobody was told, so there is nothing to resolve either.
    assert episode_of(run(healed, check_ins_per_month=0.0), check_in.since) == []


def learned(days: int = 35, **settings: float) -> NoUsageDetector:
    detector = NoUsageDetector(**settings)
    feed(DetectorBank([detector], tz="UTC"), Household(days=days).build())
    return detector


@pytest.mark.parametrize("hour", [13, 16])
@pytest.mark.parametrize("tier", ["check", "alarm"])
def test_feedback_that_an_alarm_was_needless_lengthens_that_hours_limit(tier: str, hour: int) -> None:
    # The synthetic household's alarm limits sit at the 18-hour ceiling at 0.3 a month: a looser alarm
    # budget leaves them room to grow.
    detector = learned() if tier == "check" else learned(false_alarms_per_month=3.0, check_ins_per_month=0.0)
    limit = detector.check_limit_hours if tier == "check" else detector.limit_hours
    before = limit(hour)
    assert before < (detector.check_ceiling_h if tier == "check" else detector.ceiling_h), "nothing to lengthen"
    detector.learn_feedback(at_day(36, hour).timestamp(), before + 1.0, 0.0)
    assert limit(hour) > before
    # Nonsense is ignored.
    table = detector.limits_table()
    detector.learn_feedback(at_day(36, hour).timestamp(), float("nan"), 0.0)
    detector.learn_feedback(at_day(36, hour).timestamp(), -3.0, 0.0)
    assert detector.limits_table() == table


def test_the_bank_passes_feedback_to_no_usage_only() -> None:
    detector = learned()
    bank = DetectorBank([detector], tz="Europe/Madrid")
    before = detector.check_limit_hours(16)
    # The bank turns the epoch second into the household's local hour: 16:00 in Madrid.
    since = datetime(2026, 4, 7, 16, 10, tzinfo=ZoneInfo("Europe/Madrid")).timestamp()
    assert bank.learn_feedback("no_usage", since, before + 1.0)
    assert detector.check_limit_hours(16) > before
    assert detector.check_limit_hours(7) <= NoUsageDetector().check_ceiling_h
    assert not bank.learn_feedback("spike", since, 3.0)


@pytest.mark.parametrize(("start", "end"), [(17 * 60, 60), (18 * 60, 2 * 60)], ids=["17-01", "18-02"])
def test_a_hinted_outing_is_never_asked_about_in_a_new_household(start: int, end: int) -> None:
    detector = NoUsageDetector()
    hour, outing_h = start // 60, ((end - start) % 1440) / 60
    assert detector.check_limit_hours(hour) < outing_h, "the population's limit already spares this outing"
    detector.learn_hints(wake_minute=None, outings=[(WEEKDAYS, float(start), float(end))])
    assert detector.check_limit_hours(hour) > outing_h
    assert detector.limit_hours(hour) > outing_h


def test_a_morning_market_hint_never_asks_while_the_elder_is_out() -> None:
    # A new household's limits sit at the ceilings, far past the market's end; the hint (silences from
    # 08:00 that end by 11:00) may bring them nearer, never inside the outing and its walk home.
    detector = NoUsageDetector()
    detector.learn_hints(wake_minute=None, outings=[(WEEKDAYS, 8 * 60.0, 11 * 60.0)])
    assert detector.check_limit_hours(8) >= 3.0 + 1.0
    assert detector.limit_hours(8) >= detector.check_limit_hours(8)


def test_a_getting_up_hint_makes_a_new_household_faster_at_night() -> None:
    # Without history the night's limits sit at the ceilings; "up at 06:30" says a night from 22:00 lasts
    # 8.5 h, so a silence from 22:00 is asked about (and raised) sooner.
    plain, hinted = NoUsageDetector(), NoUsageDetector()
    hinted.learn_hints(wake_minute=6.5 * 60, outings=[])
    assert hinted.check_limit_hours(22) < plain.check_limit_hours(22)
    assert hinted.limit_hours(22) < plain.limit_hours(22)
    assert hinted.check_limit_hours(22) > 8.5  # still past the usual night


def test_a_check_in_in_progress_survives_a_restart() -> None:
    collapse = at_day(30, 14)
    readings = Household(collapse_at=collapse).build()
    whole = run(readings)
    check_in = next(f for f in whole if f.transition == "check_in" and f.at > collapse)
    split = next(i for i, r in enumerate(readings) if r.ts == check_in.at) + 1
    first = DetectorBank([NoUsageDetector()], tz="UTC")
    before = feed(first, readings[:split])
    assert before[-1] == check_in
    second = DetectorBank([NoUsageDetector()], tz="UTC")
    second.load(first.dump())
    after = feed(second, readings[split:])
    assert before + after == whole
    assert [f.transition for f in episode_of(after, check_in.since)][:2] == ["raised", "escalated"]


def test_a_version_1_state_still_loads_and_asks_from_then_on() -> None:
    old_layout = StateLayout(1, "ddddddBIdiHi", halves=24 * len(SILENCE_THRESHOLDS_H) + 24)
    new_layout = StateLayout(2, "ddddddBIdiHidB", halves=24 * len(SILENCE_THRESHOLDS_H) + 48)
    collapse = at_day(30, 9)
    readings = Household(collapse_at=collapse).build()
    split = next(i for i, r in enumerate(readings) if r.ts >= collapse - 24 * HOUR)
    current = NoUsageDetector()
    feed(DetectorBank([current], tz="UTC"), readings[:split])
    scalars, halves = new_layout.unpack(current.dump())
    # What the detector saved before the check tier: no check fields, no check limits.
    v1 = old_layout.pack(scalars[:12], halves[: 24 * len(SILENCE_THRESHOLDS_H) + 24])
    upgraded = NoUsageDetector()
    upgraded.load(v1)
    assert (upgraded.survival_table() == current.survival_table()).all()
    assert [upgraded.limit_hours(h) for h in range(24)] == [current.limit_hours(h) for h in range(24)]
    assert upgraded.dump()[0] == 2 and len(upgraded.dump()) == new_layout.size
    later = feed(DetectorBank([upgraded], tz="UTC"), readings[split:])
    transitions = [f.transition for f in later if f.at > collapse]
    assert transitions[:2] == ["check_in", "raised"]
    assert alarms(later) == alarms(feed(DetectorBank([current], tz="UTC"), readings[split:]))


def test_an_unknown_version_is_refused() -> None:
    state = bytearray(NoUsageDetector().dump())
    state[0] = 9
    with pytest.raises(ValueError, match="version"):
        NoUsageDetector().load(bytes(state))


def test_check_limits_never_exceed_alarm_limits_or_the_check_ceiling() -> None:
    for detector in (NoUsageDetector(), learned(), NoUsageDetector(check_ceiling_h=30.0, ceiling_h=10.0)):
        for hour in range(24):
            check, alarm = detector.check_limit_hours(hour), detector.limit_hours(hour)
            assert detector.min_silence_h <= check <= alarm, (hour, check, alarm)
            assert check <= min(detector.check_ceiling_h, detector.ceiling_h)
    assert NoUsageDetector(check_ins_per_month=0.0).check_limit_hours(9) == 0.0
