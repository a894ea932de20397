"""API fixtures: a real app (lifespan, SQLite store, aiokafka producer on the session broker) and a
world built through the API itself — households A (cell C1, community CM1) and B (cell C2, community
CM2), their meters, recipients with loopback webhooks, subscriptions, and a key for every role."""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from alerts.db import Store
from alerts.pipeline import RouteContext, router_config
from alerts.stages import default_pipeline
from api.app import create_app
from cli.broker import LocalBroker
from shouwang.events import AlertEvent, AlertKind, Explanation, Severity, alert_id_for
from shouwang.settings import Settings
from streams.topic_provisioning import provision_topics

ADMIN_TOKEN = "test-admin-token-not-a-secret-0123456789"
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
# Every role a request may come with; "none" sends no Authorization header at all.
ROLES = ("none", "invalid", "revoked", "operator", "supervisor", "grid_worker", "family", "device")


def api_settings(broker: LocalBroker, var_dir: Path, **overrides: Any) -> Settings:
    """Settings of a test API: its own SQLite store and topics, the session broker, loopback webhooks."""
    values: dict[str, Any] = {
        "var_dir": var_dir,
        "admin_token": ADMIN_TOKEN,
        "kafka_bootstrap": broker.bootstrap,
        "topic_prefix": f"t{uuid.uuid4().hex[:8]}.",
        "webhook_allow_hosts": "127.0.0.0/8",
        "readings_partitions": 2,
        "incidents_partitions": 1,
        "alerts_partitions": 1,
        "public_url": "https://shouwang.example",
        "api_docs": True,  # the suites check every documented route (off by default: tests/api/test_security.py)
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def running_api(settings: Settings, *, raise_server_exceptions: bool = True) -> Iterator[TestClient]:
    """The app with its lifespan running, once its Kafka producer is connected."""
    provision_topics(settings)
    with TestClient(create_app(settings), raise_server_exceptions=raise_server_exceptions) as client:
        deadline = time.monotonic() + 30
        while app_of(client).state.producer is None:
            assert time.monotonic() < deadline, "the API's Kafka producer did not connect"
            time.sleep(0.05)
        yield client


def app_of(client: httpx.Client) -> FastAPI:
    assert isinstance(client, TestClient), "only an in-process app has one"
    app = client.app
    assert isinstance(app, FastAPI)
    return app


def store_of(client: httpx.Client) -> Store:
    store: Store = app_of(client).state.store
    return store


def bearer(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def expect(response: Response, status: int) -> Any:
    """The JSON body, after checking the status (the body is in the message when it differs)."""
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:500]}"
    )
    return response.json() if response.content else None


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers 204 and remembers what it got."""

    def __init__(self) -> None:
        received: list[tuple[dict[str, str], bytes]] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def household_body(name: str, cell: str, community: str | None) -> dict[str, Any]:
    return {
        "name": name,
        "timezone": "Asia/Shanghai",
        "grid_cell": cell,
        "community": community,
        "consent": {
            "given_by": f"{name} (the elder)",
            "given_at": "2026-02-01T09:00:00+08:00",
            "scope": "water-use alerts to family and grid worker",
        },
    }


@dataclass
class World:
    client: httpx.Client  # a TestClient, or an httpx client of a running `shouwang api`
    settings: Settings
    tokens: dict[str, str | None]  # role (see ROLES) → bearer token
    key_ids: dict[str, str]
    home_a: str
    home_b: str
    meter_a: str
    meter_b: str
    recipients: dict[str, str]  # family_a, family_b, grid_worker, supervisor, operator → id
    secrets: dict[str, str]  # recipient id → webhook secret returned at creation
    recipients_url: str  # the loopback receiver every recipient's webhook points at
    extra_tokens: dict[str, str] = field(default_factory=dict)  # family_b
    seeded: list[str] = field(default_factory=list)  # alert ids raised so far
    store_handle: Store | None = None  # the store of a running `shouwang api` (else the app's own)

    @property
    def store(self) -> Store:
        return self.store_handle or store_of(self.client)

    def call(self, role: str, method: str, path: str, **kwargs: Any) -> Response:
        return self.client.request(method, path, headers=bearer(self.tokens[role]), **kwargs)

    def op(self, method: str, path: str, status: int, **kwargs: Any) -> Any:
        """As the operator, expecting ``status``."""
        return expect(self.call("operator", method, path, **kwargs), status)

    def new_key(self, role: str, **scope: Any) -> tuple[str, str]:
        body = self.op("POST", "/v1/keys", 201, json={"name": f"{role} {uuid.uuid4().hex[:6]}", "role": role, **scope})
        return body["id"], body["token"]

    def raise_alert(
        self,
        meter: str | None,
        *,
        kind: str = "no_usage",
        severity: str = "high",
        since: datetime | None = None,
        at: datetime | None = None,
        grid_cell: str | None = None,
        facts: dict[str, str | int] | None = None,
    ) -> str:
        """Route a raise through the router's real pipeline (there is no detector yet). Without a
        meter, the alert is about a grid cell (incidents, hotspots)."""
        since = since or T0 - timedelta(minutes=len(self.seeded) + 1)
        event = AlertEvent(
            alert_id=alert_id_for(meter or str(grid_cell), kind, since),
            event="raised",
            meter_id=meter,
            grid_cell=grid_cell,
            kind=AlertKind(kind),
            severity=Severity(severity),
            since=since,
            at=at or since + timedelta(hours=6),
            explanation=Explanation(zh="自 21:15 起无用水", en="no water use since 21:15"),
            facts=facts or {},
        )
        with self.store.transaction() as session:
            result = (
                default_pipeline()
                .run(RouteContext(session=session, event=event, now=event.at, config=router_config(self.settings)))
                .result
            )
        assert result != "duplicate", f"alert {event.alert_id} was raised before"
        self.seeded.append(event.alert_id)
        return event.alert_id

    def fresh_home(
        self, cell: str = "C1", community: str | None = "CM1", *, family: str | None = "family_a"
    ) -> tuple[str, str]:
        """A new household with a meter (and the family recipient subscribed): (household id, meter id)."""
        home = self.op("POST", "/v1/households", 201, json=household_body("Home", cell, community))["id"]
        meter = f"M-{uuid.uuid4().hex[:12]}"
        self.op("POST", f"/v1/households/{home}/meters", 201, json={"meter_id": meter})
        if family is not None:
            self.op(
                "POST", "/v1/subscriptions", 201, json={"recipient_id": self.recipients[family], "household_id": home}
            )
        return str(home), meter


def build_world(client: httpx.Client, settings: Settings, receiver_url: str) -> World:
    def op(method: str, path: str, status: int, **kwargs: Any) -> Any:
        return expect(client.request(method, path, headers=bearer(ADMIN_TOKEN), **kwargs), status)

    suffix = uuid.uuid4().hex[:6].upper()
    home_a = op("POST", "/v1/households", 201, json=household_body("Home A", "C1", "CM1"))["id"]
    home_b = op("POST", "/v1/households", 201, json=household_body("Home B", "C2", "CM2"))["id"]
    meter_a, meter_b = f"MA-{suffix}", f"MB-{suffix}"
    op("POST", f"/v1/households/{home_a}/meters", 201, json={"meter_id": meter_a})
    op("POST", f"/v1/households/{home_b}/meters", 201, json={"meter_id": meter_b})
    recipients: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for name, role in (
        ("family_a", "family"),
        ("family_b", "family"),
        ("grid_worker", "grid_worker"),
        ("supervisor", "supervisor"),
        ("operator", "operator"),
    ):
        body = op("POST", "/v1/recipients", 201, json={"name": name, "role": role, "webhook_url": receiver_url})
        recipients[name] = body["id"]
        secrets[body["id"]] = body["webhook_secret"]
    for recipient, scope in (
        ("family_a", {"household_id": home_a}),
        ("family_b", {"household_id": home_b}),
        ("grid_worker", {"grid_cell": "C1"}),
        ("supervisor", {"community": "CM1"}),
        ("operator", {}),
    ):
        op("POST", "/v1/subscriptions", 201, json={"recipient_id": recipients[recipient], **scope})
    key_ids: dict[str, str] = {}
    tokens: dict[str, str | None] = {
        "none": None,
        "invalid": "swk_key_0123456789abcdef_" + "x" * 43,
        "operator": ADMIN_TOKEN,
    }
    for role, scope in (
        ("supervisor", {"community": "CM1"}),
        ("grid_worker", {"grid_cells": ["C1"]}),
        ("family", {"recipient_id": recipients["family_a"]}),
        ("device", {"meter_prefix": "M"}),  # the world's meters: MA-…, MB-…
        ("revoked", {"recipient_id": recipients["family_a"]}),
        ("family_b", {"recipient_id": recipients["family_b"]}),
    ):
        body = op(
            "POST",
            "/v1/keys",
            201,
            json={"name": f"{role} key", "role": "family" if role in {"revoked", "family_b"} else role, **scope},
        )
        key_ids[role], tokens[role] = body["id"], body["token"]
    op("DELETE", f"/v1/keys/{key_ids['revoked']}", 204)
    extra = {"family_b": tokens.pop("family_b") or ""}
    return World(
        client=client,
        settings=settings,
        tokens=tokens,
        key_ids=key_ids,
        home_a=home_a,
        home_b=home_b,
        meter_a=meter_a,
        meter_b=meter_b,
        recipients=recipients,
        secrets=secrets,
        recipients_url=receiver_url,
        extra_tokens=extra,
    )


@pytest.fixture(scope="module")
def world(kafka_broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[World]:
    """One app and one world per test module (tests that change shared state make their own things)."""
    settings = api_settings(kafka_broker, tmp_path_factory.mktemp("api"))
    with running_api(settings) as client:
        yield build_world(client, settings, receiver.url)
