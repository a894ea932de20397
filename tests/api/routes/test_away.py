"""Away mode through the API: a family member's setting is told to the household's grid worker, in the same
request; a grid worker's own setting tells nobody."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from alerts.models import Delivery, Recipient
from tests.api.conftest import World, expect

pytestmark = pytest.mark.kafka


def away_notices(world: World, home: str) -> list[tuple[str, str, dict]]:
    """(recipient role, recipient id, body) of every away notice about ``home``."""
    with world.store.transaction() as session:
        rows = session.execute(
            select(Recipient.role, Recipient.id, Delivery.payload)
            .join(Recipient, Delivery.recipient_id == Recipient.id)
            .where(Delivery.event_type == "household.away", Delivery.alert_id.is_(None))
        ).all()
    found = [(role, recipient, json.loads(payload)) for role, recipient, payload in rows]
    return [item for item in found if item[2]["data"]["household"]["id"] == home]


def test_a_family_setting_away_mode_records_the_grid_workers_notice(world: World) -> None:
    home, _ = world.fresh_home("C1", "CM1", family="family_a")
    until = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    body = expect(
        world.call("family", "PUT", f"/v1/households/{home}/away", json={"until": until.isoformat(), "note": "住院"}),
        200,
    )
    assert body["away_set_by"] == f"family:{world.key_ids['family']}"
    [(role, recipient, notice)] = away_notices(world, home)  # not the family, the supervisor or the operator
    assert (role, recipient) == ("grid_worker", world.recipients["grid_worker"])
    data = notice["data"]
    assert datetime.fromisoformat(data["away_until"]) == until
    assert (data["set_by"], data["note"], data["grid_cell"]) == (body["away_set_by"], "住院", "C1")
    assert "的家属设置了外出模式" in data["message"]["zh"] and "期间不提醒长时间未用水" in data["message"]["zh"]


@pytest.mark.parametrize("role", ["grid_worker", "operator"])
def test_staff_setting_away_mode_tell_nobody(world: World, role: str) -> None:
    home, _ = world.fresh_home("C1", "CM1", family="family_a")
    until = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    expect(world.call(role, "PUT", f"/v1/households/{home}/away", json={"until": until}), 200)
    assert away_notices(world, home) == []


def test_away_mode_refused_tells_nobody(world: World) -> None:
    home, _ = world.fresh_home("C1", "CM1", family="family_a")
    too_long = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    expect(world.call("family", "PUT", f"/v1/households/{home}/away", json={"until": too_long}), 422)
    assert away_notices(world, home) == []
