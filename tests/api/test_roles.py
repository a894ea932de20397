"""Every route × every role: who gets 401, 403, 404 or a 2xx. A route added without a row here fails
``test_every_route_has_a_row``; a row whose expectation is wrong fails its case."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.routing import BaseRoute, Route

from tests.api.conftest import ROLES, World, app_of, household_body

pytestmark = pytest.mark.kafka

Target = tuple[str, dict[str, Any]]  # path, keyword arguments of the request (json=…)
UNAUTHENTICATED = {"none": 401, "invalid": 401, "revoked": 401}
KEYED = ("operator", "supervisor", "grid_worker", "family", "device")
READERS = ("operator", "supervisor", "grid_worker", "family")
STAFF = ("operator", "supervisor", "grid_worker")


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # the route's path template
    scope: str  # what the request targets: "-" (a collection), "own" or "other" (see fresh_home)
    target: Callable[[World], Target]
    expected: dict[str, int]  # role → status


def only(status: int, *roles: str, **overrides: int) -> dict[str, int]:
    """``status`` for these roles, 403 for the other keys, 401 without a valid key; then overrides."""
    return {**UNAUTHENTICATED, **{role: status if role in roles else 403 for role in KEYED}, **overrides}


def public(status: int = 200) -> dict[str, int]:
    return dict.fromkeys(ROLES, status)


def withdrawn_home(world: World, scope: str) -> str:
    """A new household whose consent an operator withdrew (a grant needs one)."""
    home = fresh_home(world, scope)
    body = {"by": "the elder", "evidence": "signed form"}
    world.op("POST", f"/v1/households/{home}/consent/withdraw", 200, json=body)
    return home


def in_scope(status: int, *roles: str) -> dict[str, int]:
    """For a resource out of the key's scope: 404 for those roles (never data, never 'forbidden')."""
    return only(status, *roles, **{role: 404 for role in roles if role != "operator"})


def fresh_home(world: World, scope: str) -> str:
    """A new household: "own" is in C1 / community CM1 with family A subscribed (in scope of every
    test key); "other" is in C2 / CM2 with family B subscribed (in scope of the operator only)."""
    cell, community, family = ("C1", "CM1", "family_a") if scope == "own" else ("C2", "CM2", "family_b")
    home = world.op("POST", "/v1/households", 201, json=household_body(f"Home {scope}", cell, community))["id"]
    world.op("POST", "/v1/subscriptions", 201, json={"recipient_id": world.recipients[family], "household_id": home})
    return str(home)


def home(scope: str) -> Callable[[World], str]:
    return lambda w: w.home_a if scope == "own" else w.home_b


def alert(scope: str) -> Callable[[World], str]:
    return lambda w: w.raise_alert(w.meter_a if scope == "own" else w.meter_b)


def fresh_recipient(world: World) -> str:
    body = world.op(
        "POST",
        "/v1/recipients",
        201,
        json={"name": "Spare", "role": "grid_worker", "webhook_url": world.recipients_url},
    )
    return str(body["id"])


def fresh_subscription(world: World) -> str:
    body = world.op(
        "POST", "/v1/subscriptions", 201, json={"recipient_id": world.recipients["operator"], "grid_cell": "C9"}
    )
    return str(body["id"])


def silence(world: World, scope: str) -> dict[str, Any]:
    """A silence of a new household of that scope, for two hours."""
    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    return {"household_id": fresh_home(world, scope), "reason": "maintenance: meter swap", "until": until}


def fresh_silence(world: World, scope: str) -> str:
    return str(world.op("POST", "/v1/silences", 201, json=silence(world, scope))["id"])


def reading(world: World) -> dict[str, Any]:
    return {"meter_id": world.meter_a, "ts": datetime.now(UTC).isoformat(), "register_l": 812.5}


def last_month() -> str:
    first = datetime.now(UTC).replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


def away() -> dict[str, Any]:
    return {"until": (datetime.now(UTC) + timedelta(days=3)).isoformat(), "note": "in hospital"}


