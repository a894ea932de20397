from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from detectors.incidents import HotspotDetector
from detectors.incidents.hotspot import poisson_tail

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
        HotspotDetector(p_raise=0.5, p_clear=0.1)
    with pytest.raises(ValueError, match="version"):
        HotspotDetector.from_dict({"version": 0})


def test_poisson_tail() -> None:
    def exact(k: int, mean: float) -> float:
        return 1.0 - sum(math.exp(-mean) * mean**i / math.factorial(i) for i in range(k))

    for k, mean in [(0, 1.0), (1, 0.5), (3, 0.1), (6, 0.4), (2, 5.0), (10, 3.0), (30, 25.0)]:
        assert poisson_tail(k, mean) == pytest.approx(exact(k, mean), rel=1e-6, abs=1e-12)
    assert 0.0 < poisson_tail(50, 1.0) < 1e-60  # far in the tail, no cancellation to zero
    assert poisson_tail(3, 0.0) == 0.0
