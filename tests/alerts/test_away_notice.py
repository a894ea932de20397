"""The away notice on a real store (SQLite and PostgreSQL): a family member's away mode reaches the grid workers
of the household's cell, community or household, and nobody else; staff setting it tell nobody."""

from __future__ import annotations

import json
from datetime import timedelta

import jsonschema
import pytest
from sqlalchemy import select

from alerts import admin
from alerts.away_notice import EVENT_TYPE, announce_away
from alerts.db import Store
from alerts.models import Delivery, Endpoint, Household, Recipient
from alerts.statuses import DeliveryStatus, EndpointStatus
from tests.alerts.conftest import BOX, LOOPBACK, T0, World, build_world
from tests.alerts.test_payloads import SCHEMA

UNTIL = T0 + timedelta(days=8, hours=9)  # 2026-03-10 10:00 UTC, 18:00 in Shanghai
FAMILY = "family:key_daughter"


def announce(store: Store, home_id: str, *, by: str = FAMILY, note: str | None = "去女儿家住一周") -> list[str]:
    """Set away mode as ``by`` and announce it, as the API does, in one transaction; the deliveries' ids."""
    with store.transaction() as session:
        household = session.get(Household, home_id)
        assert household is not None
        admin.set_away(household, until=UNTIL, note=note, now=T0, by=by, max_days=30)
        return [delivery.id for delivery in announce_away(session, household, by=by, until=UNTIL, note=note, now=T0)]


def told(store: Store) -> list[tuple[str, dict]]:
    """(recipient id, body) of every away notice recorded."""
    with store.transaction() as session:
        rows = session.scalars(select(Delivery).where(Delivery.event_type == EVENT_TYPE).order_by(Delivery.id))
        return [(row.recipient_id, json.loads(row.payload)) for row in rows]


def test_a_family_setting_away_mode_tells_the_cells_grid_worker_and_nobody_else(store: Store) -> None:
    world = build_world(store)
    ids = announce(store, world.home_a.id)
    notices = told(store)
    assert [recipient for recipient, _ in notices] == [world.grid_worker.id]  # not the family, nor cell C2's worker
    assert len(ids) == 1
    [(_, body)] = notices
    assert body["type"] == "household.away"
    data = body["data"]
    assert data["message"]["zh"] == "Home A的家属设置了外出模式，至 3月10日 18:00；期间不提醒长时间未用水。"
    assert data["message"]["en"].startswith("The family of Home A set away mode until 10 Mar 18:00")
    assert data["away_until"] == "2026-03-10T18:00:00+08:00"
    assert (data["set_by"], data["note"], data["grid_cell"]) == (FAMILY, "去女儿家住一周", "C1")
    with store.transaction() as session:
        delivery = session.get(Delivery, ids[0])
        assert delivery is not None
        assert (delivery.alert_id, delivery.status, delivery.next_attempt_at) == (None, DeliveryStatus.PENDING, T0)


@pytest.mark.parametrize("scope", ["household", "community"])
def test_a_grid_worker_subscribed_to_the_household_or_its_community_is_told(store: Store, scope: str) -> None:
    world = build_world(store)
    with store.transaction() as session:
        worker, _ = admin.create_recipient(
            session,
            name=f"Worker by {scope}",
            role="grid_worker",
            webhook_url="http://127.0.0.1:9/h",
            allow=LOOPBACK,
            box=BOX,
        )
        home = session.get(Household, world.home_b.id)
        assert home is not None
        admin.subscribe(
            session,
            worker,
            **({"household_id": home.id} if scope == "household" else {"community": home.community}),
        )
        worker_id = worker.id
    announce(store, world.home_b.id)
    assert sorted(recipient for recipient, _ in told(store)) == sorted([world.grid_worker.id, worker_id])


def test_each_active_endpoint_gets_one_a_disabled_one_none(store: Store) -> None:
    world = build_world(store)
    with store.transaction() as session:
        worker = session.get(Recipient, world.grid_worker.id)
        assert worker is not None
        admin.add_endpoint(session, worker, url="http://127.0.0.1:9/second", allow=LOOPBACK, box=BOX)
        admin.add_endpoint(session, worker, url="http://127.0.0.1:9/gone", allow=LOOPBACK, box=BOX)
        gone = session.scalars(select(Endpoint).where(Endpoint.url == "http://127.0.0.1:9/gone")).one()
        gone.status = EndpointStatus.DISABLED
    announce(store, world.home_a.id)
    with store.transaction() as session:
        endpoints = session.scalars(
            select(Endpoint.url)
            .join(Delivery, Delivery.endpoint_id == Endpoint.id)
            .where(Delivery.event_type == EVENT_TYPE)
            .order_by(Endpoint.url)
        ).all()
    assert endpoints == ["http://127.0.0.1:9/hook", "http://127.0.0.1:9/second"]


@pytest.mark.parametrize("by", ["grid_worker:key_gw", "operator:key_op", "supervisor:key_sv", "resident:dl_1"])
def test_staff_or_the_resident_setting_away_mode_tell_nobody(store: Store, by: str) -> None:
    world = build_world(store)
    assert announce(store, world.home_a.id, by=by) == []
    assert told(store) == []
    with store.transaction() as session:
        home = session.get(Household, world.home_a.id)
        assert home is not None and home.is_away(T0) and home.away_set_by == by  # still set, just not announced


def test_nothing_is_told_once_consent_is_withdrawn(store: Store) -> None:
    world: World = build_world(store)
    with store.transaction() as session:
        home = session.get(Household, world.home_a.id)
        assert home is not None
        admin.withdraw_consent(home, by="the elder", now=T0 - timedelta(hours=1))
    assert announce(store, world.home_a.id) == []
    assert told(store) == []


@pytest.mark.parametrize("note", ["住院", None])
def test_the_notice_matches_the_webhook_schema(store: Store, note: str | None) -> None:
    world = build_world(store)
    announce(store, world.home_a.id, note=note)
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    [(_, body)] = told(store)
    validator.validate(body)
    assert body["data"]["note"] == note
    # The schema tells an away notice from the other bodies: one without its end time is refused.
    del body["data"]["away_until"]
    assert not validator.is_valid(body)