ROWS: list[Row] = [
    # health and documentation: open to anyone
    Row("GET", "/healthz", "-", lambda w: ("/healthz", {}), public()),
    Row("GET", "/readyz", "-", lambda w: ("/readyz", {}), public()),
    Row("GET", "/openapi.json", "-", lambda w: ("/openapi.json", {}), public()),
    Row("GET", "/docs", "-", lambda w: ("/docs", {}), public()),
    Row("GET", "/docs/oauth2-redirect", "-", lambda w: ("/docs/oauth2-redirect", {}), public()),
    Row("GET", "/redoc", "-", lambda w: ("/redoc", {}), public()),
    Row("GET", "/metrics", "-", lambda w: ("/metrics", {}), only(200, "operator")),
    # the console: static pages with no data (the data comes from the API, with the user's key)
    Row("GET", "/console", "-", lambda w: ("/console", {}), public()),
    Row("GET", "/console/", "-", lambda w: ("/console/", {"follow_redirects": False}), public(308)),
    Row("GET", "/console/static/{name}", "-", lambda w: ("/console/static/console.js", {}), public()),
    Row("GET", "/console/report", "-", lambda w: ("/console/report", {}), public()),
    # one-tap action links: the signed link is the credential, whatever key comes with it; pages, not JSON
    # (tests/api/routes/test_actions.py tries genuine, expired, reused and changed links)
    Row("GET", "/a/{token}", "-", lambda w: ("/a/" + "x" * 35, {}), public(404)),
    Row("POST", "/a/{token}", "-", lambda w: ("/a/" + "x" * 35, {}), public(404)),
    # households
    Row(
        "POST",
        "/v1/households",
        "-",
        lambda w: ("/v1/households", {"json": household_body("New", "C1", "CM1")}),
        only(201, "operator"),
    ),
    Row("GET", "/v1/households", "-", lambda w: ("/v1/households", {}), only(200, *READERS)),
    *(
        Row(
            "GET",
            "/v1/households/{household_id}",
            scope,
            lambda w, s=scope: (f"/v1/households/{home(s)(w)}", {}),
            only(200, *READERS) if scope == "own" else in_scope(200, *READERS),
        )
        for scope in ("own", "other")
    ),
    *(
        Row(
            "PATCH",
            "/v1/households/{household_id}",
            scope,
            lambda w, s=scope: (f"/v1/households/{fresh_home(w, s)}", {"json": {"address": "1 Lianhua Rd"}}),
            only(200, "operator"),
        )
        for scope in ("own", "other")
    ),
    *(
        Row(
            "POST",
            "/v1/households/{household_id}/consent/withdraw",
            scope,
            lambda w, s=scope: (
                f"/v1/households/{fresh_home(w, s)}/consent/withdraw",
                {"json": {"by": "the elder", "evidence": "signed form"}},
            ),
            only(200, "operator"),  # only an operator records it, with evidence
        )
        for scope in ("own", "other")
    ),
    *(
        Row(
            "POST",
            "/v1/households/{household_id}/consent/grant",
            scope,
            lambda w, s=scope: (
                f"/v1/households/{withdrawn_home(w, s)}/consent/grant",
                {"json": {"by": "the elder", "evidence": "new form", "scope": "water-use alerts"}},
            ),
            only(200, "operator"),
        )
        for scope in ("own", "other")
    ),
    *(
        Row(
            "POST",
            "/v1/households/{household_id}/meters",
            scope,
            lambda w, s=scope: (
                f"/v1/households/{fresh_home(w, s)}/meters",
                {"json": {"meter_id": f"M-{uuid.uuid4().hex[:10]}"}},
            ),
            only(201, "operator"),
        )
        for scope in ("own", "other")
    ),
    *(
        Row(
            "PUT",
            "/v1/households/{household_id}/away",
            scope,
            lambda w, s=scope: (f"/v1/households/{fresh_home(w, s)}/away", {"json": away()}),
            only(200, *READERS) if scope == "own" else in_scope(200, *READERS),
        )
        for scope in ("own", "other")
    ),
    *(
        Row(
            "DELETE",
            "/v1/households/{household_id}/away",
            scope,
            lambda w, s=scope: (f"/v1/households/{fresh_home(w, s)}/away", {}),
            only(204, *READERS) if scope == "own" else in_scope(204, *READERS),
        )
        for scope in ("own", "other")
    ),
    # a household's erasure and export (a data subject's request): operators only, whatever the scope
    *(
        Row(
            "DELETE",
            "/v1/households/{household_id}",
            scope,
            lambda w, s=scope: (f"/v1/households/{fresh_home(w, s)}", {}),
            only(200, "operator"),
        )
        for scope in ("own", "other")
    ),
    *(
        Row(
            "GET",
            "/v1/households/{household_id}/export",
            scope,
            lambda w, s=scope: (f"/v1/households/{home(s)(w)}/export", {}),
            only(200, "operator"),
        )
        for scope in ("own", "other")
    ),
    # recipients, subscriptions, keys: operators only
    Row(
        "POST",
        "/v1/recipients",
        "-",
        lambda w: ("/v1/recipients", {"json": {"name": "New", "role": "family", "webhook_url": w.recipients_url}}),
        only(201, "operator"),
    ),
    Row(
        "GET",
        "/v1/recipients/{recipient_id}",
        "-",
        lambda w: (f"/v1/recipients/{w.recipients['family_a']}", {}),
        only(200, "operator"),
    ),
    Row(
        "POST",
        "/v1/recipients/{recipient_id}/rotate-secret",
        "-",
        lambda w: (f"/v1/recipients/{fresh_recipient(w)}/rotate-secret", {}),
        only(200, "operator"),
    ),
    Row(
        "POST",
        "/v1/recipients/{recipient_id}/ping",
        "-",
        lambda w: (f"/v1/recipients/{w.recipients['grid_worker']}/ping", {}),
        only(200, "operator"),
    ),
    Row(
        "POST",
        "/v1/subscriptions",
        "-",
        lambda w: ("/v1/subscriptions", {"json": {"recipient_id": w.recipients["operator"], "grid_cell": "C7"}}),
        only(201, "operator"),
    ),
    Row("GET", "/v1/subscriptions", "-", lambda w: ("/v1/subscriptions", {}), only(200, "operator")),
    Row(
        "DELETE",
        "/v1/subscriptions/{subscription_id}",
        "-",
        lambda w: (f"/v1/subscriptions/{fresh_subscription(w)}", {}),
        only(204, "operator"),
    ),
    Row(
        "POST",
        "/v1/keys",
        "-",
        lambda w: ("/v1/keys", {"json": {"name": "meter gateway", "role": "device", "meter_prefix": "SZ-"}}),
        only(201, "operator"),
    ),
    Row(
        "DELETE",
        "/v1/keys/{key_id}",
        "-",
        lambda w: (f"/v1/keys/{w.new_key('device', meter_prefix='M')[0]}", {}),
        only(204, "operator"),
    ),
    # alerts
    Row("GET", "/v1/alerts", "-", lambda w: ("/v1/alerts", {}), only(200, *READERS)),
    *(
        Row(
            "GET",
            "/v1/alerts/{alert_id}",
            scope,
            lambda w, s=scope: (f"/v1/alerts/{alert(s)(w)}", {}),
            only(200, *READERS) if scope == "own" else in_scope(200, *READERS),
        )
        for scope in ("own", "other")
    ),
    *(
        Row(
            "POST",
            "/v1/alerts/{alert_id}/ack",
            scope,
            lambda w, s=scope: (f"/v1/alerts/{alert(s)(w)}/ack", {}),
            only(200, *READERS) if scope == "own" else in_scope(200, *READERS),
        )
        for scope in ("own", "other")
    ),
    *(
        Row(
            "POST",
            "/v1/alerts/{alert_id}/resolve",
            scope,
            lambda w, s=scope: (f"/v1/alerts/{alert(s)(w)}/resolve", {"json": {"outcome": "resident_fine"}}),
            only(200, "operator", "supervisor", "grid_worker")
            if scope == "own"
            else in_scope(200, "operator", "supervisor", "grid_worker"),
        )
        for scope in ("own", "other")
    ),
    # silences: staff, within their scope (another cell's household is "unknown", its silences not found)
    *(
        Row(
            "POST",
            "/v1/silences",
            scope,
            lambda w, s=scope: ("/v1/silences", {"json": silence(w, s)}),
            only(201, *STAFF) if scope == "own" else only(201, *STAFF, supervisor=422, grid_worker=422),
        )
        for scope in ("own", "other")
    ),
    Row("GET", "/v1/silences", "-", lambda w: ("/v1/silences", {}), only(200, *STAFF)),
    *(
        Row(
            method,
            "/v1/silences/{silence_id}",
            scope,
            lambda w, s=scope: (f"/v1/silences/{fresh_silence(w, s)}", {}),
            only(200, *STAFF) if scope == "own" else in_scope(200, *STAFF),
        )
        for method in ("GET", "DELETE")
        for scope in ("own", "other")
    ),
    # ingest
    Row("POST", "/v1/readings", "-", lambda w: ("/v1/readings", {"json": reading(w)}), only(202, "operator", "device")),
    Row(
        "POST",
        "/v1/sms/replies",
        "-",  # no resident is asked on this number: the gateway's keys reach the route, which changes nothing
        lambda w: ("/v1/sms/replies", {"json": {"from": "+8613800000000", "text": "1"}}),
        only(404, "operator", "device"),
    ),
    # the audit trail: operators only
    Row("GET", "/v1/audit", "-", lambda w: ("/v1/audit", {}), only(200, "operator")),
    Row("GET", "/v1/concerns", "-", lambda w: ("/v1/concerns", {}), only(200, "operator", "supervisor", "grid_worker")),
    # the monthly report: staff only; another community is "not found" for those it is out of scope of
    *(
        Row(
            "GET",
            path,
            scope,
            lambda w, s=scope, p=path: (f"{p}?month={last_month()}&community={'CM1' if s == 'own' else 'CM2'}", {}),
            only(200, *STAFF) if scope == "own" else in_scope(200, *STAFF),
        )
        for path in ("/v1/reports/monthly", "/v1/reports/monthly.xlsx")
        for scope in ("own", "other")
    ),
    Row(
        "POST",
        "/v1/incidents",
        "-",
        lambda w: ("/v1/incidents", {"json": {"text": "water on the stairs", "grid_cell": "C1"}}),
        only(202, "operator", "device", "grid_worker", "supervisor"),
    ),
]

