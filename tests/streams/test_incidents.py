"""The incidents agent's pure core: classify, merge, hotspot, dead letters — without Kafka."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from detectors.incidents.hotspot_window import WindowHotspotDetector
from streams.incidents import process_incident
from streams.processing import SourceRecord

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


class Cells:
    """What the Faust table does for the agent: state per grid cell."""

    def __init__(self) -> None:
        self.state: dict[str, dict[str, Any]] = {}

    def run(self, raw: bytes, offset: int = 0) -> Any:
        outcome = process_incident(SourceRecord("t.incidents", 0, offset, b"C7", raw), self.state.get)
        if outcome.state is not None and outcome.grid_cell is not None:
            self.state[outcome.grid_cell] = json.loads(json.dumps(outcome.state))  # as the table stores it
        return outcome


def report(report_id: str, text: str, minutes: int = 0, cell: str = "C7") -> bytes:
    return json.dumps(
        {"incident_id": report_id, "text": text, "grid_cell": cell, "ts": (T0 + timedelta(minutes=minutes)).isoformat()}
    ).encode()


def test_a_report_becomes_an_incident_alert_for_its_cell() -> None:
    [alert] = Cells().run(report("r1", "5栋的电梯又坏了，老人上不了楼")).alerts
    assert (alert.kind.value, alert.grid_cell, alert.facts["category"]) == ("incident", "C7", "facility")
    assert alert.meter_id is None and "电梯" in alert.explanation.zh


def test_similar_reports_merge_into_one_incident_and_a_burst_raises_a_hotspot() -> None:
    cells = Cells()
    texts = [
        "3栋2单元楼道有电动车充电",
        "3栋2单元楼道又有人给电动车充电",
        "3栋2单元楼梯口电动车在充电",
        "3栋2单元电动车楼道充电没人管",
        "3栋2单元楼道电动车充电，电线乱拉",
    ]
    cells.run(report("w0", "5栋的电梯又坏了，老人上不了楼", minutes=-4 * 7 * 24 * 60), offset=100)  # watched a month
    outcomes = [cells.run(report(f"r{i}", text, minutes=10 * i), offset=i) for i, text in enumerate(texts)]
    incident_ids = {a.alert_id for o in outcomes for a in o.alerts if a.kind.value == "incident"}
    assert len(incident_ids) == 1  # one incident, its count rising
    counts = [a.facts["report_count"] for o in outcomes for a in o.alerts if a.kind.value == "incident"]
    assert counts == [1, 2, 3, 4, 5]
    hotspots = [a for o in outcomes for a in o.alerts if a.kind.value == "hotspot"]
    assert [h.event for h in hotspots] == ["raised"] and "C7" in hotspots[0].explanation.en
    households = [a.facts["households"] for o in outcomes for a in o.alerts if a.kind.value == "incident"]
    assert households == [1, 2, 3, 4, 5]  # anonymous reports: each its own household
    again = cells.run(report("r0", texts[0]), offset=99)  # the same report delivered twice
    assert again.alerts == [] and again.state is None


def test_the_same_reporter_twice_is_one_household_and_names_are_not_kept() -> None:
    cells = Cells()
    for i, who in enumerate(["13800001111", "13800001111", "13900002222"]):
        raw = json.loads(report(f"p{i}", "3栋2单元楼道有电动车充电", minutes=i))
        cells.run(json.dumps({**raw, "reporter": who}).encode(), offset=i)
    last = cells.run(report("p9", "3栋2单元楼道电动车又在充电", minutes=9), offset=9).alerts[0]
    assert (last.facts["report_count"], last.facts["households"]) == (4, 3)
    assert "13800001111" not in json.dumps(cells.state)


def test_bad_reports_are_dead_letters_not_crashes() -> None:
    cells = Cells()
    for raw in (b"\x00\xff junk", b"{}", report("r1", "   "), b'{"incident_id": "x", "text": "a", "grid_cell": "!"}'):
        outcome = cells.run(raw)
        assert outcome.alerts == [] and outcome.dead_letter is not None
        assert outcome.dead_letter.value == raw and outcome.dead_letter.reason
    emoji = cells.run(report("r2", "😡😡😡"))  # nothing a grid worker could act on
    assert emoji.alerts == [] and emoji.dead_letter is not None and "no words" in emoji.dead_letter.reason
    with_photo = json.loads(report("r3", "😱🔥"))  # … unless a photo says it
    shown = cells.run(json.dumps({**with_photo, "photo_url": "https://img.example/1.jpg"}).encode())
    assert shown.alerts[0].facts["needs_review"] is True


def test_a_hotspot_state_from_before_loads_and_an_unreadable_one_starts_afresh() -> None:
    cells = Cells()
    cells.run(report("r1", "5栋的电梯又坏了，老人上不了楼"))
    old = WindowHotspotDetector(started=T0 - timedelta(weeks=6))
    old.update("C7", "facility", T0 - timedelta(weeks=3))
    cells.state["C7"]["hotspot"] = json.loads(json.dumps(old.to_dict()))  # as the sliding-window test stored it
    outcome = cells.run(report("r2", "3栋楼道堆满了纸箱", minutes=5), offset=1)
    assert outcome.dead_letter is None and cells.state["C7"]["hotspot"]["version"] == 2
    assert any(c["category"] == "facility" for c in cells.state["C7"]["hotspot"]["cells"])  # its counts kept
    cells.state["C7"]["hotspot"] = {"version": 99}
    outcome = cells.run(report("r3", "3栋楼道又堆了纸箱", minutes=6), offset=2)
    assert outcome.dead_letter is None and outcome.alerts and cells.state["C7"]["hotspot"]["version"] == 2


def test_a_flood_of_reports_in_a_brand_new_cell_still_raises_a_hotspot() -> None:
    cells = Cells()
    texts = [f"3栋{i}单元楼道有人给电动车充电，电线拉得到处都是" for i in range(1, 9)]
    outcomes = [cells.run(report(f"f{i}", text, minutes=i), offset=i) for i, text in enumerate(texts)]
    hotspots = [a for o in outcomes for a in o.alerts if a.kind.value == "hotspot"]
    assert [(h.event, h.facts["category"]) for h in hotspots] == [("raised", "ebike")]
    assert set(hotspots[0].facts) == {"category", "count", "baseline_per_week", "p_value"}
