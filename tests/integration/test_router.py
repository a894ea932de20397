"""The alert router as a process, against the real broker, real HTTP receivers on loopback and
a real SQLite store: routing, dedup, away mode, escalation, all-clear, retries, crash recovery."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from alerts import admin
from alerts.db import Store
from alerts.lifecycle import acknowledge
from alerts.models import Alert, Delivery
from alerts.secret_box import secret_box
from cli.broker import free_port
from shouwang.deadletter import read_headers
from shouwang.events import AlertEvent, AlertKind, Explanation, Severity, alert_id_for, encode
from shouwang.settings import Settings
from shouwang.topics import Topics
from streams.topic_provisioning import provision_topics
from tests.alerts.webhooks.receiver import Receiver
from tests.conftest import settings_env
from tests.kafka_helpers import consume, produce, start_shouwang, stop, until, wait_http

pytestmark = pytest.mark.kafka
SINCE = datetime(2026, 3, 1, 13, 15, tzinfo=UTC)


def alert_event(meter: str, kind: str, severity: str, transition: str = "raised") -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id_for(meter, kind, SINCE),
        event=transition,  # type: ignore[arg-type]
        meter_id=meter,
        kind=AlertKind(kind),
        severity=Severity(severity),
        since=SINCE,
        at=SINCE + timedelta(hours=7),
        explanation=Explanation(
            zh="自 21:15 起无用水，平时 07:40 前会用水", en="no water since 21:15; usually first use by 07:40"
        ),
    )


@pytest.fixture
def router_settings(kafka_settings: Settings, tmp_path: Path) -> Settings:
    provision_topics(kafka_settings)
    return kafka_settings.model_copy(
        update={
            "database_url": f"sqlite:///{tmp_path / 'router.db'}",
            "router_metrics_port": free_port(),
            "webhook_allow_hosts": "127.0.0.0/8",
            "webhook_retry_schedule": "1s,1s,1s,1s,1s,1s,1s,1s",
            "webhook_lease_s": 2.0,
            "escalation": json.dumps({"critical": [["family+grid_worker", "3s"], ["supervisor"]]}),
        }
    )


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(Receiver())
            for name in ("family_a", "family_b", "family_c", "grid_worker", "supervisor")
        }


def enrol(store: Store, urls: dict[str, str], settings: Settings) -> dict[str, str]:
    """Homes A, B and C (meters MA, MB, MC) in cell C1; B is away, C withdrew consent.
    Returns each person's signing secret."""
    secrets = {}
    now = datetime.now(UTC)
    with store.transaction() as session:
        homes = {}
        for key, meter in (("a", "MA"), ("b", "MB"), ("c", "MC")):
            homes[key] = admin.create_household(
                session,
                name=f"Home {key.upper()}",
                timezone="Asia/Shanghai",
                grid_cell="C1",
                consent_given_by="the elder",
                consent_given_at=now - timedelta(days=1),
                consent_scope="alerts",
            )
            admin.add_meter(session, homes[key], meter_id=meter)
        for name, url in urls.items():
            role = "family" if name.startswith("family") else name
            person, secret = admin.create_recipient(
                session, name=name, role=role, webhook_url=url, allow=["127.0.0.0/8"], box=secret_box(settings)
            )
            secrets[name] = secret or ""
            if role == "family":
                admin.subscribe(session, person, household_id=homes[name[-1]].id)
            elif role == "grid_worker":
                admin.subscribe(session, person, grid_cell="C1")
            else:
                admin.subscribe(session, person)
        admin.set_away(homes["b"], until=now + timedelta(days=2), note="in hospital", now=now)
        admin.withdraw_consent(homes["c"], by="the elder", now=now)
    return secrets


def bodies(receiver: Receiver, secret: str) -> list[dict]:
    return [receiver.verify_with(secret, request) for request in receiver.requests]


