"""The area watch in the worker without Faust: the incidents agent passes on the reports of cells with
neighbours, the area agent raises one hotspot alert for the area, in the hotspot alert's shape; then the
same on the real broker, through a running worker."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detectors.incidents.area import RAISED_KEY, GridNeighbours, NeighboursError
from shouwang.deadletter import read_headers
from shouwang.events import AlertEvent, decode_alert, decode_area_count
from shouwang.settings import Settings
from shouwang.topics import Topics
from streams.app import create_app
from streams.area_agent import AreaAgent
from streams.emitter import Emitter
from streams.incident_agent import AREA_KEY, IncidentAgent
from streams.topic_provisioning import provision_topics
from tests.conftest import settings_env
from tests.kafka_helpers import consume, produce, start_shouwang, stop, wait_http
from tests.streams.kafka_fakes import FakeTopic, Message, events, settle

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REGISTRY = {"C1": ["C2"], "C2": ["C3"]}  # C1 – C2 – C3
TEXTS = ("{b}栋楼道里堆满了纸箱和旧家具，走不过去", "{b}单元楼道堆了很多废品，请清理")


def reports() -> list[tuple[str, bytes]]:
    """Four weeks of a stairwell-clutter report a week in each of C1, C2, C3, then 4 in each in 6 days: no
    cell unusual alone, the three together are (as in tests/detectors/incidents/test_area.py)."""
    rows = []
    for j, cell in enumerate(("C1", "C2", "C3")):
        times = [T0 + timedelta(weeks=i, hours=5 * j) for i in range(4)]
        times += [T0 + timedelta(weeks=4, hours=3 * j) + timedelta(days=1.5) * i for i in range(4)]
        for i, ts in enumerate(times):
            text = TEXTS[i % 2].format(b=i % 9 + 1)
            report = {"incident_id": f"{cell}-{i}", "text": text, "grid_cell": cell, "ts": ts.isoformat()}
            rows.append((ts, cell, json.dumps(report)))
    return [(cell, value.encode()) for _, cell, value in sorted(rows)]


class Rig:
    def __init__(self, registry: dict[str, list[str]] | None = REGISTRY) -> None:
        self.alerts, self.letters, self.areas = FakeTopic("alerts"), FakeTopic("deadletter"), FakeTopic("areas")
        self.cells: dict[str, dict[str, Any]] = {}
        self.area_states: dict[str, dict[str, Any]] = {}
        neighbours = GridNeighbours(registry) if registry else None
        emitter = Emitter(self.alerts.send, self.letters.send)
        common = {"emitter": emitter, "resend": self.alerts.send, "stopping": lambda: False, "give_up": print}
        self.incidents = IncidentAgent(cells=self.cells, neighbours=neighbours, send_area=self.areas.send, **common)
        self.area_agent = AreaAgent(neighbours=neighbours, states=self.area_states, **common) if neighbours else None

    def run(self, rows: list[tuple[str, bytes]]) -> list[AlertEvent]:
        messages = [Message("t.incidents", 0, i, cell.encode(), value) for i, (cell, value) in enumerate(rows)]
        asyncio.run(self.incidents.run(events(*messages)))
        if self.area_agent is not None:
            counts = [Message("t.areas", 0, i, s.key, s.value) for i, s in enumerate(self.areas.sent)]
            asyncio.run(self.area_agent.run(events(*counts)))
        return [decode_alert(s.value) for s in self.alerts.sent if s.value]


def test_reports_spread_over_neighbouring_cells_raise_one_area_hotspot() -> None:
    rig = Rig()
    alerts = rig.run(reports())
    assert len(rig.areas.sent) == 24 and {s.key for s in rig.areas.sent} == {AREA_KEY}
    first = decode_area_count(rig.areas.sent[0].value or b"")
    assert (first.grid_cell, first.category, first.hotspots) == ("C1", "clutter", ())
    [hotspot] = [a for a in alerts if a.kind.value == "hotspot"]  # none for a cell alone
    assert (hotspot.event, hotspot.grid_cell, hotspot.severity.value) == ("raised", "C2", "medium")
    assert set(hotspot.facts) == {"category", "count", "baseline_per_week", "p_value", "cells"}
    assert hotspot.facts["cells"] == "C1,C2,C3" and hotspot.facts["category"] == "clutter"
    assert "across neighbouring cells C1, C2 and C3" in hotspot.explanation.en
    assert set(rig.area_states) == {"C1", "C2", "C3", RAISED_KEY}
    assert rig.area_states[RAISED_KEY]["raised"][0]["centre"] == "C2"


def test_without_a_registry_no_report_is_passed_on() -> None:
    rig = Rig(registry=None)
    alerts = rig.run(reports()[:5])
    assert rig.areas.sent == [] and alerts and set(rig.cells) <= {"C1", "C2", "C3"}


def test_a_cells_state_waits_for_its_area_count() -> None:
    async def run() -> None:
        rig = Rig()
        rig.areas.hold = True
        cell, value = reports()[0]
        agent = asyncio.ensure_future(rig.incidents.run(events(Message("t.incidents", 0, 0, cell.encode(), value))))
        await settle()
        assert len(rig.areas.sent) == 1 and rig.cells == {} and not agent.done()
        rig.areas.deliveries[0].set_result(None)
        await asyncio.wait_for(agent, timeout=5)
        assert set(rig.cells) == {"C1"}

    asyncio.run(run())


def test_a_bad_area_count_is_a_dead_letter_and_changes_nothing() -> None:
    rig = Rig()
    assert rig.area_agent is not None
    bad = [
        b"not json",
        json.dumps({"incident_id": "r1", "grid_cell": "C1", "category": "spaceships", "ts": T0.isoformat()}).encode(),
    ]
    asyncio.run(rig.area_agent.run(events(*(Message("t.areas", 0, i, AREA_KEY, v) for i, v in enumerate(bad)))))
    reasons = [read_headers(s.headers or [])["shouwang.reason"] for s in rig.letters.sent]
    assert reasons[0].startswith("not JSON") and "unknown incident category 'spaceships'" in reasons[1]
    assert rig.area_states == {} and rig.alerts.sent == []


def test_a_bad_registry_stops_the_worker_in_one_line_naming_the_entry(tmp_path: Path) -> None:
    registry = tmp_path / "neighbours.json"
    registry.write_text('{"C1": ["C2"], "C2": ["C2"]}')
    with pytest.raises(NeighboursError) as caught:
        create_app(Settings(var_dir=tmp_path, grid_neighbours=registry))
    assert str(caught.value) == f"SHOUWANG_GRID_NEIGHBOURS: {registry}: cell 'C2' lists itself as its neighbour"
    with pytest.raises(NeighboursError, match=r"^SHOUWANG_GRID_NEIGHBOURS: .*missing.json: cannot read it \("):
        create_app(Settings(var_dir=tmp_path, grid_neighbours=tmp_path / "missing.json"))


def test_the_worker_raises_an_area_hotspot_on_the_real_broker(kafka_settings: Settings, tmp_path: Path) -> None:
    registry = tmp_path / "neighbours.json"
    registry.write_text(json.dumps(REGISTRY))
    settings = kafka_settings.model_copy(update={"grid_neighbours": registry})
    provision_topics(settings)
    topics = Topics.from_settings(settings)
    log = tmp_path / "worker.log"
    worker = start_shouwang(["worker"], settings_env(settings), log)
    try:
        wait_http(f"http://127.0.0.1:{settings.worker_web_port}/metrics", process=worker, log=log)
        produce(settings.bootstrap_servers, topics.incidents, [(cell.encode(), value) for cell, value in reports()])
        records = consume(
            settings.bootstrap_servers,
            topics.alerts,
            until=lambda rs: any(decode_alert(r.value).kind.value == "hotspot" for r in rs),
            timeout=60,
        )
        assert worker.poll() is None
    finally:
        code = stop(worker, signal.SIGTERM)
    assert code == 0, log.read_text(errors="replace")[-3000:]
    [hotspot] = [a for a in map(decode_alert, (r.value for r in records)) if a.kind.value == "hotspot"]
    assert (hotspot.grid_cell, hotspot.facts["cells"], hotspot.facts["category"]) == ("C2", "C1,C2,C3", "clutter")
    assert "area watch: 3 grid cells with neighbours, 3 areas" in log.read_text(errors="replace")
