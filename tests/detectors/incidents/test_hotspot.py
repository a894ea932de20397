from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from detectors.incidents import HotspotDetector
from detectors.incidents.hotspot_window import WindowHotspotDetector
from detectors.incidents.poisson_limits import _design_cached, burst_limit, cusum_arl, cusum_design, poisson_tail

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CELL = "FT-12-3"


def _quiet_detector() -> HotspotDetector:
    """Watching for ten weeks; the cell had one e-bike report five weeks ago."""
    detector = HotspotDetector(started=T0 - timedelta(weeks=10))
    assert detector.update(CELL, "ebike", T0 - timedelta(weeks=5)) is None
    return detector


def test_burst_in_a_quiet_cell_raises_with_an_explanation() -> None:
    detector = _quiet_detector()
    findings = [detector.update(CELL, "ebike", T0 + timedelta(hours=20 * i)) for i in range(6)]
    raised = [f for f in findings if f is not None]
    assert len(raised) == 1 and raised[0].transition == "raised"
    finding = raised[0]
    assert finding.count >= 3 and finding.p_value < 0.01
    assert finding.baseline_per_week < 0.5
    assert f"{finding.count} reports of e-bike parking and charging in cell {CELL} in 7 days" in finding.explanation_en
    assert "usually" in finding.explanation_en and "a week" in finding.explanation_en
    assert f"网格 {CELL} 近 7 天有 {finding.count} 起“电动车停放充电”类报告" in finding.explanation_zh
    assert "平时约每周" in finding.explanation_zh
    assert detector.active() == [(CELL, "ebike")]


def test_it_clears_when_the_burst_subsides() -> None:
    detector = _quiet_detector()
    for i in range(6):
        detector.update(CELL, "ebike", T0 + timedelta(days=i))
    assert detector.advance(T0 + timedelta(days=6)) == []
    resolved = detector.advance(T0 + timedelta(days=14))
    assert [(f.transition, f.grid_cell, f.category) for f in resolved] == [("resolved", CELL, "ebike")]
    assert resolved[0].since < resolved[0].at
    assert "回落" in resolved[0].explanation_zh and "subsided" in resolved[0].explanation_en
    assert detector.active() == []


@pytest.mark.parametrize("per_week", [1, 2, 3])
def test_a_steady_rate_raises_nothing(per_week: int) -> None:
    detector = HotspotDetector()
    step = timedelta(days=7) / per_week
    for i in range(per_week * 16):
        assert detector.update(CELL, "sanitation", T0 + i * step) is None
    assert detector.advance(T0 + timedelta(weeks=17)) == []


def test_a_busy_cell_needs_more_than_its_usual() -> None:
    detector = HotspotDetector()
    step = timedelta(days=7) / 5
    findings = [detector.update(CELL, "noise_dispute", T0 + i * step) for i in range(5 * 12)]
    # the first week is judged against the prior; after that 5 a week is this cell's normal
    assert not [f for f in findings[10:] if f is not None and f.transition == "raised"]
    later = T0 + 12 * timedelta(days=7)
    burst = [detector.update(CELL, "noise_dispute", later + timedelta(hours=6 * i)) for i in range(16)]
    assert any(f is not None and f.transition == "raised" for f in burst)


def test_cells_and_categories_are_separate() -> None:
    detector = _quiet_detector()
    for i in range(2):
        detector.update(CELL, "ebike", T0 + timedelta(days=i))
        detector.update("FT-12-4", "ebike", T0 + timedelta(days=i))
        detector.update(CELL, "pets", T0 + timedelta(days=i))
    assert detector.active() == []


def test_state_round_trip() -> None:
    detector = _quiet_detector()
    for i in range(4):
        detector.update(CELL, "ebike", T0 + timedelta(days=i))
    detector.update("X-1", "pets", T0)
    state = json.loads(json.dumps(detector.to_dict()))
    restored = HotspotDetector.from_dict(state)
    assert restored.to_dict() == detector.to_dict()
    assert restored.active() == [(CELL, "ebike")]
    assert [f.transition for f in restored.advance(T0 + timedelta(days=20))] == ["resolved"]


def test_old_counts_are_forgotten() -> None:
    detector = HotspotDetector(baseline_weeks=2)
    detector.update(CELL, "ebike", T0)
    detector.advance(T0 + timedelta(weeks=4))
    assert detector.to_dict()["cells"] == []


def test_bad_input_is_refused() -> None:
    detector = HotspotDetector()
    with pytest.raises(ValueError, match="timezone"):
        detector.update(CELL, "ebike", datetime(2026, 3, 2))
    with pytest.raises(ValueError, match="category"):
        detector.update(CELL, "bikes", T0)
    with pytest.raises(ValueError, match="grid_cell"):
        detector.update("", "ebike", T0)
    with pytest.raises(ValueError):
        HotspotDetector(shift=1.0)
    with pytest.raises(ValueError):
        HotspotDetector(baseline_quantile=1.5)
    with pytest.raises(ValueError, match="version"):
        HotspotDetector.from_dict({"version": 0})


