"""Alerts through the API: acknowledge and resolve, notification history, cursor pagination, filters."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from alerts.outbox import OutboxConfig, OutboxDispatcher
from alerts.secret_box import secret_box
from alerts.webhooks import EndpointLimiter, make_client
from tests.api.conftest import T0, Receiver, World, bearer, expect

pytestmark = pytest.mark.kafka


def dispatch_once(world: World) -> int:
    """One pass of the router's outbox dispatcher over the app's store (webhooks go to the receiver)."""

    async def run() -> int:
        client = make_client(allow=world.settings.webhook_allowlist, timeout_s=2.0)
        dispatcher = OutboxDispatcher(
            world.store,
            OutboxConfig(schedule=(60.0,), lease=timedelta(seconds=30), timeout_s=2.0),
            client=client,
            limiter=EndpointLimiter(2),
            rng=random.Random(7),
            box=secret_box(world.settings),
        )
        try:
            return await dispatcher.run_once()
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_ack_then_resolve_and_the_conflicts(world: World) -> None:
    alert_id = world.raise_alert(world.meter_a)
    acked = world.op("POST", f"/v1/alerts/{alert_id}/ack", 200)
    assert acked["status"] == "acknowledged" and acked["acknowledged_at"] and acked["resolved_at"] is None
    assert "operator" in acked["acknowledged_by"]
    again = expect(world.call("grid_worker", "POST", f"/v1/alerts/{alert_id}/ack"), 200)  # a second tap changes nothing
    assert (again["acknowledged_at"], again["acknowledged_by"]) == (acked["acknowledged_at"], acked["acknowledged_by"])
    for body in ({}, {"outcome": "condition_cleared"}, {"outcome": "fine"}):  # condition_cleared is the detector's
        assert world.op("POST", f"/v1/alerts/{alert_id}/resolve", 422, json=body)["error"]["code"] == "invalid_request"
    resolved = expect(
        world.call(
            "grid_worker",
            "POST",
            f"/v1/alerts/{alert_id}/resolve",
            json={"outcome": "resident_fine", "note": "she was at her daughter's"},
        ),
        200,
    )
    assert (resolved["status"], resolved["outcome"], resolved["resolution_note"]) == (
        "resolved",
        "resident_fine",
        "she was at her daughter's",
    )
    assert "grid_worker" in resolved["resolved_by"] and resolved["acknowledged_by"] == acked["acknowledged_by"]
    for path, body in (("resolve", {"outcome": "false_alarm"}), ("ack", None)):
        refused = world.op("POST", f"/v1/alerts/{alert_id}/{path}", 409, json=body)
        assert refused["error"]["code"] == "conflict" and "already resolved" in refused["error"]["message"]
    shown = world.op("GET", f"/v1/alerts/{alert_id}", 200)
    assert (shown["status"], shown["outcome"]) == ("resolved", "resident_fine")


def test_resolving_without_ack_records_both(world: World) -> None:
    alert_id = world.raise_alert(world.meter_a)
    resolved = world.op("POST", f"/v1/alerts/{alert_id}/resolve", 200, json={"outcome": "emergency"})
    assert resolved["status"] == "resolved" and resolved["acknowledged_at"] == resolved["resolved_at"]


def test_unknown_alert_is_404(world: World) -> None:
    for method, path in (("GET", ""), ("POST", "/ack")):
        assert world.op(method, f"/v1/alerts/al_000000000000000000000000{path}", 404)["error"]["code"] == "not_found"


def test_detail_shows_notification_history(world: World, receiver: Receiver) -> None:
    since = datetime.now(UTC) - timedelta(hours=7)
    alert_id = world.raise_alert(world.meter_a, since=since, at=since + timedelta(hours=6))
    pending = world.op("GET", f"/v1/alerts/{alert_id}", 200)["notifications"]
    told = {world.recipients["family_a"], world.recipients["grid_worker"]}
    assert {n["recipient_id"] for n in pending} == told
    assert {(n["event_type"], n["status"], n["attempts"], n["tier"]) for n in pending} == {
        ("alert.raised", "pending", 0, 0)
    }
    assert all(n["history"] == [] and n["id"].startswith("msg_") for n in pending)

    while dispatch_once(world):
        pass
    sent = world.op("GET", f"/v1/alerts/{alert_id}", 200)["notifications"]
    for notification in sent:
        assert (notification["status"], notification["attempts"]) == ("delivered", 1), notification
        [attempt] = notification["history"]
        assert (attempt["outcome"], attempt["status_code"], attempt["error"]) == ("delivered", 204, None)
    assert {headers["webhook-id"] for headers, _ in receiver.received} >= {n["id"] for n in sent}

    # the resolution goes to everyone told, and shows up in the history too
    world.op("POST", f"/v1/alerts/{alert_id}/resolve", 200, json={"outcome": "false_alarm"})
    after = world.op("GET", f"/v1/alerts/{alert_id}", 200)["notifications"]
    resolved = [n for n in after if n["event_type"] == "alert.resolved"]
    assert {n["recipient_id"] for n in resolved} == told
    # a family sees what was sent to it, not what was sent to staff
    family_view = expect(world.call("family", "GET", f"/v1/alerts/{alert_id}"), 200)["notifications"]
    assert {n["recipient_id"] for n in family_view} == {world.recipients["family_a"]}
    assert {n["event_type"] for n in family_view} == {"alert.raised", "alert.resolved"}


def page_through(world: World, role: str, params: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        page = expect(world.call(role, "GET", "/v1/alerts", params=query), 200)
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert page["items"], "a cursor after an empty page"
    raise AssertionError("pagination did not end")


def test_cursor_pagination_returns_every_alert_exactly_once(world: World) -> None:
    home, meter = world.fresh_home("C1", "CM1")
    at = T0 + timedelta(days=3)
    raised = set()
    for i in range(17):  # 7 share one raise time (ties are broken by id), the rest are spread out
        since = T0 + timedelta(minutes=i)
        raised.add(world.raise_alert(meter, since=since, at=at if i < 7 else at + timedelta(minutes=i)))
    for limit in (1, 3, 5, 17, 200):
        items = page_through(world, "operator", {"household_id": home}, limit)
        ids = [item["id"] for item in items]
        assert len(ids) == len(set(ids)) == 17 and set(ids) == raised, f"limit {limit}"
        keys = [(item["raised_at"], item["id"]) for item in items]
        assert keys == sorted(keys, reverse=True), "newest first, then by id"
    # scoped keys paginate within their scope
    assert {item["id"] for item in page_through(world, "family", {"household_id": home}, 4)} == raised
    assert page_through(world, "grid_worker", {"household_id": world.home_b}, 4) == []


def test_filters(world: World) -> None:
    home, meter = world.fresh_home("C3", "CM3")
    base = T0 + timedelta(days=10)
    no_usage = world.raise_alert(meter, kind="no_usage", since=base, at=base + timedelta(hours=1))
    spike = world.raise_alert(meter, kind="spike", since=base, at=base + timedelta(hours=2))
    offline = world.raise_alert(meter, kind="meter_offline", severity="low", since=base, at=base + timedelta(hours=3))
    world.op("POST", f"/v1/alerts/{spike}/ack", 200)
    world.op("POST", f"/v1/alerts/{offline}/resolve", 200, json={"outcome": "false_alarm"})

    def ids(**params: str) -> set[str]:
        page = world.op("GET", "/v1/alerts", 200, params={"household_id": home, "limit": 200, **params})
        return {item["id"] for item in page["items"]}

    assert ids() == {no_usage, spike, offline}
    assert ids(status="raised") == {no_usage}
    assert ids(status="acknowledged") == {spike}
    assert ids(status="resolved") == {offline}
    assert ids(status="open") == {no_usage, spike}
    assert ids(kind="spike") == {spike} and ids(kind="hotspot") == set()
    assert ids(since=(base + timedelta(hours=2)).isoformat()) == {spike, offline}
    shanghai = timezone(timedelta(hours=8))  # the same instant written with another offset
    assert ids(since=(base + timedelta(hours=2)).astimezone(shanghai).isoformat()) == {spike, offline}
    assert ids(grid_cell="C3") == {no_usage, spike, offline} and ids(grid_cell="C1") == set()
    assert ids(status="open", kind="no_usage", since=base.isoformat()) == {no_usage}
    everything = world.op("GET", "/v1/alerts", 200, params={"limit": 200, "grid_cell": "C3"})["items"]
    assert {item["household_id"] for item in everything} == {home}
    other = world.client.get(
        "/v1/alerts", params={"household_id": home}, headers=bearer(world.extra_tokens["family_b"])
    )
    assert expect(other, 200)["items"] == []
