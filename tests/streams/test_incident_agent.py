"""The incidents agent's loop without Faust: the real incident processing and emitter over stand-in
topics; a cell's state is stored only once its alerts are delivered."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from shouwang.events import decode_alert
from streams.emitter import Emitter
from streams.incident_agent import IncidentAgent
from tests.streams.kafka_fakes import FakeTopic, Message, events, sample, settle


class Rig:
    def __init__(self, *, stopping: bool = False) -> None:
        self.alerts, self.letters = FakeTopic("alerts"), FakeTopic("deadletter")
        self.cells: dict[str, dict[str, Any]] = {}
        self.given_up: list[BaseException] = []
        self.agent = IncidentAgent(
            cells=self.cells,
            emitter=Emitter(self.alerts.send, self.letters.send),
            resend=self.alerts.send,
            stopping=lambda: stopping,
            give_up=self.given_up.append,
        )


def report(report_id: str, text: str, cell: str = "C7", offset: int = 0) -> Message:
    value = {"incident_id": report_id, "text": text, "grid_cell": cell, "ts": "2026-11-02T09:00:00+00:00"}
    return Message("t.incidents", 0, offset, cell.encode(), json.dumps(value).encode())


def test_a_cells_state_is_stored_once_its_alerts_are_delivered() -> None:
    async def run() -> None:
        rig = Rig()
        rig.alerts.hold = True
        processed = sample("shouwang_worker_incidents_processed_total")
        agent = asyncio.ensure_future(rig.agent.run(events(report("r1", "5栋的电梯又坏了，老人上不了楼"))))
        await settle()
        assert [decode_alert(s.value).grid_cell for s in rig.alerts.sent if s.value] == ["C7"]
        assert rig.cells == {} and not agent.done()
        rig.alerts.deliveries[0].set_result(None)
        await asyncio.wait_for(agent, timeout=5)
        assert set(rig.cells) == {"C7"} and rig.cells["C7"]["merger"]["incidents"]
        assert sample("shouwang_worker_incidents_processed_total") == processed + 1

    asyncio.run(run())


def test_the_next_report_of_a_cell_is_merged_with_the_stored_state() -> None:
    rig = Rig()
    asyncio.run(rig.agent.run(events(report("r1", "5栋电梯坏了", offset=0), report("r2", "5栋的电梯又坏了", offset=1))))
    counts = [decode_alert(s.value).facts["report_count"] for s in rig.alerts.sent if s.value]
    assert counts[:2] == [1, 2]  # the second report found the first in the cell's state


def test_an_alert_given_up_at_a_stop_stores_nothing_and_stops_every_commit() -> None:
    rig = Rig(stopping=True)
    rig.alerts.refuse = [KafkaConnectionError("broker away")]
    with pytest.raises(KafkaConnectionError):
        asyncio.run(rig.agent.run(events(report("r1", "5栋的电梯又坏了，老人上不了楼"))))
    assert rig.cells == {} and [type(e) for e in rig.given_up] == [KafkaConnectionError]


def test_a_report_without_words_is_a_dead_letter_and_changes_no_cell() -> None:
    rig = Rig()
    asyncio.run(rig.agent.run(events(report("r1", "！！！😡"))))
    [letter] = rig.letters.sent
    assert letter.key == b"C7" and rig.alerts.sent == [] and rig.cells == {}


def _at(report_id: str, text: str, ts: str, offset: int) -> Message:
    value = {"incident_id": report_id, "text": text, "grid_cell": "C7", "ts": ts}
    return Message("t.incidents", 0, offset, b"C7", json.dumps(value).encode())


def test_hotspot_counts_survive_a_restart_and_the_hotspot_is_raised_once() -> None:
    """Reports of a burst on both sides of a restart: the new agent reads the cell's stored state (as
    the changelog restores it) and raises the hotspot once, in the same shape."""
    texts = [f"{b}栋楼道有人给电动车充电，电线从窗户吊下来" for b in range(1, 9)]
    before = [_at("w0", "5栋的电梯又坏了", "2026-10-05T09:00:00+00:00", 0)] + [
        _at(f"b{i}", texts[i], f"2026-11-02T09:0{i}:00+00:00", i + 1) for i in range(2)
    ]
    first = Rig()
    asyncio.run(first.agent.run(events(*before)))
    stored = json.loads(json.dumps(first.cells))
    assert stored["C7"]["hotspot"]["version"] == 2
    second = Rig()
    second.cells.update(stored)
    after = [_at(f"b{i}", texts[i], f"2026-11-02T10:0{i}:00+00:00", i + 1) for i in range(2, 8)]
    asyncio.run(second.agent.run(events(*after)))
    alerts = [decode_alert(s.value) for rig in (first, second) for s in rig.alerts.sent if s.value]
    hotspots = [a for a in alerts if a.kind.value == "hotspot"]
    assert [(h.event, h.facts["category"]) for h in hotspots] == [("raised", "ebike")]
    assert hotspots[0] in [decode_alert(s.value) for s in second.alerts.sent if s.value]
    assert hotspots[0].facts["count"] >= 3 and "C7" in hotspots[0].explanation.en
    counted = {c["category"]: sum(c["hours"].values()) for c in second.cells["C7"]["hotspot"]["cells"]}
    assert counted == {"facility": 1, "ebike": 8}
