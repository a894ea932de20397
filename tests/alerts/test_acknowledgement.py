"""Acknowledgement by role (alerts/lifecycle.py) on a real store (SQLite and PostgreSQL): a family
member's "seen" does not stand the grid worker down; a staff acknowledgement does, until it expires."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from alerts.channels.base import Notification
from alerts.channels.templates import Templates
from alerts.db import Store
from alerts.lifecycle import acknowledge, acknowledgements_expired, escalate_due, remind_due
from alerts.models import Alert, Delivery
from alerts.pipeline import RouterConfig
from alerts.statuses import AlertStatus
from tests.alerts.conftest import T0, World, build_world
from tests.alerts.test_pipeline import event, route, told


@pytest.fixture
def world(store: Store) -> World:
    return build_world(store)


@pytest.fixture
def timed(config: RouterConfig) -> RouterConfig:
    return dataclasses.replace(config, staff_ack_timeouts={"high": timedelta(hours=4)})


def tick(store: Store, config: RouterConfig, minutes: float) -> None:
    now = T0 + timedelta(minutes=minutes)
    with store.transaction() as session:
        acknowledgements_expired(session, now=now, config=config)
        escalate_due(session, now=now, config=config)
        remind_due(session, now=now, config=config)


def ack(store: Store, config: RouterConfig, alert_id: str, *, by: str, role: str, minutes: float) -> Alert:
    with store.transaction() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        acknowledge(session, alert, by=by, now=T0 + timedelta(minutes=minutes), role=role, config=config)
        session.flush()
        session.expunge(alert)
        return alert


def test_a_family_member_seeing_it_does_not_stand_the_staff_tiers_down(
    store: Store, timed: RouterConfig, world: World
) -> None:
    raised = event("MA")
    route(store, timed, raised, T0)
    seen = ack(store, timed, raised.alert_id, by="Daughter A (via link)", role="family", minutes=5)
    assert (seen.status, seen.family_seen_by, seen.acknowledged_at) == (
        AlertStatus.RAISED,
        "Daughter A (via link)",
        None,
    )
    tick(store, timed, 31)  # high: supervisor after 30 min unacknowledged by staff
    assert world.supervisor.id in told(store, raised.alert_id, "alert.escalated")
    with store.transaction() as session:
        body = json.loads(
            session.scalars(
                select(Delivery.payload).where(
                    Delivery.alert_id == raised.alert_id, Delivery.event_type == "alert.escalated"
                )
            ).first()
            or "{}"
        )
    assert body["data"]["family_seen"]["by"] == "Daughter A (via link)"
    note = Notification("msg_x", body, "supervisor")
    group = Templates().render(note, channel_type="wecom_robot", family="text", audience="group").body
    person = Templates().render(note, channel_type="wecom_app", family="text", audience="person").body
    assert "家属已看到" in group and "Daughter A" not in group  # a group reads when, not who
    assert "家属已看到（Daughter A (via link)" in person


def test_a_staff_acknowledgement_stops_escalation_until_it_expires(
    store: Store, timed: RouterConfig, world: World
) -> None:
    raised = event("MA")
    route(store, timed, raised, T0)
    held = ack(store, timed, raised.alert_id, by="Grid worker C1", role="grid_worker", minutes=5)
    assert held.status == AlertStatus.ACKNOWLEDGED and held.ack_expires_at == T0 + timedelta(minutes=245)
    tick(store, timed, 240)
    assert told(store, raised.alert_id, "alert.escalated") == []
    tick(store, timed, 246)  # acknowledged 4 h ago and still not resolved: the next tier is told
    assert told(store, raised.alert_id, "alert.escalated") == [world.supervisor.id]
    with store.transaction() as session:
        alert = session.get(Alert, raised.alert_id)
        assert alert is not None and alert.status == AlertStatus.RAISED


def test_without_a_timeout_for_the_severity_an_acknowledgement_holds(
    store: Store, config: RouterConfig, world: World
) -> None:
    raised = event("MA")
    route(store, config, raised, T0)
    held = ack(store, config, raised.alert_id, by="Grid worker C1", role="grid_worker", minutes=5)
    assert held.ack_expires_at is None
    tick(store, config, 60 * 24)
    assert told(store, raised.alert_id, "alert.escalated") == []
