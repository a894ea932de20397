"""Consent withdrawal is total and immediate (alerts/consent.py), on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from alerts.consent import WITHDRAWN_ERROR, ConsentError, grant, history, withdraw
from alerts.db import Store
from alerts.feedback import FeedbackPublisher
from alerts.lifecycle import escalate_due, remind_due, resolve
from alerts.models import Alert, Delivery, Household
from alerts.outbox import OutboxConfig, OutboxDispatcher
from alerts.pipeline import RouterConfig
from alerts.statuses import DeliveryStatus
from alerts.webhooks import EndpointLimiter
from tests.alerts.conftest import BOX, T0, World, build_world
from tests.alerts.test_pipeline import event, route, told

LATER = T0 + timedelta(minutes=10)


@pytest.fixture
def world(store: Store) -> World:
    return build_world(store)


def withdraw_a(store: Store, world: World) -> int:
    with store.transaction() as session:
        home = session.get(Household, world.home_a.id)
        assert home is not None
        return withdraw(session, home, by="the elder", evidence="signed form", recorded_by="operator:key_x", now=LATER)


def test_withdrawal_silences_open_alerts_and_drops_what_is_not_sent(
    store: Store, config: RouterConfig, world: World
) -> None:
    raised = event("MA")
    route(store, config, raised, T0)
    pending = told(store, raised.alert_id)
    assert pending  # the family and the grid worker, not sent yet
    assert withdraw_a(store, world) == len(pending)
    with store.transaction() as session:
        alert = session.get(Alert, raised.alert_id)
        assert alert is not None and alert.silenced_by == "consent"
        assert alert.next_escalation_at is None and alert.next_reminder_at is None
        statuses = {(d.status, d.last_error) for d in session.scalars(select(Delivery))}
        assert statuses == {(DeliveryStatus.DEAD, WITHDRAWN_ERROR)}
        assert [(e.action, e.by, e.evidence, e.recorded_by) for e in history(session, world.home_a.id)] == [
            ("withdrawn", "the elder", "signed form", "operator:key_x")
        ]
    with pytest.raises(ConsentError, match="already withdrawn"):
        withdraw_a(store, world)
    # Timers and the resolve path tell nobody any more.
    with store.transaction() as session:
        escalate_due(session, now=T0 + timedelta(hours=3), config=config)
        remind_due(session, now=T0 + timedelta(hours=5), config=config)
        alert = session.get(Alert, raised.alert_id)
        assert alert is not None
        resolve(
            session,
            alert,
            by="grid worker",
            outcome="help_given",
            note=None,
            now=T0 + timedelta(hours=6),
            config=config,
        )
    assert len(told(store, raised.alert_id)) == len(pending)  # no escalation, reminder or all-clear


def test_timers_check_consent_again(store: Store, config: RouterConfig, world: World) -> None:
    raised = event("MA")
    route(store, config, raised, T0)
    with store.transaction() as session:  # withdrawn without the rest (as a raced write would leave it)
        home = session.get(Household, world.home_a.id)
        assert home is not None
        home.consent_withdrawn_at, home.consent_withdrawn_by = LATER, "the elder"
    with store.transaction() as session:
        escalate_due(session, now=T0 + timedelta(hours=3), config=config)
        remind_due(session, now=T0 + timedelta(hours=5), config=config)
    assert told(store, raised.alert_id, "alert.escalated") == []
    assert told(store, raised.alert_id, "alert.reminder") == []
    with store.transaction() as session:
        alert = session.get(Alert, raised.alert_id)
        assert alert is not None and alert.silenced_by == "consent"


def test_the_dispatcher_checks_consent_before_it_sends(store: Store, config: RouterConfig, world: World) -> None:
    raised = event("MA")
    route(store, config, raised, T0)
    with store.transaction() as session:
        home = session.get(Household, world.home_a.id)
        assert home is not None
        home.consent_withdrawn_at = LATER  # after the notifications were recorded, before they are sent
    dispatcher = OutboxDispatcher(
        store,
        OutboxConfig(schedule=[1.0], lease=timedelta(seconds=30), timeout_s=2.0),
        client=httpx.AsyncClient(),
        limiter=EndpointLimiter(2),
        clock=lambda: LATER,
        box=BOX,
    )
    assert dispatcher.claim_due() == []
    with store.transaction() as session:
        assert {(d.status, d.last_error) for d in session.scalars(select(Delivery))} == {
            (DeliveryStatus.DEAD, WITHDRAWN_ERROR)
        }


def test_a_new_grant_is_history_too_and_notifications_resume(store: Store, config: RouterConfig, world: World) -> None:
    withdraw_a(store, world)
    with store.transaction() as session:
        home = session.get(Household, world.home_a.id)
        assert home is not None
        grant(
            session,
            home,
            by="the elder",
            evidence="new form",
            scope="water-use alerts",
            recorded_by="operator:key_x",
            now=T0 + timedelta(days=1),
        )
        assert [e.action for e in history(session, home.id)] == ["withdrawn", "granted"]
        with pytest.raises(ConsentError, match="has consent already"):
            grant(session, home, by="x", evidence="y", scope="z", recorded_by="op", now=T0 + timedelta(days=1))
    later = event("MA", since=T0 + timedelta(days=2))
    assert route(store, config, later, T0 + timedelta(days=2)) == "notified"


def test_the_worker_is_told_for_every_meter_of_the_household(store: Store, world: World) -> None:
    withdraw_a(store, world)
    publisher = FeedbackPublisher(store, "unused", "127.0.0.1:9")
    [(event_id, messages)] = publisher.collect_consent()
    assert [(m.meter_id, m.withdrawn) for m in messages] == [("MA", True)]
    publisher.mark_sent([], [], [event_id])
    assert publisher.collect_consent() == []