def test_router_routes_dedups_escalates_and_clears(
    router_settings: Settings, receivers: dict[str, Receiver], tmp_path: Path
) -> None:
    store = Store(str(router_settings.database_url))
    secrets = enrol(store, {name: r.url for name, r in receivers.items()}, router_settings)
    topic = Topics.from_settings(router_settings).alerts
    router = start_shouwang(["router"], settings_env(router_settings), tmp_path / "router.log")
    try:
        wait_http(f"http://127.0.0.1:{router_settings.router_metrics_port}/metrics")
        silence_a = alert_event("MA", "no_usage", "critical")
        silence_b = alert_event("MB", "no_usage", "critical")  # home B is away: recorded, not told
        burst_b = alert_event("MB", "spike", "critical")
        produce(
            router_settings.bootstrap_servers,
            topic,
            [
                (b"MA", encode(silence_a)),
                (b"MA", encode(silence_a)),  # the same event twice
                (b"MB", encode(silence_b)),
                (b"MB", encode(burst_b)),
                (b"MB", b"not an alert"),
                (b"MC", encode(alert_event("MC", "spike", "critical"))),
            ],
        )  # C withdrew consent: nobody is told
        receivers["family_b"].wait_for(1)
        with store.transaction() as session:  # the grid worker acknowledges B's burst at once
            burst = session.get(Alert, burst_b.alert_id)
            assert burst is not None
            acknowledge(session, burst, by="grid worker", now=datetime.now(UTC))
        receivers["supervisor"].wait_for(1, timeout_s=30)  # A's silence escalates after 3 s
        produce(
            router_settings.bootstrap_servers,
            topic,
            [(b"MA", encode(alert_event("MA", "no_usage", "critical", "resolved")))],
        )
        receivers["family_a"].wait_for(2, timeout_s=30)
        time.sleep(4)  # long enough for a wrong escalation of B's acknowledged burst to show up
        metrics = wait_http(f"http://127.0.0.1:{router_settings.router_metrics_port}/metrics").decode()
        assert router.poll() is None
    finally:
        code = stop(router)
    assert code == 0, (tmp_path / "router.log").read_text()[-3000:]

    family_a = bodies(receivers["family_a"], secrets["family_a"])
    assert [(b["type"], b["data"]["alert_id"]) for b in family_a] == [
        ("alert.raised", silence_a.alert_id),
        ("alert.resolved", silence_a.alert_id),
    ]
    assert family_a[1]["data"]["resolution"]["outcome"] == "condition_cleared"
    family_b = bodies(receivers["family_b"], secrets["family_b"])
    assert [(b["type"], b["data"]["kind"]) for b in family_b] == [("alert.raised", "spike")]
    assert all(b["data"]["household"]["name"] == "Home B" for b in family_b)
    supervisor = bodies(receivers["supervisor"], secrets["supervisor"])
    assert [(b["type"], b["data"]["alert_id"], b["data"]["tier"]) for b in supervisor] == [
        ("alert.escalated", silence_a.alert_id, 1),
        ("alert.resolved", silence_a.alert_id, 1),
    ]  # told, so cleared
    grid = bodies(receivers["grid_worker"], secrets["grid_worker"])
    assert sorted(b["type"] for b in grid) == ["alert.raised", "alert.raised", "alert.resolved"]
    assert receivers["family_c"].requests == []
    assert all(b["data"]["meter_id"] != "MC" for b in grid + supervisor)
    letters = consume(
        router_settings.bootstrap_servers,
        Topics.from_settings(router_settings).deadletter,
        until=lambda records: len(records) >= 1,
        timeout=10,
    )
    assert [(r.value, read_headers(r.headers)["shouwang.source.topic"]) for r in letters] == [(b"not an alert", topic)]
    every_id = [r.headers["webhook-id"] for rec in receivers.values() for r in rec.requests]
    assert len(every_id) == len(set(every_id))
    with store.transaction() as session:
        muted = session.get(Alert, silence_b.alert_id)
        assert muted is not None and muted.silenced_by == "away"
    assert 'result="duplicate"' in metrics
    assert "shouwang_alert_escalations_total" in metrics
    store.close()


def test_receiver_down_then_up_gets_it_with_the_same_webhook_id(router_settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    store = Store(str(router_settings.database_url))
    secrets = enrol(store, {"family_a": f"http://127.0.0.1:{port}/hook"}, router_settings)
    router = start_shouwang(["router"], settings_env(router_settings), tmp_path / "router.log")
    try:
        produce(
            router_settings.bootstrap_servers,
            Topics.from_settings(router_settings).alerts,
            [(b"MA", encode(alert_event("MA", "spike", "high")))],
        )

        def failed_twice() -> bool:
            with store.transaction() as session:
                return any(d.attempts >= 2 for d in session.scalars(select(Delivery)))

        until(failed_twice, what="two failed attempts while the receiver is down")
        with Receiver(port=port) as receiver:
            [request] = receiver.wait_for(1, timeout_s=30)
            body = receiver.verify_with(secrets["family_a"], request)
        with store.transaction() as session:
            delivery = session.scalars(select(Delivery)).one()
        assert request.headers["webhook-id"] == delivery.id
        assert body["data"]["kind"] == "spike"
        until(lambda: _status(store, delivery.id) == "delivered", what="delivered status")
    finally:
        stop(router)
    store.close()


def _status(store: Store, delivery_id: str) -> str:
    with store.transaction() as session:
        row = session.get(Delivery, delivery_id)
        return row.status if row else "missing"


def test_router_killed_mid_delivery_resends_with_the_same_webhook_id(router_settings: Settings, tmp_path: Path) -> None:
    store = Store(str(router_settings.database_url))
    env = settings_env(router_settings)
    with Receiver(delay_s=30) as receiver:  # holds the first request open: the router dies mid-send
        secrets = enrol(store, {"family_a": receiver.url}, router_settings)
        router = start_shouwang(["router"], env, tmp_path / "router-1.log")
        produce(
            router_settings.bootstrap_servers,
            Topics.from_settings(router_settings).alerts,
            [(b"MA", encode(alert_event("MA", "continuous_flow", "medium")))],
        )
        [first] = receiver.wait_for(1, timeout_s=30)
        stop(router, sig=signal.SIGKILL)
        with store.transaction() as session:
            delivery = session.scalars(select(Delivery)).one()
        assert delivery.status == "pending" and delivery.id == first.headers["webhook-id"]
        receiver.delay_s = 0
        restarted = start_shouwang(["router"], env, tmp_path / "router-2.log")
        try:
            requests = receiver.wait_for(2, timeout_s=30)
            until(lambda: _status(store, delivery.id) == "delivered", what="delivered status")
        finally:
            stop(restarted)
    assert [r.headers["webhook-id"] for r in requests] == [delivery.id, delivery.id]
    assert receiver.verify_with(secrets["family_a"], requests[1])["data"]["kind"] == "continuous_flow"
    store.close()
