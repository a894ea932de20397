"""``routine_change``: the last week drifting away from the four weeks before it."""

from __future__ import annotations

import re
from datetime import timedelta

import numpy as np
import pytest

from detectors import DetectorBank, Finding, Observation
from detectors.routine_change import DAYS, RoutineChangeDetector
from tests.detectors.series import START, Household, add_use, at_day, feed

CLOCKS = re.compile(r"first water use moved from about (\d\d):(\d\d) to about (\d\d):(\d\d)")
LITRES = re.compile(r"daily water use fell from about (\d+) L to about (\d+) L")


def run(readings: list[Observation], detector: RoutineChangeDetector | None = None) -> list[Finding]:
    return feed(DetectorBank([detector or RoutineChangeDetector()], tz="UTC"), readings)


@pytest.mark.parametrize("seed", [7, 0, 1, 3])
@pytest.mark.parametrize("shift_day", [35, 40, 42])
def test_a_shifted_routine_is_raised_within_two_weeks(seed: int, shift_day: int) -> None:
    shift = at_day(shift_day, 0)
    findings = run(Household(seed=seed, days=60, shift_from=shift).build())
    raised = [f for f in findings if f.transition == "raised"]
    assert raised, "the shift was never raised"
    first = raised[0]
    assert (first.kind, first.severity) == ("routine_change", "low")
    assert shift <= first.at <= shift + timedelta(days=14)
    assert first.since <= first.at and first.at - first.since <= timedelta(days=7)
    assert not [f for f in findings if f.at < shift]


@pytest.mark.parametrize("seed", [7, 0, 1, 3])
def test_the_explanation_names_the_later_morning_or_the_smaller_volume(seed: int) -> None:
    findings = run(Household(seed=seed, days=60, shift_from=at_day(40, 0)).build())
    raised = next(f for f in findings if f.transition == "raised")
    clocks, litres = CLOCKS.search(raised.explanation_en), LITRES.search(raised.explanation_en)
    assert clocks or litres, raised.explanation_en
    if clocks:
        usual, later = (int(clocks[1]) * 60 + int(clocks[2])), (int(clocks[3]) * 60 + int(clocks[4]))
        assert later >= usual + 60
        assert "推迟" in raised.explanation_zh
    if litres:
        assert int(litres[2]) <= 0.65 * int(litres[1])
        assert "降到" in raised.explanation_zh
    assert "走访" in raised.explanation_zh and "visit" in raised.explanation_en


@pytest.mark.parametrize("seed", [7, 0, 1, 3, 4, 5])
def test_a_stable_household_is_not_raised_in_eight_weeks(seed: int) -> None:
    assert run(Household(seed=seed, days=56).build()) == []


def test_water_at_night_is_named() -> None:
    nights = {at_day(day, 3): 40.0 for day in range(40, 56)}  # someone up at 02:00 every night
    findings = run(add_use(Household(days=56).build(), nights))
    raised = [f for f in findings if f.transition == "raised"]
    assert raised
    assert "at night" in raised[0].explanation_en and "夜间" in raised[0].explanation_zh
    assert at_day(40, 0) <= raised[0].at <= at_day(54, 0)


def test_no_score_before_five_weeks() -> None:
    detector = RoutineChangeDetector()
    run(Household(days=30).build(), detector)
    assert detector.score() is None
    run(Household(days=40).build(), later := RoutineChangeDetector())
    scored = later.score()
    assert scored is not None
    distance, usual, recent = scored
    assert distance >= 0.0 and usual.shape == recent.shape == (4,)
    assert 6.0 <= usual[0] <= 10.0  # the household's mornings start around 08:00


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_distance_is_the_mahalanobis_distance_under_sklearn_ledoit_wolf(seed: int) -> None:
    from sklearn.covariance import ledoit_wolf

    detector = RoutineChangeDetector()
    run(Household(days=45, seed=seed).build(), detector)
    scored = detector.score()
    assert scored is not None
    days = np.asarray(detector._days).reshape(DAYS, 4)
    usual, recent = days[:-7], days[-7:]
    covariance, _ = ledoit_wolf(usual - usual.mean(axis=0), assume_centered=True)
    offset = recent.mean(axis=0) - usual.mean(axis=0)
    assert scored[0] == pytest.approx(float(np.sqrt(offset @ np.linalg.solve(covariance, offset))), rel=1e-9)


def test_a_day_with_an_outage_is_not_kept() -> None:
    # Losing most of a day to an outage must not make a day of "no water" for the model: the five
    # weeks then need one day more.
    gap = (at_day(20, 2), at_day(20, 20))
    count_full, count_gap = (
        _days_until_scored(Household(days=45).build()),
        _days_until_scored(Household(days=45, offline=gap).build()),
    )
    assert count_gap == count_full + 1


def _days_until_scored(readings: list[Observation]) -> int:
    detector = RoutineChangeDetector()
    bank = DetectorBank([detector], tz="UTC")
    for reading in readings:
        bank.update(reading)
        if detector.score() is not None:
            return (reading.ts - START).days
    raise AssertionError("never scored")


@pytest.mark.parametrize("cut_day", [10, 37])
def test_state_round_trip_keeps_the_stored_days(cut_day: int) -> None:
    readings = Household(days=50, shift_from=at_day(40, 0)).build()
    cut = next(i for i, r in enumerate(readings) if r.ts >= at_day(cut_day, 15))
    whole = RoutineChangeDetector()
    whole_findings = run(readings, whole)
    first = RoutineChangeDetector()
    first_findings = run(readings[:cut], first)
    restored = RoutineChangeDetector()
    restored.load(first.dump())
    assert restored.dump() == first.dump()
    if cut_day >= DAYS:
        before, after = first.score(), restored.score()
        assert before is not None and after is not None
        assert after[0] == pytest.approx(before[0], rel=1e-2)
        assert np.allclose(before[1], after[1], rtol=1e-3) and np.allclose(before[2], after[2], rtol=1e-3)
    bank = DetectorBank([restored], tz="UTC")
    bank.update(readings[cut - 1])  # the bank's own first reading makes no interval
    rest = feed(bank, readings[cut:])
    assert first_findings + rest == whole_findings
    assert restored.dump() == whole.dump()


def test_an_empty_blob_is_refused() -> None:
    with pytest.raises(ValueError):
        RoutineChangeDetector().load(b"")


def test_a_restored_detector_scores_exactly_alike() -> None:
    readings = Household(days=40).build()
    detector = RoutineChangeDetector()
    run(readings, detector)
    restored = RoutineChangeDetector()
    restored.load(detector.dump())
    before, after = detector.score(), restored.score()
    assert before is not None and after is not None
    assert before[0] == after[0]


@pytest.mark.parametrize("seed", range(6))
def test_the_shrinkage_is_scikit_learns_to_the_bit(seed: int) -> None:
    from sklearn.covariance import ledoit_wolf_shrinkage as by_sklearn

    from detectors.routine_change import ledoit_wolf_shrinkage

    rng = np.random.default_rng(seed)
    days = rng.normal(size=(DAYS - 7, 4)) * rng.uniform(0.1, 10, size=4)
    if seed == 5:
        days[:, 2] = 0.0  # a feature that never varies (no night use at all)
    centred = days - days.mean(axis=0)
    assert ledoit_wolf_shrinkage(centred, centred.T @ centred) == by_sklearn(centred, assume_centered=True)
