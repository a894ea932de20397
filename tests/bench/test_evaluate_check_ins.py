"""bench/evaluate_check_ins.py's model of the router and the resident (no ../shared data needed)."""

from __future__ import annotations

from bench.evaluate_check_ins import TIMEOUT_H, Episode, Tier, answer_for, carers_at
from bench.evaluate_detection import H
from detectors.no_usage import NoUsageDetector


def test_the_measured_check_tier_follows_the_detectors_defaults() -> None:
    defaults = NoUsageDetector()
    tier = Tier(defaults.check_ins_per_month)
    assert tier.check_ceiling_h == defaults.check_ceiling_h
    assert tier.alarms_per_month == defaults.false_alarms_per_month
    assert tier.ceiling_h == defaults.ceiling_h


def test_a_resident_who_answers_says_away_to_an_absence_and_fine_to_a_short_silence() -> None:
    assert answer_for(0.5, 0.7, absence=True) == "away"
    assert answer_for(0.5, 0.7, absence=False) == "fine"
    assert answer_for(0.8, 0.7, absence=True) is None
    assert answer_for(0.8, 0.7, absence=False) is None


def test_carers_are_told_after_the_timeout_or_at_the_alarm_if_sooner() -> None:
    episode = Episode(since=0.0, check_at=10 * H, raised_at=18 * H)
    assert carers_at(episode, None, 24 * H) == 10 * H + TIMEOUT_H * H
    early = Episode(since=0.0, check_at=10 * H, raised_at=10 * H + 0.25 * H)
    assert carers_at(early, None, 24 * H) == early.raised_at


def test_fine_tells_carers_only_at_a_day_and_away_never() -> None:
    episode = Episode(since=0.0, check_at=10 * H, raised_at=18 * H)
    assert carers_at(episode, "fine", 24 * H) == 24 * H
    assert carers_at(episode, "fine", None) is None
    assert carers_at(episode, "away", 24 * H) is None


def test_a_silence_raised_with_nobody_asked_goes_to_carers_at_the_raise_whatever_the_answer() -> None:
    episode = Episode(since=0.0, raised_at=19 * H)
    for answer in (None, "fine", "away"):
        assert carers_at(episode, answer, 24 * H) == 19 * H


def test_nobody_is_told_once_the_silence_has_ended() -> None:
    episode = Episode(since=0.0, check_at=10 * H, raised_at=None, resolved_at=10 * H + 0.1 * H)
    assert carers_at(episode, None, None) is None