def test_poisson_tail() -> None:
    def exact(k: int, mean: float) -> float:
        return 1.0 - sum(math.exp(-mean) * mean**i / math.factorial(i) for i in range(k))

    for k, mean in [(0, 1.0), (1, 0.5), (3, 0.1), (6, 0.4), (2, 5.0), (10, 3.0), (30, 25.0)]:
        assert poisson_tail(k, mean) == pytest.approx(exact(k, mean), rel=1e-6, abs=1e-12)
    assert 0.0 < poisson_tail(50, 1.0) < 1e-60  # far in the tail, no cancellation to zero
    assert poisson_tail(3, 0.0) == 0.0


def _poisson_times(rng: random.Random, per_week: float, start: datetime, weeks: float) -> list[datetime]:
    out, t = [], 0.0
    while True:
        t += rng.expovariate(per_week)
        if t >= weeks:
            return out
        out.append(start + timedelta(weeks=t))


def _raised(
    detector: HotspotDetector | WindowHotspotDetector, times: list[datetime], cell: str = CELL
) -> list[datetime]:
    """Fed as the incidents agent does: advance, then update; the times of every raise."""
    found = []
    for ts in times:
        findings = [*detector.advance(ts), detector.update(cell, "sanitation", ts)]
        found += [ts for f in findings if f is not None and f.transition == "raised"]
    return found


@pytest.mark.parametrize("per_week", [1, 3, 6])
def test_false_hotspots_on_a_steady_stream_stay_within_the_budget(per_week: int) -> None:
    """Seeded Poisson streams, 26 weeks each from a new cell's first report: at most 0.01 false
    hotspots per series-week (the detector's own budget is 1 in 200 weeks). The sliding-window test
    this replaced raised 0.04 to 0.2 here."""
    rng = random.Random(20260302 + per_week)
    series, weeks, raised = 40, 26, 0
    for _ in range(series):
        raised += len(_raised(HotspotDetector(), _poisson_times(rng, per_week, T0, weeks)))
    assert raised <= 0.01 * series * weeks


def test_the_window_test_it_replaced_fails_that_budget() -> None:
    """The same check can fail: the old sliding-window test spends its 1 % at every report."""
    rng = random.Random(20260305)
    raised = sum(len(_raised(WindowHotspotDetector(), _poisson_times(rng, 6, T0, 26))) for _ in range(40))
    assert raised > 0.01 * 40 * 26


def test_a_tripling_is_found_within_the_week() -> None:
    """Six a week for twelve weeks, then eighteen: raised within seven days of the step in at least
    65 % of seeded trials (measured 70 % in bench/hotspots.py; the best any test can do at this
    budget is 91 %)."""
    rng = random.Random(7)
    found, trials = 0, 60
    for _ in range(trials):
        step = T0 + timedelta(weeks=12)
        times = _poisson_times(rng, 6, T0, 12) + _poisson_times(rng, 18, step, 1)
        found += any(step <= ts < step + timedelta(days=7) for ts in _raised(HotspotDetector(), times))
    assert found >= 0.65 * trials


def test_a_new_cell_is_not_judged_against_a_prior_that_knows_nothing_of_it() -> None:
    """Six a week from the first report: no hotspot in the first weeks (the old test raised one)."""
    times = [T0 + i * timedelta(days=7) / 6 for i in range(6 * 4)]
    assert _raised(HotspotDetector(), times) == []
    assert len(_raised(WindowHotspotDetector(), times)) == 1


def test_a_flood_in_a_new_cell_is_still_raised_and_says_the_cell_is_new() -> None:
    detector = HotspotDetector()
    findings = [detector.update(CELL, "ebike", T0 + timedelta(minutes=i)) for i in range(8)]
    raised = [f for f in findings if f is not None]
    assert [f.transition for f in raised] == ["raised"]
    assert "has not been watched long" in raised[0].explanation_en and "e-bike" in raised[0].explanation_en
    assert "观察时间还短" in raised[0].explanation_zh and "电动车停放充电" in raised[0].explanation_zh


def test_a_version_1_state_loads_with_its_counts_and_active_hotspots() -> None:
    old = WindowHotspotDetector(started=T0 - timedelta(weeks=10))
    old.update(CELL, "ebike", T0 - timedelta(weeks=5))
    for i in range(4):
        old.update(CELL, "ebike", T0 + timedelta(days=i))
    state = json.loads(json.dumps(old.to_dict()))
    assert state["version"] == 1
    new = HotspotDetector.from_dict(state)
    assert new.active() == [(CELL, "ebike")]
    assert new.to_dict()["version"] == 2
    assert new.known_from is not None and new.known_from > new.started  # the weeks v1 dropped count as unknown
    assert [f.transition for f in new.advance(T0 + timedelta(days=20))] == ["resolved"]
    assert HotspotDetector.from_dict(json.loads(json.dumps(new.to_dict()))).to_dict() == new.to_dict()


