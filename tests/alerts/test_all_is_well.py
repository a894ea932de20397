"""The all-is-well message on a real store (SQLite and PostgreSQL), with an injected clock: at the family's local
time and not before, once, never over an open alert, waiting for a late first use, weekly on Mondays."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import jsonschema
import pytest
from sqlalchemy import select

from alerts import admin
from alerts.admin import AdminError
from alerts.all_is_well import EVENT_TYPE, all_is_well_due, record_day
from alerts.db import Store
from alerts.models import AllIsWellMessage, Delivery, Household, Recipient, Subscription
from alerts.pipeline import RouterConfig
from shouwang.events import DailySummary
from tests.alerts.conftest import World, build_world
from tests.alerts.test_payloads import SCHEMA
from tests.alerts.test_pipeline import event, route

SHANGHAI = "+08:00"
MONDAY = date(2026, 3, 2)  # a Monday; the world's households are in Asia/Shanghai


def local(day: date, clock: str) -> datetime:
    """A time on the households' clock (Shanghai), as the router's UTC clock reads it."""
    return datetime.fromisoformat(f"{day.isoformat()}T{clock}:00{SHANGHAI}").astimezone(UTC)


@pytest.fixture
def world(store: Store) -> World:
    world = build_world(store)
    with store.transaction() as session:
        family_a = session.get(Recipient, world.family_a.id)
        assert family_a is not None
        for subscription in session.scalars(select(Subscription).where(Subscription.recipient_id == family_a.id)):
            session.delete(subscription)
        session.flush()
        admin.subscribe(
            session, family_a, household_id=world.home_a.id, all_is_well_every="day", all_is_well_call="妈妈"
        )
    return world


def summary(day: date, first_use: str | None, meter: str = "MA", *, complete: bool = False) -> DailySummary:
    return DailySummary(
        meter_id=meter,
        day=day.isoformat(),
        first_use_at=None if first_use is None else datetime.fromisoformat(f"{day}T{first_use}:00{SHANGHAI}"),
        litres=35.0,
        hours_with_use=3,
        complete=complete,
    )


def keep(store: Store, *summaries: DailySummary) -> list[str]:
    results = []
    for item in summaries:
        with store.transaction() as session:
            results.append(record_day(session, item, now=local(MONDAY, "12:00")))
    return results


def sent(store: Store) -> list[dict]:
    with store.transaction() as session:
        query = select(Delivery).where(Delivery.event_type == EVENT_TYPE).order_by(Delivery.created_at)
        return [json.loads(delivery.payload) for delivery in session.scalars(query)]


def test_the_message_comes_at_the_local_time_not_before_and_once(store: Store, world: World) -> None:
    keep(store, summary(MONDAY, "07:12"))
    assert all_is_well_due(store, now=local(MONDAY, "09:59")) == []
    [delivery_id] = all_is_well_due(store, now=local(MONDAY, "10:00"))
    assert all_is_well_due(store, now=local(MONDAY, "10:01")) == []  # once a day, however often it is asked
    assert all_is_well_due(store, now=local(MONDAY, "23:59")) == []
    [body] = sent(store)
    assert body["data"]["message"]["zh"] == "妈妈今天 07:12 开始用水，一切如常"
    assert body["data"]["first_use_at"] == "2026-03-02T07:12:00+08:00" and body["data"]["period"] == "day"
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(body)
    with store.transaction() as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None and delivery.alert_id is None
        assert delivery.recipient_id == world.family_a.id  # only the family that opted in
        rows = session.scalars(select(AllIsWellMessage)).all()
        assert [(row.day, row.sent_at) for row in rows] == [("2026-03-02", local(MONDAY, "10:00"))]


def test_a_late_first_use_is_waited_for_the_same_day(store: Store, world: World) -> None:
    assert all_is_well_due(store, now=local(MONDAY, "10:30")) == []  # nothing seen today yet
    keep(store, summary(MONDAY, None))  # a summary of the day without a morning: still waiting
    assert all_is_well_due(store, now=local(MONDAY, "11:00")) == []
    keep(store, summary(MONDAY, "11:40"))
    assert len(all_is_well_due(store, now=local(MONDAY, "11:41"))) == 1
    assert sent(store)[0]["data"]["message"]["zh"] == "妈妈今天 11:40 开始用水，一切如常"
    # Yesterday's use never speaks for today.
    tuesday = MONDAY + timedelta(days=1)
    assert all_is_well_due(store, now=local(tuesday, "10:30")) == []


def test_nothing_while_an_alert_is_open_or_away_mode_is_on(store: Store, config: RouterConfig, world: World) -> None:
    keep(store, summary(MONDAY, "07:12"))
    alert = event("MA", kind="continuous_flow", since=local(MONDAY, "07:30"), at=local(MONDAY, "08:00"))
    assert route(store, config, alert, local(MONDAY, "08:00")) == "notified"
    assert all_is_well_due(store, now=local(MONDAY, "10:00")) == []  # the alert speaks
    resolved = event(
        "MA", "continuous_flow", transition="resolved", since=local(MONDAY, "07:30"), at=local(MONDAY, "10:30")
    )
    route(store, config, resolved, local(MONDAY, "10:30"))
    with store.transaction() as session:
        home = session.get(Household, world.home_a.id)
        assert home is not None
        admin.set_away(home, until=local(MONDAY, "12:00"), note="market", now=local(MONDAY, "10:30"))
    assert all_is_well_due(store, now=local(MONDAY, "11:00")) == []
    assert len(all_is_well_due(store, now=local(MONDAY, "12:01"))) == 1  # back home: the day is still well


def test_a_withdrawn_consent_silences_it(store: Store, world: World) -> None:
    keep(store, summary(MONDAY, "07:12"))
    with store.transaction() as session:
        home = session.get(Household, world.home_a.id)
        assert home is not None
        admin.withdraw_consent(home, by="the elder", now=local(MONDAY, "09:00"))
    assert all_is_well_due(store, now=local(MONDAY, "10:00")) == []


def test_weekly_on_monday_about_the_seven_days_before(store: Store, world: World) -> None:
    with store.transaction() as session:
        subscription = session.scalars(select(Subscription).where(Subscription.recipient_id == world.family_a.id)).one()
        subscription.all_is_well_every, subscription.all_is_well_at = "week", "09:00"
    week = [MONDAY - timedelta(days=back) for back in range(7, 0, -1)]
    keep(store, *(summary(day, f"07:{10 + i:02d}", complete=True) for i, day in enumerate(week)))
    keep(store, summary(MONDAY, "06:00"))
    sunday = MONDAY - timedelta(days=1)
    assert all_is_well_due(store, now=local(sunday, "09:30")) == []  # not a Monday
    assert all_is_well_due(store, now=local(MONDAY, "08:59")) == []
    assert len(all_is_well_due(store, now=local(MONDAY, "09:00"))) == 1
    assert all_is_well_due(store, now=local(MONDAY + timedelta(days=1), "09:00")) == []
    [body] = sent(store)
    assert body["data"]["period"] == "week" and [d["day"] for d in body["data"]["days"]] == [
        d.isoformat() for d in week
    ]
    assert body["data"]["message"]["zh"] == "妈妈过去 7 天每天都用水，平均 07:13 开始，每天约 35 升，一切如常"
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(body)


def test_a_later_summary_replaces_an_earlier_one_but_never_a_complete_day(store: Store, world: World) -> None:
    assert keep(store, summary(MONDAY, "07:12"), summary(MONDAY, "07:12", complete=True)) == ["recorded", "updated"]
    assert keep(store, summary(MONDAY, None)) == ["stale"]  # sent again after a crash: the day stays whole
    assert len(all_is_well_due(store, now=local(MONDAY, "10:00"))) == 1


def test_only_a_family_subscription_to_one_household_may_opt_in(store: Store, world: World) -> None:
    with store.transaction() as session:
        worker = session.get(Recipient, world.grid_worker.id)
        family = session.get(Recipient, world.family_b.id)
        assert worker is not None and family is not None
        with pytest.raises(AdminError, match="for family members"):
            admin.subscribe(session, worker, grid_cell="C1", all_is_well_every="day")
        with pytest.raises(AdminError, match="HH:MM"):
            admin.subscribe(
                session, family, household_id=world.home_b.id, all_is_well_every="day", all_is_well_at="7:00"
            )
        with pytest.raises(AdminError, match="need all_is_well_every"):
            admin.subscribe(session, family, household_id=world.home_b.id, all_is_well_at="07:00")
        plain = admin.subscribe(session, family, household_id=world.home_b.id, all_is_well_every="week")
        assert (plain.all_is_well_every, plain.all_is_well_at, plain.all_is_well_call) == ("week", "10:00", None)