CASES = [
    pytest.param(row, role, id=f"{row.method} {row.path} [{row.scope}] as {role}") for row in ROWS for role in ROLES
]


def _walk(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        if isinstance(route, Route):
            yield from ((method, prefix + route.path) for method in route.methods or () if method != "HEAD")
        elif hasattr(route, "original_router"):  # FastAPI ≥ 0.16x keeps included routers as one entry
            yield from _walk(route.original_router.routes, prefix + route.include_context.prefix)
        else:
            raise AssertionError(f"unexpected route type {type(route).__name__}: teach _walk about it")


def app_routes(world: World) -> set[tuple[str, str]]:
    """Every (method, path) the app answers, documented or not."""
    app = app_of(world.client)
    routes = set(_walk(app.routes))
    documented = {(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item}
    assert documented <= routes, "the route walk missed documented routes: fix _walk"
    return routes


def test_every_route_has_a_row_and_every_row_a_route(world: World) -> None:
    rows = {(row.method, row.path) for row in ROWS}
    assert app_routes(world) - rows == set(), "routes without a row in ROWS: add them, with every role"
    assert rows - app_routes(world) == set(), "rows for routes the app does not have"
    for row in ROWS:
        assert set(row.expected) == set(ROLES), f"{row.method} {row.path}: a status for every role"


@pytest.mark.parametrize(("row", "role"), CASES)
def test_route_and_role(world: World, row: Row, role: str) -> None:
    path, kwargs = row.target(world)
    response = world.call(role, row.method, path, **kwargs)
    want = row.expected[role]
    assert response.status_code == want, f"{row.method} {path} as {role}: {response.status_code} {response.text[:300]}"
    if want >= 400 and not row.path.startswith("/a/"):  # the link pages answer in HTML
        body = response.json()
        assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
        if want == 401:
            assert response.headers.get("WWW-Authenticate") == "Bearer"
        if want == 404:  # out of scope looks exactly like missing: nothing about the resource leaks
            assert body["error"]["code"] == "not_found"
            assert "Home" not in response.text and world.meter_b not in response.text
