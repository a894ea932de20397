from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from detectors.incidents import IncidentMerger
from detectors.incidents.merging import similarity

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CLUTTER_1 = "3栋2单元楼道里堆满了纸箱，过不去"
CLUTTER_2 = "3栋2单元楼道又被纸箱堵住了，请清理"


def test_same_thing_twice_in_a_cell_is_one_incident() -> None:
    merger = IncidentMerger()
    first = merger.add("r1", CLUTTER_1, "FT-12-3", "clutter", T0)
    second = merger.add("r2", CLUTTER_2, "FT-12-3", "clutter", T0 + timedelta(hours=5))
    assert (first.incident_id, first.is_new, first.report_count) == ("r1", True, 1)
    assert (second.incident_id, second.is_new, second.report_count) == ("r1", False, 2)
    assert 0.35 <= second.similarity <= 1.0
    assert merger.incident("r1")["count"] == 2


def test_identical_text_merges() -> None:
    merger = IncidentMerger()
    merger.add("r1", "东门的路灯不亮", "C1", "facility", T0)
    assert merger.add("r2", "东门的路灯不亮！！", "C1", "facility", T0 + timedelta(minutes=3)).report_count == 2


def test_other_cell_is_a_new_incident() -> None:
    merger = IncidentMerger()
    merger.add("r1", CLUTTER_1, "FT-12-3", "clutter", T0)
    decision = merger.add("r2", CLUTTER_2, "FT-12-4", "clutter", T0 + timedelta(hours=1))
    assert (decision.incident_id, decision.is_new, decision.report_count) == ("r2", True, 1)


def test_outside_the_window_is_a_new_incident() -> None:
    merger = IncidentMerger(window=timedelta(hours=48))
    merger.add("r1", CLUTTER_1, "FT-12-3", "clutter", T0)
    decision = merger.add("r2", CLUTTER_2, "FT-12-3", "clutter", T0 + timedelta(hours=49))
    assert decision.is_new and decision.incident_id == "r2"
    assert merger.incident("r1") is None  # expired by event time


def test_the_window_slides_with_each_report() -> None:
    merger = IncidentMerger(window=timedelta(hours=48))
    for i in range(4):  # one report a day keeps the incident open
        decision = merger.add(f"r{i}", CLUTTER_1, "C", "clutter", T0 + timedelta(days=i))
    assert (decision.incident_id, decision.report_count) == ("r0", 4)


def test_other_category_or_other_thing_is_a_new_incident() -> None:
    merger = IncidentMerger()
    merger.add("r1", "12号楼电梯又坏了", "C", "facility", T0)
    assert merger.add("r2", "12号楼的电梯坏了，老人上不去楼", "C", "facility", T0).incident_id == "r1"
    assert merger.add("r3", "12号楼门禁坏了", "C", "facility", T0).is_new  # different object
    assert merger.add("r4", "5号楼电梯又坏了", "C", "facility", T0).is_new  # different building
    assert merger.add("r5", "12号楼电梯又坏了", "C", "hazard", T0).is_new  # different category
    assert merger.add("r6", "小区遛狗不牵绳", "C", "pets", T0).is_new


def test_a_report_sent_twice_is_counted_once() -> None:
    merger = IncidentMerger()
    merger.add("r1", CLUTTER_1, "C", "clutter", T0)
    merger.add("r2", CLUTTER_2, "C", "clutter", T0)
    again = merger.add("r2", CLUTTER_2, "C", "clutter", T0)
    assert again.duplicate and again.report_count == 2


def test_late_report_within_the_window_still_merges() -> None:
    merger = IncidentMerger()
    merger.add("r1", CLUTTER_1, "C", "clutter", T0 + timedelta(hours=10))
    assert merger.add("r0", CLUTTER_2, "C", "clutter", T0).incident_id == "r1"
    assert merger.incident("r1")["first_ts"] == T0.isoformat()


def test_expire_returns_the_ids() -> None:
    merger = IncidentMerger(window=timedelta(hours=1))
    merger.add("a", CLUTTER_1, "C1", "clutter", T0)
    merger.add("b", "路灯不亮", "C2", "facility", T0 + timedelta(minutes=50))
    assert merger.expire(T0 + timedelta(minutes=90)) == ["a"]
    assert len(merger) == 1


def test_state_round_trip() -> None:
    merger = IncidentMerger(window=timedelta(hours=24), threshold=0.4)
    merger.add("r1", CLUTTER_1, "C", "clutter", T0)
    merger.add("r2", CLUTTER_2, "C", "clutter", T0 + timedelta(hours=1))
    merger.add("r3", "路灯不亮", "D", "facility", T0 + timedelta(hours=2))
    state = json.loads(json.dumps(merger.to_dict(), ensure_ascii=False))
    restored = IncidentMerger.from_dict(state)
    assert restored.to_dict() == merger.to_dict()
    assert (restored.window, restored.threshold) == (timedelta(hours=24), 0.4)
    decision = restored.add("r4", "3栋2单元楼道纸箱还没清理", "C", "clutter", T0 + timedelta(hours=3))
    assert (decision.incident_id, decision.report_count) == ("r1", 3)


def test_state_stays_compact() -> None:
    merger = IncidentMerger()
    for i in range(500):
        merger.add(f"r{i}", CLUTTER_1 + "。" * (i % 3), "C", "clutter", T0 + timedelta(minutes=i))
    incident = merger.incident("r0")
    assert incident["count"] == 500
    assert len(incident["texts"]) <= 5 and len(incident["report_ids"]) <= 200
    assert len(json.dumps(merger.to_dict(), ensure_ascii=False)) < 10_000


def test_bad_input_is_refused() -> None:
    merger = IncidentMerger()
    with pytest.raises(ValueError, match="timezone"):
        merger.add("r1", "x", "C", "clutter", datetime(2026, 3, 2, 8, 0))
    with pytest.raises(ValueError, match="category"):
        merger.add("r1", "x", "C", "bikes", T0)
    with pytest.raises(ValueError, match="report_id"):
        merger.add("", "x", "C", "clutter", T0)
    with pytest.raises(ValueError):
        IncidentMerger(threshold=0)
    with pytest.raises(ValueError, match="version"):
        IncidentMerger.from_dict({"version": 99})


def test_odd_texts_do_not_crash() -> None:
    merger = IncidentMerger()
    for i, text in enumerate(["", "🙂🙂", "x" * 100_000, bytes(range(256)).decode("utf-8", "surrogateescape")]):
        assert merger.add(f"j{i}", text, "C", "other", T0).report_count >= 1
    assert 0.0 <= similarity("", "") <= 1.0


def test_similarity() -> None:
    assert similarity("东门的路灯不亮", "小区东门那一排路灯都不亮了") > similarity("东门的路灯不亮", "草坪上全是狗屎")
    assert similarity("东门的路灯不亮", "西门的路灯不亮") == 0.0
    assert similarity("王奶奶两天没出门了", "刘大爷两天没出门了") == 0.0
    assert similarity("楼道堆物", "楼道堆物") == pytest.approx(1.0)