def test_the_markov_chain_arl_matches_a_case_worked_by_hand() -> None:
    # k = 1, h = 1: S stays 0 unless a day has 2 or more reports, which alarms at once
    rate = 0.4
    p_two_or_more = 1 - math.exp(-rate) * (1 + rate)
    assert cusum_arl(rate, 1, 1, 1) == pytest.approx(1 / p_two_or_more, rel=1e-9)


@pytest.mark.parametrize("per_week", [0.5, 1.0, 3.0, 6.0, 12.0])
def test_the_limit_is_the_smallest_that_meets_the_budget(per_week: float) -> None:
    k, h = cusum_design(per_week, 3.0, 200.0)
    assert k > per_week / 7  # the reference value lies above the usual daily rate
    key = round(40 * math.log(per_week / 7))
    k_units, h_units, units = _design_cached(key, 3.0, 200.0 * 7)
    assert (k_units / units, h_units / units) == (k, h)
    rate = math.exp(key / 40)
    assert cusum_arl(rate, k_units, h_units, units) >= 200 * 7
    assert cusum_arl(rate, k_units, h_units - 1, units) < 200 * 7


def test_five_reports_within_an_hour_in_a_new_cell_are_a_burst() -> None:
    detector = HotspotDetector()
    findings = [detector.update(CELL, "ebike", T0 + timedelta(minutes=7 * i)) for i in range(5)]
    assert [f is None for f in findings] == [True, True, True, True, False]
    burst = findings[-1]
    assert burst is not None and burst.transition == "raised" and burst.count == 5
    assert "within 2 hours" in burst.explanation_en and "2 小时内集中出现 5 起" in burst.explanation_zh


def test_four_reports_at_once_are_one_problem_told_by_neighbours_not_a_hotspot() -> None:
    detector = HotspotDetector()
    assert all(detector.update(CELL, "ebike", T0 + timedelta(minutes=i)) is None for i in range(4))


def test_a_burst_stays_raised_for_a_day_then_resolves_when_quiet() -> None:
    detector = HotspotDetector()
    for i in range(5):
        detector.update(CELL, "ebike", T0 + timedelta(minutes=i))
    assert detector.advance(T0 + timedelta(hours=12)) == [] and detector.active() == [(CELL, "ebike")]
    resolved = detector.advance(T0 + timedelta(days=8))
    assert [f.transition for f in resolved] == ["resolved"] and detector.active() == []


def test_a_busy_cell_needs_a_bigger_burst() -> None:
    detector = HotspotDetector()
    hours_apart = 168 / 20  # twenty reports a week, evenly, for twelve weeks
    t = T0
    while t < T0 + timedelta(weeks=12):
        detector.update(CELL, "sanitation", t)  # a new cell this busy is raised at first: not the point here
        t += timedelta(hours=hours_apart)
    assert detector.active() == []
    burst = [detector.update(CELL, "sanitation", t + timedelta(minutes=i)) for i in range(5)]
    assert burst == [None] * 5  # five in an hour is within what twenty a week gives by chance
    assert detector.update(CELL, "sanitation", t + timedelta(minutes=6)) is not None


@pytest.mark.parametrize("per_week", [0.5, 3.0, 6.0, 20.0])
def test_the_burst_limit_is_the_smallest_count_within_its_budget(per_week: float) -> None:
    n = burst_limit(per_week, 2, 500)
    mean = 2 * 2 * math.exp(math.ceil(40 * math.log(per_week)) / 40) / 168
    assert 84 * poisson_tail(n, mean) <= 1 / 500 < 84 * poisson_tail(n - 1, mean)


def test_a_cusum_exactly_at_its_limit_raises_despite_float_rounding() -> None:
    # A new cell is judged at 6 a week: k = 5/3, h = 5. Days of 0, 2, 2 and 6 reports put S at exactly
    # 1/3 + 1/3 + 13/3 = 5 in exact arithmetic; summed in floats it lands at 4.999999999999999.
    detector = HotspotDetector(min_count=1, burst_min=100)
    findings = []
    for day, count in enumerate([0, 2, 2, 6]):
        for i in range(count):
            findings.append(detector.update(CELL, "sanitation", T0 + timedelta(days=day, hours=2 * i)))
    raised = [f for f in findings if f is not None]
    assert [f.transition for f in raised] == ["raised"] and findings[-1] is raised[0]
