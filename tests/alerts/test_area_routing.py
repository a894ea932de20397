"""An area hotspot (reports rising over neighbouring cells, streams/incident_areas.py) is told to the grid
workers of every cell of the area, not only the centre's; a cell's own hotspot stays with its cell. Real
store, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from alerts.db import Store
from alerts.pipeline import RouterConfig
from shouwang.events import AlertEvent, AlertKind, Explanation, Severity, alert_id_for
from tests.alerts.conftest import T0, build_world
from tests.alerts.test_pipeline import route, told


def hotspot(key: str, centre: str, cells: str | None) -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id_for(key, AlertKind.HOTSPOT, T0),
        event="raised",
        grid_cell=centre,
        kind=AlertKind.HOTSPOT,
        severity=Severity.MEDIUM,
        since=T0,
        at=T0 + timedelta(hours=1),
        explanation=Explanation(zh="电动车问题在相邻网格增多", en="e-bike reports rising in neighbouring cells"),
        facts={"category": "ebike", "count": 9} | ({"cells": cells} if cells else {}),
    )


def test_an_area_hotspot_reaches_the_grid_workers_of_each_of_its_cells(store: Store, config: RouterConfig) -> None:
    world = build_world(store)  # grid workers of C1 and of C2, a supervisor of the community, an operator
    area = hotspot("area:C1:ebike", "C1", "C1,C2,C9")
    assert route(store, config, area, T0 + timedelta(hours=1)) == "notified"
    assert {world.grid_worker.id, world.other_cell_worker.id} <= set(told(store, area.alert_id))
    assert not {world.family_a.id, world.family_b.id} & set(told(store, area.alert_id)), "no family hears of an area"

    cell = hotspot("cell:C1:ebike", "C1", None)
    assert route(store, config, cell, T0 + timedelta(hours=1)) == "notified"
    told_cell = set(told(store, cell.alert_id))
    assert world.grid_worker.id in told_cell and world.other_cell_worker.id not in told_cell
