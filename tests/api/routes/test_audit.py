"""The audit trail through the API (alerts/audit.py, api/routes/audit.py), on SQLite and on PostgreSQL: a
write is one event naming its actor, role and object, committed with the write or not at all; reads of a
household, an alert and its deliveries are recorded (through a one-tap link too, as the link's recipient);
only operators read the trail, with filters; the database refuses to change or delete an event.

Every request carries an X-Request-ID of its own, so each test finds exactly its request's events. No Kafka:
nothing here produces."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from alerts.action_links import ActionLinkSigner
from alerts.audit import AuditEvent, as_dict
from alerts.db import Store
from alerts.models import Delivery, Household, Recipient
from api.app import create_app
from tests.api.conftest import ADMIN_TOKEN, bearer, expect, household_body
from tests.api.test_console import console_settings, seed_alert
from tests.pg_fixtures import fresh_database

AT = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


@dataclass
class Audited:
    client: TestClient
    store: Store
    backend: str
    tokens: dict[str, str]  # operator, family, grid_worker
    key_ids: dict[str, str]
    home_a: str  # cell C1, followed by the family and the grid worker
    home_b: str  # cell C2, nobody's but the operator's
    alert_id: str  # about home A, told to the family and the grid worker
    deliveries: dict[str, str]  # recipient role → delivery id of the alert

    def call(self, role: str, method: str, path: str, **kwargs: Any) -> tuple[Response, list[dict[str, Any]]]:
        """The response, and the audit events of this request (found by its request id)."""
        request_id = f"test-{uuid.uuid4().hex}"
        headers = {**bearer(self.tokens.get(role)), "X-Request-ID": request_id}
        response = self.client.request(method, path, headers=headers, **kwargs)
        assert response.headers["X-Request-ID"] == request_id
        return response, self.events(request_id)

    def events(self, request_id: str) -> list[dict[str, Any]]:
        with self.store.transaction() as session:
            rows = session.scalars(select(AuditEvent).where(AuditEvent.request_id == request_id))
            return [as_dict(row) for row in rows]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def audited(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audited]:
    postgresql = request.param == "postgresql"
    with fresh_database(request.getfixturevalue("postgres_url")) if postgresql else nullcontext(None) as url:
        settings = console_settings(
            tmp_path_factory.mktemp("audit"),
            database_url=url,
            webhook_allow_hosts="127.0.0.0/8",
            webhook_require_https=False,
        )
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            yield _build(client, request.param)


def _build(client: TestClient, backend: str) -> Audited:
    def op(method: str, path: str, status: int, **kwargs: Any) -> Any:
        return expect(client.request(method, path, headers=bearer(ADMIN_TOKEN), **kwargs), status)

    home_a = op("POST", "/v1/households", 201, json=household_body("王阿姨", "C1", "CM1"))["id"]
    home_b = op("POST", "/v1/households", 201, json=household_body("李伯伯", "C2", "CM2"))["id"]
    meter = f"M-{uuid.uuid4().hex[:10]}"
    op("POST", f"/v1/households/{home_a}/meters", 201, json={"meter_id": meter})
    tokens, key_ids = {"operator": ADMIN_TOKEN}, {"operator": "key_admin"}
    for role, scope in (("family", {"household_id": home_a}), ("grid_worker", {"grid_cell": "C1"})):
        body = {"name": role, "role": role, "webhook_url": "http://127.0.0.1:9/hook"}
        recipient = op("POST", "/v1/recipients", 201, json=body)["id"]
        op("POST", "/v1/subscriptions", 201, json={"recipient_id": recipient, **scope})
        key_scope = {"recipient_id": recipient} if role == "family" else {"grid_cells": ["C1"]}
        key = op("POST", "/v1/keys", 201, json={"name": f"{role} key", "role": role, **key_scope})
        tokens[role], key_ids[role] = key["token"], key["id"]
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    settings = client.app.state.settings  # type: ignore[attr-defined]
    alert_id = seed_alert(store, settings, meter, kind="no_usage", since=AT - timedelta(hours=18), at=AT)
    with store.transaction() as session:
        rows = session.execute(
            select(Recipient.role, Delivery.id)
            .join(Recipient, Delivery.recipient_id == Recipient.id)
            .where(Delivery.alert_id == alert_id)
        ).all()
    return Audited(client, store, backend, tokens, key_ids, home_a, home_b, alert_id, dict(rows))


def _one(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(events) == 1, events
    return events[0]


def test_a_write_is_one_event_naming_its_actor_role_and_object(audited: Audited) -> None:
    response, events = audited.call("operator", "POST", "/v1/households", json=household_body("赵奶奶", "C1", None))
    home = expect(response, 201)["id"]
    event = _one(events)
    assert (event["actor"], event["role"], event["action"]) == ("key_admin", "operator", "household.create")
    assert (event["object_type"], event["object_id"], event["household_id"]) == ("household", home, home)
    assert event["source"] == "testclient" and event["request_id"].startswith("test-")

    until = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    response, events = audited.call("family", "PUT", f"/v1/households/{audited.home_a}/away", json={"until": until})
    expect(response, 200)
    event = _one(events)
    assert (event["actor"], event["role"], event["action"]) == (audited.key_ids["family"], "family", "away.set")
    assert (event["object_id"], event["household_id"]) == (audited.home_a, audited.home_a)

    response, events = audited.call("operator", "PATCH", f"/v1/households/{home}", json={"address": "莲花路 1 号"})
    expect(response, 200)
    event = _one(events)
    assert event["action"] == "household.update" and event["detail"] == {"fields": ["address"]}
    assert "莲花路" not in str(event), "the trail names the fields changed, never their values"

    key_id = expect(
        audited.call("operator", "POST", "/v1/keys", json={"name": "gw", "role": "device", "meter_prefix": "M"})[0], 201
    )["id"]
    response, events = audited.call("operator", "DELETE", f"/v1/keys/{key_id}")
    expect(response, 204)
    assert {k: _one(events)[k] for k in ("actor", "action", "object_id")} == {
        "actor": "key_admin",
        "action": "key.revoke",
        "object_id": key_id,
    }


def test_a_refused_write_leaves_no_event(audited: Audited) -> None:
    home = expect(audited.call("operator", "POST", "/v1/households", json=household_body("H", "C1", None))[0], 201)[
        "id"
    ]
    withdraw = {"by": "the elder", "evidence": "signed form"}
    response, events = audited.call("operator", "POST", f"/v1/households/{home}/consent/withdraw", json=withdraw)
    assert _one(events)["action"] == "consent.withdraw"
    response, events = audited.call("operator", "POST", f"/v1/households/{home}/consent/withdraw", json=withdraw)
    assert response.status_code == 409 and events == []
    response, events = audited.call("operator", "PATCH", f"/v1/households/{home}", json={"address": "x", "name": None})
    assert response.status_code == 422 and events == []
    response, events = audited.call("family", "PUT", f"/v1/households/{audited.home_b}/away", json={"until": "x"})
    assert response.status_code == 422 and events == []


def test_the_event_commits_with_the_write_or_neither_does(audited: Audited) -> None:
    """With the audit table refusing new rows, a change fails whole: the household is left as it was."""
    home = expect(audited.call("operator", "POST", "/v1/households", json=household_body("H", "C1", None))[0], 201)[
        "id"
    ]
    create, drop = _refusing_trigger(audited.backend)
    with audited.store.engine.begin() as connection:
        for statement in create:
            connection.execute(text(statement))
    try:
        response, events = audited.call("operator", "PATCH", f"/v1/households/{home}", json={"address": "新地址"})
    finally:
        with audited.store.engine.begin() as connection:
            for statement in drop:
                connection.execute(text(statement))
    assert response.status_code == 500 and events == []
    with audited.store.transaction() as session:
        household = session.get(Household, home)
        assert household is not None and household.address is None


def _refusing_trigger(backend: str) -> tuple[list[str], list[str]]:
    if backend == "sqlite":
        return (
            ["CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'refused'); END"],
            ["DROP TRIGGER refuse_audit"],
        )
    return (
        [
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$",
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
        ],
        ["DROP TRIGGER refuse_audit ON audit_events", "DROP FUNCTION refuse_audit()"],
    )


def test_reads_of_households_alerts_and_deliveries_are_recorded(audited: Audited) -> None:
    response, events = audited.call("grid_worker", "GET", f"/v1/households/{audited.home_a}")
    expect(response, 200)
    event = _one(events)
    assert (event["actor"], event["role"], event["action"]) == (
        audited.key_ids["grid_worker"],
        "grid_worker",
        "household.read",
    )
    assert event["household_id"] == audited.home_a

    response, events = audited.call("operator", "GET", "/v1/households")
    listed = [h["id"] for h in expect(response, 200)]
    event = _one(events)
    assert event["action"] == "household.list" and event["households"] == sorted(listed)
    assert {audited.home_a, audited.home_b} <= set(event["households"])

    response, events = audited.call("family", "GET", "/v1/alerts", params={"household_id": audited.home_a})
    assert [a["id"] for a in expect(response, 200)["items"]] == [audited.alert_id]
    event = _one(events)
    assert event["action"] == "alert.list" and event["households"] == [audited.home_a]
    assert event["detail"] == {"filter": {"household_id": audited.home_a}, "ids": [audited.alert_id]}

    response, events = audited.call("family", "GET", f"/v1/alerts/{audited.alert_id}")
    expect(response, 200)
    event = _one(events)
    assert (event["action"], event["object_id"], event["household_id"]) == (
        "alert.read",
        audited.alert_id,
        audited.home_a,
    )
    assert event["detail"] == {"deliveries": [audited.deliveries["family"]]}  # what the family was shown

    response, events = audited.call("operator", "GET", f"/v1/alerts/{audited.alert_id}")
    assert set(_one(events)["detail"]["deliveries"]) == set(audited.deliveries.values())

    # A one-tap link's page shows the alert and the home: a read by the link's recipient.
    signer: ActionLinkSigner = audited.client.app.state.link_signer  # type: ignore[attr-defined]
    token = signer.token(delivery_id=audited.deliveries["grid_worker"], action="resolve")
    response, events = audited.call("none", "GET", f"/a/{token}")
    assert response.status_code == 200
    event = _one(events)
    with audited.store.transaction() as session:
        delivery = session.get(Delivery, audited.deliveries["grid_worker"])
        assert delivery is not None
        assert (event["actor"], event["role"]) == (delivery.recipient_id, "grid_worker")
    assert (event["action"], event["object_id"], event["detail"]["via"]) == (
        "alert.read",
        audited.alert_id,
        "action_link",
    )


def test_only_operators_read_the_trail_with_filters_and_pages(audited: Audited) -> None:
    for role in ("family", "grid_worker"):
        assert audited.call(role, "GET", "/v1/audit")[0].status_code == 403
    home = audited.home_b
    expect(audited.call("operator", "GET", f"/v1/households/{home}")[0], 200)
    expect(audited.call("operator", "GET", "/v1/households")[0], 200)

    response, events = audited.call("operator", "GET", "/v1/audit", params={"household_id": home})
    items = expect(response, 200)["items"]
    assert _one(events)["action"] == "audit.list"  # whoever looks at who looked is on the trail too
    assert {"household.create", "household.read", "household.list"} <= {i["action"] for i in items}
    assert all(i["household_id"] == home or home in (i["households"] or []) for i in items)
    assert [i["id"] for i in items] == sorted((i["id"] for i in items), reverse=True)  # newest first

    family = audited.key_ids["family"]
    items = expect(audited.call("operator", "GET", "/v1/audit", params={"actor": family})[0], 200)["items"]
    assert items and {i["actor"] for i in items} == {family}
    reads = {"action": "household.read", "since": (datetime.now(UTC) - timedelta(minutes=10)).isoformat()}
    items = expect(audited.call("operator", "GET", "/v1/audit", params=reads)[0], 200)["items"]
    assert items and {i["action"] for i in items} == {"household.read"}
    past = {"until": "2020-01-01T00:00:00+08:00"}
    assert expect(audited.call("operator", "GET", "/v1/audit", params=past)[0], 200)["items"] == []

    first = expect(audited.call("operator", "GET", "/v1/audit", params={"limit": 2})[0], 200)
    second = expect(
        audited.call("operator", "GET", "/v1/audit", params={"limit": 2, "cursor": first["next_cursor"]})[0], 200
    )
    assert len(first["items"]) == len(second["items"]) == 2
    assert max(i["id"] for i in second["items"]) < min(i["id"] for i in first["items"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"action": "household.peek"}, "unknown action"),
        ({"since": "2026-12-02T00:00:00+08:00", "until": "2026-12-01T00:00:00+08:00"}, "since must be before until"),
        ({"since": "2026-12-01T00:00:00"}, "since"),
        ({"cursor": "abc"}, "cursor"),
        ({"household_id": "hh x"}, "household_id"),
    ],
)
def test_a_bad_filter_is_a_422_that_says_which(audited: Audited, params: dict[str, str], message: str) -> None:
    response, _ = audited.call("operator", "GET", "/v1/audit", params=params)
    assert response.status_code == 422 and message in response.json()["error"]["message"], response.text


def test_the_database_refuses_to_change_or_delete_an_event(audited: Audited) -> None:
    expect(audited.call("operator", "GET", f"/v1/households/{audited.home_a}")[0], 200)
    statements = ["UPDATE audit_events SET actor = 'someone_else'", "DELETE FROM audit_events"]
    if audited.backend == "postgresql":
        statements.append("TRUNCATE audit_events")
    with audited.store.engine.connect() as connection:
        count = connection.execute(text("SELECT COUNT(*) FROM audit_events")).scalar_one()
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), audited.store.engine.begin() as connection:
            connection.execute(text(statement))
    with audited.store.engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM audit_events")).scalar_one() == count
        assert (
            connection.execute(text("SELECT COUNT(*) FROM audit_events WHERE actor = 'someone_else'")).scalar_one() == 0
        )


def test_a_malformed_request_id_is_replaced(audited: Audited) -> None:
    for given in ("short", "has spaces in it", "x" * 65, "<script>alert(1)</script>"):
        response = audited.client.get("/healthz", headers={"X-Request-ID": given})
        assert response.headers["X-Request-ID"] != given and len(response.headers["X-Request-ID"]) == 32
    response = audited.client.get("/healthz")
    assert len(response.headers["X-Request-ID"]) == 32


def test_a_households_export_and_erasure_are_recorded(audited: Audited) -> None:
    home = expect(audited.call("operator", "POST", "/v1/households", json=household_body("H", "C1", None))[0], 201)[
        "id"
    ]
    response, events = audited.call("operator", "GET", f"/v1/households/{home}/export")
    expect(response, 200)
    assert (_one(events)["action"], _one(events)["household_id"]) == ("household.export", home)
    response, events = audited.call("operator", "DELETE", f"/v1/households/{home}")
    expect(response, 200)
    assert (_one(events)["action"], _one(events)["object_id"]) == ("household.erase", home)
    response, events = audited.call("operator", "DELETE", f"/v1/households/{home}")  # changes nothing: no event
    assert expect(response, 200)["already_erased"] and events == []


def test_a_monthly_report_read_is_recorded_with_its_month_and_format(audited: Audited) -> None:
    month = (datetime.now(UTC).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    for path, form in (("/v1/reports/monthly", "json"), ("/v1/reports/monthly.xlsx", "xlsx")):
        response, events = audited.call("operator", "GET", path, params={"month": month, "community": "CM1"})
        assert response.status_code == 200, response.text[:200]
        event = _one(events)
        assert (event["action"], event["detail"]) == (
            "report.read",
            {"month": month, "community": "CM1", "format": form},
        )
    response, events = audited.call("operator", "GET", "/v1/reports/monthly", params={"month": "2999-01"})
    assert response.status_code == 422 and events == []  # refused: nothing was read


@pytest.mark.parametrize("audited", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_change_whose_commit_fails_is_never_answered_as_done(audited: Audited) -> None:
    """A deferred constraint trigger refuses the audit event at COMMIT, after the route returned: the client
    must hear a 500, not the 200 the route had prepared. (SQLite has no deferred triggers; a commit fails
    there only on an I/O error.)"""
    home = expect(audited.call("operator", "POST", "/v1/households", json=household_body("H", "C1", None))[0], 201)
    create = [
        "CREATE FUNCTION refuse_late() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'late'; END $$",
        "CREATE CONSTRAINT TRIGGER refuse_late AFTER INSERT ON audit_events DEFERRABLE INITIALLY DEFERRED "
        "FOR EACH ROW EXECUTE FUNCTION refuse_late()",
    ]
    with audited.store.engine.begin() as connection:
        for statement in create:
            connection.execute(text(statement))
    try:
        response, events = audited.call("operator", "PATCH", f"/v1/households/{home['id']}", json={"address": "新"})
    finally:
        with audited.store.engine.begin() as connection:
            connection.execute(text("DROP TRIGGER refuse_late ON audit_events"))
            connection.execute(text("DROP FUNCTION refuse_late()"))
    assert response.status_code == 500 and events == []
    with audited.store.transaction() as session:
        household = session.get(Household, home["id"])
        assert household is not None and household.address is None
