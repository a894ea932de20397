"""A household erased on request (alerts/erasure.py), on a real store (SQLite and PostgreSQL): none of its personal
data is left anywhere in the store, its alerts are still counted by the monthly report, the other household is
untouched, the worker is told once, and a second erasure changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from alerts import admin
from alerts.consent import grant, withdraw
from alerts.db import Store
from alerts.erasure import ERASED_ERROR, erase_household
from alerts.feedback import FeedbackPublisher
from alerts.lifecycle import resolve
from alerts.models import (
    Alert,
    AlertTransition,
    ApiKey,
    Base,
    Delivery,
    DeliveryAttempt,
    Endpoint,
    Household,
    MeterDay,
    Recipient,
    Subscription,
)
from alerts.pipeline import RouterConfig
from alerts.reports import OPERATOR, monthly_report
from alerts.retention import ANONYMISED_EN, ANONYMISED_ZH, RetentionJob, RetentionPolicy
from alerts.statuses import DeliveryStatus
from api.auth import issue_key
from shouwang.settings import Settings
from tests.alerts.conftest import BOX, LOOPBACK, T0, World, build_world
from tests.alerts.test_pipeline import event, route

LATER = T0 + timedelta(hours=8)
ADDRESS = "莲花路 12 号 3 楼"
# Strings that name the people of home A: none may be left in any table after its erasure.
PERSONAL = ("Home A", "Daughter A", "Elder A", ADDRESS, "06:40", "signed form of Home A", "in hospital")
USAGE = {"usage_hourly_l": [3.5, 0.0, 0.0], "silence_h": 12.5}


@pytest.fixture
def world(store: Store, config: RouterConfig) -> World:
    world = build_world(store)
    with store.transaction() as session:
        home = session.get(Household, world.home_a.id)
        assert home is not None
        home.address, home.routine_hints = ADDRESS, {"wake_up": "06:40", "outings": []}
        admin.set_away(home, until=LATER + timedelta(days=2), note="in hospital", now=T0, by="Daughter A")
        withdraw(session, home, by="Home A", evidence="signed form of Home A", recorded_by="operator:key_x", now=T0)
        grant(session, home, by="Home A", evidence="signed form of Home A", scope="all", recorded_by="x", now=T0)
        reason, hour = "Home A in hospital", T0 + timedelta(hours=1)
        admin.add_silence(session, household_id=home.id, reason=reason, created_by="x", starts_at=T0, ends_at=hour)
        for enrolled in (home, session.get(Household, world.home_b.id)):
            assert enrolled is not None
            enrolled.created_at = T0 - timedelta(days=30)  # enrolled before the month the report counts
        session.add(MeterDay(meter_id="MA", day="2026-03-02", litres=120.0, hours_with_use=9, complete=True))
        session.add(MeterDay(meter_id="MB", day="2026-03-02", litres=80.0, hours_with_use=7, complete=True))
        resident, _ = admin.create_recipient(
            session, name="Elder A", role="resident", webhook_url="http://127.0.0.1:9/a", allow=LOOPBACK, box=BOX
        )
        admin.subscribe(session, resident, household_id=home.id)
        # A son with a parent in each home stays, for the other home.
        son, _ = admin.create_recipient(
            session, name="Son of both", role="family", webhook_url="http://127.0.0.1:9/s", allow=LOOPBACK, box=BOX
        )
        admin.subscribe(session, son, household_id=home.id)
        admin.subscribe(session, son, household_id=world.home_b.id)
        issue_key(session, name="Daughter A's phone", role="family", created_by=None, recipient_id=world.family_a.id)
    away_over = T0 + timedelta(days=3)  # the alerts below are raised after away mode
    for alert_event in (event("MA"), event("MB")):
        route(store, config, alert_event.model_copy(update={"facts": USAGE, "at": away_over}), away_over)
    closed = event("MA", kind="spike", since=T0 + timedelta(hours=1)).model_copy(update={"at": away_over})
    route(store, config, closed, away_over)
    with store.transaction() as session:
        alert = session.get(Alert, closed.alert_id)
        assert alert is not None
        by, note = "Daughter A (family:key_1)", "Elder A fell"
        resolve(session, alert, by=by, outcome="help_given", note=note, now=away_over, config=config)
        for delivery in session.scalars(select(Delivery).where(Delivery.alert_id == closed.alert_id)):
            delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, away_over
            session.add(
                DeliveryAttempt(
                    delivery_id=delivery.id, at=away_over, outcome="delivered", error="Daughter A", duration_ms=5
                )
            )
    return world


def erase_a(store: Store, world: World) -> tuple[dict[str, Any], bool]:
    with store.transaction() as session:
        home = session.get(Household, world.home_a.id)
        assert home is not None
        record, done = erase_household(session, home, by="operator:key_op", now=LATER + timedelta(days=3))
        return dict(record.counts), done


def endpoint_of(session: Session, recipient_id: str) -> str:
    return session.scalars(select(Endpoint.id).where(Endpoint.recipient_id == recipient_id)).one()


def every_row(store: Store) -> str:
    """Every row of every table, as text."""
    out: list[str] = []
    with store.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            out.extend(str(tuple(row)) for row in connection.execute(text(f"SELECT * FROM {table.name}")))
    return "\n".join(out)


def report(store: Store) -> dict[str, Any]:
    with store.transaction() as session:
        sections = monthly_report(
            session, community="FT-Lianhua", month="2026-03", scope=OPERATOR, now=T0 + timedelta(days=60)
        )["sections"]
    return {name: sections[name] for name in ("alerts", "outcomes", "delivery")} | {"hh": sections["households"]}


def test_erasure_leaves_no_personal_data_and_reports_still_count(store: Store, world: World) -> None:
    before = every_row(store)
    assert all(words in before for words in PERSONAL)  # the test would find them
    counted = report(store)
    counts, done = erase_a(store, world)
    assert done and counts["alerts"] == 2 and counts["alerts_closed"] == 1 and counts["recipients"] == 2
    left = every_row(store)
    assert [words for words in PERSONAL if words in left] == []

    after = report(store)
    assert after["alerts"] == counted["alerts"]  # every alert counted as before, by kind and severity
    assert after["outcomes"]["by_outcome"] == counted["outcomes"]["by_outcome"]
    assert after["outcomes"]["open"]["value"] == counted["outcomes"]["open"]["value"] - 1  # closed by the erasure
    assert after["outcomes"]["resolved"]["value"] == counted["outcomes"]["resolved"]["value"] + 1
    assert after["delivery"]["total"] == counted["delivery"]["total"]  # dead letters now: never sent
    assert after["hh"]["enrolled"]["value"] == counted["hh"]["enrolled"]["value"] - 1  # not at the month's end

    with store.transaction() as session:
        home = session.get(Household, world.home_a.id)
        assert home is not None and home.erased_at is not None and not home.consent_active
        assert (home.name, home.address, home.routine_hints, home.away_note) == ("", None, None, None)
        assert (home.grid_cell, home.community, home.timezone) == ("C1", "FT-Lianhua", "Asia/Shanghai")
        for alert in session.scalars(select(Alert).where(Alert.household_id == home.id)):
            assert (alert.status, alert.explanation_zh, alert.explanation_en) == (
                "resolved",
                ANONYMISED_ZH,
                ANONYMISED_EN,
            )
            assert alert.facts == {} and alert.resolution_note is None and alert.anonymised_at is not None
            actors = set(session.scalars(select(AlertTransition.actor).where(AlertTransition.alert_id == alert.id)))
            assert actors <= {"detector", "router", "erasure", None}
        deliveries = list(session.scalars(select(Delivery).join(Alert).where(Alert.household_id == home.id)))
        assert deliveries and {d.payload for d in deliveries} == {""}
        assert {d.last_error for d in deliveries if d.delivered_at is None} == {ERASED_ERROR}
        assert not list(session.scalars(select(Subscription).where(Subscription.household_id == home.id)))
        daughter = session.get(Recipient, world.family_a.id)
        assert daughter is not None and daughter.name == ""
        channels = session.scalars(select(Endpoint).where(Endpoint.recipient_id == daughter.id))
        assert {(e.url, e.status) for e in channels} == {("", "disabled")}
        assert all(
            k.revoked_at is not None for k in session.scalars(select(ApiKey).where(ApiKey.recipient_id == daughter.id))
        )
        son = session.scalars(select(Recipient).where(Recipient.name == "Son of both")).one()  # kept for home B
        sons = session.scalars(select(Subscription).where(Subscription.recipient_id == son.id))
        assert [s.household_id for s in sons] == [world.home_b.id]
        worker = session.get(Recipient, world.grid_worker.id)
        assert worker is not None and worker.name == "Grid worker C1"  # staff are never erased with a home
        # Home B keeps everything.
        other = session.scalars(select(Alert).where(Alert.household_id == world.home_b.id)).one()
        assert other.facts == USAGE and other.explanation_en == "no water use since 21:15"
        assert all(d.payload for d in session.scalars(select(Delivery).where(Delivery.alert_id == other.id)))
        assert session.scalars(select(MeterDay.meter_id)).all() == ["MB"]
        assert "Home B" in every_row(store) and "Son B" in every_row(store)

    assert erase_a(store, world) == (counts, False)  # again: the same record, nothing changed
    assert every_row(store) == left


def test_the_worker_is_told_once_and_later_events_record_nothing(
    store: Store, world: World, config: RouterConfig
) -> None:
    erase_a(store, world)
    publisher = FeedbackPublisher(store, "unused", "127.0.0.1:9")
    told = publisher.collect_erasures()
    assert [(home, [m.meter_id for m in messages]) for home, messages in told] == [(world.home_a.id, ["MA"])]
    publisher.mark_erasures_sent([world.home_a.id])
    assert publisher.collect_erasures() == []
    assert publisher.collect()[0] == []  # no verdict of an erased home's alert is taught either
    # An alert on its way when the home was erased is recorded nothing of.
    late = event("MA", since=LATER + timedelta(days=2))
    assert route(store, config, late, LATER + timedelta(days=3)) == "erased"
    # One a router recorded all the same (its transaction read the household just before the erasure
    # committed): the retention job's next pass closes and anonymises it and empties its notification.
    with store.transaction() as session:
        session.add(
            Alert(id="al_" + "0" * 24, kind="no_usage", severity="high", status="raised", meter_id="MA",
                  household_id=world.home_a.id, grid_cell="C1", since=T0, raised_at=LATER, facts=USAGE,
                  explanation_zh="自 06:40 起无用水", explanation_en="no water use since 06:40")
        )  # fmt: skip
        session.flush()
        session.add(
            Delivery(id="msg_late", alert_id="al_" + "0" * 24, recipient_id=world.grid_worker.id,
                     endpoint_id=endpoint_of(session, world.grid_worker.id), event_type="alert.raised",
                     payload='{"data": {"household": {"name": "Home A"}}}', status=DeliveryStatus.DEAD)
        )  # fmt: skip
    policy = RetentionPolicy.from_settings(Settings())
    assert RetentionJob(store, policy, every_s=60, clock=lambda: LATER + timedelta(days=4)).run_once().alerts == 1
    assert [words for words in PERSONAL if words in every_row(store)] == []
    with store.transaction() as session:
        assert session.get(Alert, late.alert_id) is None
        with pytest.raises(admin.AdminError, match="no household"):
            recipient = session.get(Recipient, world.grid_worker.id)
            assert recipient is not None
            admin.subscribe(session, recipient, household_id=world.home_a.id)
