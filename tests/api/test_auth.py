"""What each key sees (scope), revocation, and secrets shown once (api/auth.py and its use)."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from alerts.models import ApiKey, Endpoint
from tests.api.conftest import ADMIN_TOKEN, Receiver, World, bearer, expect

pytestmark = pytest.mark.kafka


def ids(items: list[dict[str, object]]) -> set[object]:
    return {item["id"] for item in items}


def alert_ids(world: World, role: str, **params: str) -> set[object]:
    return ids(expect(world.call(role, "GET", "/v1/alerts", params={"limit": 200, **params}), 200)["items"])


def test_family_sees_its_household_and_its_alerts_only(world: World) -> None:
    own, other = world.raise_alert(world.meter_a, kind="spike"), world.raise_alert(world.meter_b, kind="spike")
    subscribed = {
        s["household_id"]
        for s in world.op("GET", "/v1/subscriptions", 200, params={"recipient_id": world.recipients["family_a"]})
    }
    households = expect(world.call("family", "GET", "/v1/households"), 200)
    assert ids(households) == subscribed and world.home_a in subscribed and world.home_b not in subscribed
    seen = alert_ids(world, "family")
    assert own in seen and other not in seen
    # even when asked for the other household by id or by filter
    assert alert_ids(world, "family", household_id=world.home_b) == set()
    expect(world.call("family", "GET", f"/v1/households/{world.home_b}"), 404)
    expect(world.call("family", "GET", f"/v1/alerts/{other}"), 404)
    # and the other family sees the mirror image
    other_family = world.client.get("/v1/alerts", headers=bearer(world.extra_tokens["family_b"]), params={"limit": 200})
    assert other in ids(expect(other_family, 200)["items"]) and own not in ids(other_family.json()["items"])


def test_family_acks_its_own_alert_but_not_another_households(world: World) -> None:
    own, other = world.raise_alert(world.meter_a), world.raise_alert(world.meter_b)
    refused = expect(world.call("family", "POST", f"/v1/alerts/{other}/ack"), 404)
    assert refused["error"]["code"] == "not_found"
    assert world.op("GET", f"/v1/alerts/{other}", 200)["status"] == "raised"
    acked = expect(world.call("family", "POST", f"/v1/alerts/{own}/ack"), 200)
    # "family has seen it": the grid worker's tier goes on (docs/ALERTS.md, acknowledgement by role)
    assert acked["status"] == "raised" and "family" in acked["family_seen_by"]
    # a family may not resolve (staff decide the outcome), not even its own alert
    expect(world.call("family", "POST", f"/v1/alerts/{own}/resolve", json={"outcome": "resident_fine"}), 403)


def test_grid_worker_sees_only_their_cells(world: World) -> None:
    home_c1, meter_c1 = world.fresh_home("C1", "CM9")
    home_c2, meter_c2 = world.fresh_home("C2", "CM1")
    in_c1, in_c2 = world.raise_alert(meter_c1), world.raise_alert(meter_c2)
    hotspot_c1 = world.raise_alert(None, kind="hotspot", severity="medium", grid_cell="C1")
    hotspot_c2 = world.raise_alert(None, kind="hotspot", severity="medium", grid_cell="C2")
    households = expect(world.call("grid_worker", "GET", "/v1/households"), 200)
    assert {h["grid_cell"] for h in households} == {"C1"}
    assert {home_c1, world.home_a} <= ids(households) and home_c2 not in ids(households)
    seen = alert_ids(world, "grid_worker")
    assert {in_c1, hotspot_c1} <= seen and not {in_c2, hotspot_c2} & seen
    expect(world.call("grid_worker", "GET", f"/v1/households/{home_c2}"), 404)
    expect(world.call("grid_worker", "GET", f"/v1/alerts/{hotspot_c2}"), 404)
    # the family of a C1 home never sees a cell-wide alert
    assert hotspot_c1 not in alert_ids(world, "family")


def test_supervisor_sees_their_community(world: World) -> None:
    home_in, meter_in = world.fresh_home("C5", "CM1")  # another cell, same community
    home_out, meter_out = world.fresh_home("C1", "CM2")  # a cell of the community, another community
    in_community, outside = world.raise_alert(meter_in), world.raise_alert(meter_out)
    households = expect(world.call("supervisor", "GET", "/v1/households"), 200)
    assert {h["community"] for h in households} == {"CM1"}
    assert {home_in, world.home_a} <= ids(households) and not {home_out, world.home_b} & ids(households)
    seen = alert_ids(world, "supervisor")
    assert in_community in seen and outside not in seen
    expect(world.call("supervisor", "GET", f"/v1/alerts/{outside}"), 404)
    resolved = expect(
        world.call(
            "supervisor",
            "POST",
            f"/v1/alerts/{in_community}/resolve",
            json={"outcome": "help_given", "note": "neighbour checked"},
        ),
        200,
    )
    assert resolved["outcome"] == "help_given"


def test_device_key_only_ingests(world: World) -> None:
    accepted = expect(
        world.call(
            "device",
            "POST",
            "/v1/readings",
            json={"meter_id": world.meter_a, "ts": "2026-03-02T08:00:00+08:00", "register_l": 1.5},
        ),
        202,
    )
    assert accepted == {"accepted": 1, "rejected": []}
    expect(world.call("device", "POST", "/v1/incidents", json={"text": "leak in the corridor", "grid_cell": "C1"}), 202)
    for method, path in (
        ("GET", "/v1/households"),
        ("GET", "/v1/alerts"),
        ("GET", f"/v1/households/{world.home_a}"),
        ("GET", "/v1/subscriptions"),
        ("GET", "/metrics"),
    ):
        assert expect(world.call("device", method, path), 403)["error"]["code"] == "forbidden"


def test_revoking_a_key_shuts_it_out_at_once(world: World) -> None:
    key_id, token = world.new_key("grid_worker", grid_cells=["C1"])
    expect(world.client.get("/v1/households", headers=bearer(token)), 200)
    world.op("DELETE", f"/v1/keys/{key_id}", 204)
    refused = world.client.get("/v1/households", headers=bearer(token))
    assert expect(refused, 401)["error"]["code"] == "unauthorized"
    assert token not in refused.text
    # revoking again is harmless; revoking a key that never existed is a 404; an operator cannot lock itself out
    world.op("DELETE", f"/v1/keys/{key_id}", 204)
    world.op("DELETE", "/v1/keys/key_0123456789abcdef", 404)
    assert world.op("DELETE", "/v1/keys/key_admin", 409)["error"]["code"] == "conflict"
    expect(world.client.get("/v1/households", headers=bearer(ADMIN_TOKEN)), 200)


def test_malformed_authorization_is_401(world: World) -> None:
    for headers in (
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Token {ADMIN_TOKEN}"},
        {"Authorization": "Bearer swk_key_admin_short"},
    ):
        assert expect(world.client.get("/v1/households", headers=headers), 401)["error"]["code"] == "unauthorized"


def test_a_family_key_needs_a_family_recipient_and_scoped_keys_need_a_scope(world: World) -> None:
    for body in (
        {"role": "family"},
        {"role": "family", "recipient_id": world.recipients["grid_worker"]},
        {"role": "grid_worker"},
        {"role": "supervisor"},
        {"role": "device", "recipient_id": "rcp_nobody"},
        {"role": "device"},  # a device key names its meters
        {"role": "grid_worker", "grid_cells": ["C1"], "meter_prefix": "M"},  # meters are for device keys only
    ):
        refused = world.op("POST", "/v1/keys", 422, json={"name": "k", **body})
        assert refused["error"]["code"] == "invalid_request", body


def test_key_token_is_shown_once_and_never_stored_or_logged(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    created = world.op("POST", "/v1/keys", 201, json={"name": "gateway", "role": "device", "meter_prefix": "M"})
    token = created["token"]
    assert token.startswith(f"swk_{created['id']}_")
    secret = token.removeprefix(f"swk_{created['id']}_")
    expect(
        world.client.post(
            "/v1/readings",
            headers=bearer(token),
            json={"meter_id": world.meter_a, "ts": "2026-03-02T09:00:00+08:00", "register_l": 2.0},
        ),
        202,
    )
    with world.store.transaction() as session:
        row = session.get(ApiKey, created["id"])
        assert row is not None
        stored = json.dumps([str(value) for value in vars(row).values()])
    assert secret not in stored and token not in stored
    assert secret not in caplog.text


def test_webhook_secret_is_returned_at_creation_only_and_signs_the_pings(world: World, receiver: Receiver) -> None:
    created = world.op(
        "POST", "/v1/recipients", 201, json={"name": "Niece", "role": "family", "webhook_url": world.recipients_url}
    )
    secret = created["webhook_secret"]
    assert secret.startswith("whsec_")
    shown = world.call("operator", "GET", f"/v1/recipients/{created['id']}")
    assert expect(shown, 200)["webhook_url"] == world.recipients_url
    assert "webhook_secret" not in shown.json() and secret not in shown.text
    assert secret not in world.call("operator", "GET", "/v1/subscriptions").text

    def ping_verifies_with(key: str) -> bool:
        before = len(receiver.received)
        assert world.op("POST", f"/v1/recipients/{created['id']}/ping", 200)["outcome"] == "delivered"
        headers, body = receiver.received[before]
        try:
            Webhook(key).verify(body, {k.lower(): v for k, v in headers.items()})
        except WebhookVerificationError:
            return False
        return json.loads(body)["type"] == "endpoint.ping"

    assert ping_verifies_with(secret)
    rotated = world.op("POST", f"/v1/recipients/{created['id']}/rotate-secret", 200)["webhook_secret"]
    assert rotated != secret and rotated.startswith("whsec_")
    # The old secret still signs during SHOUWANG_WEBHOOK_SECRET_OVERLAP_H (24 h by default).
    assert ping_verifies_with(rotated) and ping_verifies_with(secret)
    after = world.call("operator", "GET", f"/v1/recipients/{created['id']}")
    assert rotated not in after.text and secret not in after.text
    with world.store.transaction() as session:  # the store keeps them (they must sign), only sealed
        endpoints = list(session.scalars(select(Endpoint).where(Endpoint.recipient_id == created["id"])))
        assert [e.secret for e in endpoints] == [""]
        assert rotated not in str(endpoints[0].sealed_config) and secret not in str(endpoints[0].sealed_config)


def test_family_sees_water_alerts_only_and_supervisor_sees_community_incidents(world: World) -> None:
    offline = world.raise_alert(world.meter_a, kind="meter_offline", severity="low")
    spike = world.raise_alert(world.meter_a, kind="spike", severity="high")
    seen = alert_ids(world, "family")
    assert spike in seen and offline not in seen  # batteries and outages are staff matters
    expect(world.call("family", "GET", f"/v1/alerts/{offline}"), 404)
    incident_c1 = world.raise_alert(None, kind="incident", severity="high", grid_cell="C1")
    incident_c2 = world.raise_alert(None, kind="incident", severity="high", grid_cell="C77")  # no CM1 home there
    supervised = alert_ids(world, "supervisor")  # CM1's homes are in C1
    assert incident_c1 in supervised and incident_c2 not in supervised
