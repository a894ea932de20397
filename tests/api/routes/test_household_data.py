"""A household's erasure and export through the API (operators only): the export holds the household's data and
nothing of another; after DELETE the household is gone from every route, its readings are refused, and a second
DELETE answers the same record."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select

from alerts.audit import AuditEvent
from tests.api.conftest import ADMIN_TOKEN, World, bearer, expect


def audited(world: World, home: str) -> list[str]:
    """The audit trail's actions about ``home``, oldest first."""
    with world.store.transaction() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.household_id == home).order_by(AuditEvent.id))
        return [event.action for event in events]


def test_export_holds_the_household_and_nothing_of_another(world: World) -> None:
    home, meter = world.fresh_home("C1", "CM1")
    world.op("PATCH", f"/v1/households/{home}", 200, json={"address": "莲花路 7 号"})
    alert = world.raise_alert(meter)
    world.op("GET", "/v1/households", 200)  # a list read: on the trail with every household it returned
    for role in ("family", "grid_worker", "supervisor", "device"):
        assert world.call(role, "GET", f"/v1/households/{home}/export").status_code == 403
    response = world.call("operator", "GET", f"/v1/households/{home}/export")
    body = expect(response, 200)
    assert response.headers["content-disposition"] == f'attachment; filename="shouwang-{home}.json"'
    assert body["household"]["id"] == home and body["household"]["address"] == "莲花路 7 号"
    assert [m["meter_id"] for m in body["meters"]] == [meter]
    assert body["recipients"][0]["id"] == world.recipients["family_a"] and body["subscriptions"]
    (exported,) = body["alerts"]
    assert exported["id"] == alert and exported["history"][0]["event"] == "raised"
    told = {n["recipient_id"]: n for n in exported["notifications"]}
    assert told[world.recipients["grid_worker"]]["payload"]["data"]["household"]["address"] == "莲花路 7 号"
    assert told[world.recipients["family_a"]]["payload"]["data"]["view"] == "family"  # no address in a family's
    assert {"household.create", "household.update", "household.list"} <= {e["action"] for e in body["audit"]}
    text = json.dumps(body, ensure_ascii=False)
    for other in (world.home_a, world.home_b, world.meter_a, world.meter_b, "Home A", "Home B", "whsec_", "swk_"):
        assert other not in text  # another home's data, a secret or a token: never
    assert (
        expect(world.call("operator", "GET", "/v1/households/hh_unknown/export"), 404)["error"]["code"] == "not_found"
    )


def test_erasure_is_an_operators_and_idempotent(world: World) -> None:
    home, meter = world.fresh_home("C1", "CM1")
    world.raise_alert(meter)
    for role in ("family", "grid_worker", "supervisor", "device"):
        assert expect(world.call(role, "DELETE", f"/v1/households/{home}"), 403)["error"]["code"] == "forbidden"
    world.op("GET", f"/v1/households/{home}", 200)  # still there
    first = world.op("DELETE", f"/v1/households/{home}", 200)
    assert first["already_erased"] is False and first["worker_told"] is False  # the router tells it
    assert first["erased_by"].startswith("operator:") and first["counts"]["alerts"] == 1
    again = world.op("DELETE", f"/v1/households/{home}", 200)
    assert again == first | {"already_erased": True}
    assert audited(world, home).count("household.erase") == 1  # the repeat changed nothing

    assert expect(world.call("operator", "GET", f"/v1/households/{home}"), 404)["error"]["code"] == "not_found"
    assert home not in {h["id"] for h in world.op("GET", "/v1/households", 200)}
    reading = {"meter_id": meter, "ts": datetime.now(UTC).isoformat(), "register_l": 1.0}
    refused = expect(world.client.post("/v1/readings", json=[reading], headers=bearer(ADMIN_TOKEN)), 422)
    assert "household's data was erased" in refused["error"]["message"]
    shell = world.op("GET", f"/v1/households/{home}/export", 200)  # what is left: the shell and the record
    assert shell["household"]["name"] == "" and shell["erasure"]["erased_by"] == first["erased_by"]
    assert shell["alerts"][0]["explanation_en"] == "(personal details removed)"
    assert world.op("DELETE", "/v1/households/hh_unknown", 404) is not None
