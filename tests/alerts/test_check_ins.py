"""Asking the resident first (alerts/check_ins.py): the router's pipeline and timers on a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from alerts import admin
from alerts.check_ins import answer_away, answer_fine, check_ins_due, rechecks_due
from alerts.db import Store
from alerts.lifecycle import LifecycleError, remind_due
from alerts.models import Alert, Delivery, Household, Recipient
from alerts.pipeline import RouterConfig
from alerts.statuses import AlertStatus, CheckIn, DeliveryStatus, Outcome
from tests.alerts.conftest import BOX, LOOPBACK, T0, World, build_world
from tests.alerts.test_pipeline import event, route, told

ASKED_AT = T0 + timedelta(hours=8)  # the check limit: 8 h into a silence from T0
RAISED_AT = T0 + timedelta(hours=14)  # the alarm limit


@pytest.fixture
def world(store: Store) -> World:
    return build_world(store)


@pytest.fixture
def resident(store: Store, world: World) -> Recipient:
    with store.transaction() as session:
        person, _ = admin.create_recipient(
            session, name="Elder A", role="resident", webhook_url="http://127.0.0.1:9/speaker", allow=LOOPBACK, box=BOX
        )
        admin.subscribe(session, person, household_id=world.home_a.id)
        session.expunge(person)
    return person


def ask(store: Store, config: RouterConfig, meter: str = "MA") -> tuple[str, str]:
    asked = event(meter, transition="check_in", at=ASKED_AT)
    return asked.alert_id, route(store, config, asked, ASKED_AT)


def timers(store: Store, config: RouterConfig, now: datetime) -> None:
    with store.transaction() as session:
        check_ins_due(session, now=now, config=config)
        rechecks_due(session, now=now, config=config)


def alert_of(store: Store, alert_id: str) -> Alert:
    with store.transaction() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        session.expunge(alert)
        return alert


def test_only_the_resident_is_asked(store: Store, config: RouterConfig, world: World, resident: Recipient) -> None:
    alert_id, result = ask(store, config)
    assert result == "asked-resident"
    assert told(store, alert_id) == [resident.id]
    assert told(store, alert_id, "alert.check_in") == [resident.id]
    assert alert_of(store, alert_id).status == AlertStatus.CHECKING
    assert route(store, config, event("MA", transition="check_in", at=ASKED_AT), ASKED_AT) == "duplicate"


def test_without_a_resident_channel_carers_hear_at_the_alarm_limit_as_before(
    store: Store, config: RouterConfig, world: World, resident: Recipient
) -> None:
    alert_id, result = ask(store, config, meter="MB")  # home B has no resident recipient
    assert result == "check-in-skipped:no-resident"
    assert told(store, alert_id) == []
    timers(store, config, ASKED_AT + timedelta(hours=1))
    assert told(store, alert_id) == []
    assert route(store, config, event("MB", at=RAISED_AT), RAISED_AT) == "notified"
    assert told(store, alert_id, "alert.raised") == sorted([world.family_b.id, world.grid_worker.id])


def test_no_answer_in_time_tells_family_and_grid_worker_with_the_reason(
    store: Store, config: RouterConfig, world: World, resident: Recipient
) -> None:
    alert_id, _ = ask(store, config)
    timers(store, config, ASKED_AT + timedelta(minutes=29))
    assert told(store, alert_id, "alert.raised") == []
    timers(store, config, ASKED_AT + timedelta(minutes=30))
    assert told(store, alert_id, "alert.raised") == sorted([world.family_a.id, world.grid_worker.id])
    alert = alert_of(store, alert_id)
    assert (alert.status, alert.check_in) == (AlertStatus.RAISED, CheckIn.UNANSWERED)
    assert alert.explanation_zh.startswith("已询问老人本人，30 分钟未回复")
    assert alert.next_escalation_at is not None  # escalation goes on as for any raise
    # The detector's alarm limit later: carers were told already, nobody is told twice.
    assert route(store, config, event("MA", at=RAISED_AT), RAISED_AT) == "carers-told-already"
    assert len(told(store, alert_id, "alert.raised")) == 2


def test_the_alarm_limit_before_the_timeout_tells_carers_at_once(
    store: Store, config: RouterConfig, world: World, resident: Recipient
) -> None:
    alert_id, _ = ask(store, config)
    early = ASKED_AT + timedelta(minutes=10)
    assert route(store, config, event("MA", at=early), early) == "notified"
    assert told(store, alert_id, "alert.raised") == sorted([world.family_a.id, world.grid_worker.id])
    timers(store, config, ASKED_AT + timedelta(hours=1))
    assert len(told(store, alert_id, "alert.raised")) == 2


def test_fine_closes_it_and_nobody_else_is_ever_told(
    store: Store, config: RouterConfig, world: World, resident: Recipient
) -> None:
    alert_id, _ = ask(store, config)
    with store.transaction() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        answer_fine(session, alert, by="Elder A (via link)", now=ASKED_AT + timedelta(minutes=5), config=config)
    alert = alert_of(store, alert_id)
    assert (alert.status, alert.outcome, alert.check_in) == (AlertStatus.RESOLVED, Outcome.RESIDENT_FINE, "fine")
    timers(store, config, ASKED_AT + timedelta(hours=1))
    assert route(store, config, event("MA", at=RAISED_AT), RAISED_AT) == "already-resolved"
    escalated = event("MA", severity="critical", transition="escalated", at=T0 + timedelta(hours=20))
    assert route(store, config, escalated, T0 + timedelta(hours=20)) == "already-resolved"
    # Water use ends the silence before 24 h: the watch is over, nobody is ever told.
    used = T0 + timedelta(hours=21)
    route(store, config, event("MA", transition="resolved", at=used), used)
    timers(store, config, T0 + timedelta(hours=25))
    assert told(store, alert_id) == [resident.id]


def test_fine_but_still_silent_at_24_hours_goes_to_carers_as_critical(
    store: Store, config: RouterConfig, world: World, resident: Recipient
) -> None:
    alert_id, _ = ask(store, config)
    with store.transaction() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        answer_fine(session, alert, by="Elder A (via link)", now=ASKED_AT + timedelta(minutes=5), config=config)
    timers(store, config, T0 + timedelta(hours=23, minutes=59))
    assert told(store, alert_id, "alert.raised") == []
    timers(store, config, T0 + timedelta(hours=24))
    assert told(store, alert_id, "alert.raised") == sorted([world.family_a.id, world.grid_worker.id])
    alert = alert_of(store, alert_id)
    assert (alert.status, alert.severity, alert.check_in) == (AlertStatus.RAISED, "critical", "fine_silent")
    assert "我很好" in alert.explanation_zh


def test_away_sets_away_mode_with_the_resident_as_actor_until_water_is_used(
    store: Store, config: RouterConfig, world: World, resident: Recipient
) -> None:
    alert_id, _ = ask(store, config)
    now = ASKED_AT + timedelta(minutes=3)
    with store.transaction() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        with pytest.raises(LifecycleError, match="30"):
            answer_away(session, alert, by="Elder A (via link)", until="2026-05-01", now=now, config=config)
        household = answer_away(session, alert, by="Elder A (via link)", until="2026-03-05", now=now, config=config)
        assert household.away_set_by == "Elder A (via link)"
        assert household.away_until == datetime(2026, 3, 5, 16, tzinfo=UTC)  # the end of that day in Shanghai
    assert alert_of(store, alert_id).check_in == CheckIn.AWAY
    timers(store, config, T0 + timedelta(hours=25))
    assert told(store, alert_id) == [resident.id]  # away: no 24-hour watch
    back = T0 + timedelta(hours=30)
    route(store, config, event("MA", transition="resolved", at=back), back)
    with store.transaction() as session:
        home = session.get(Household, world.home_a.id)
        assert home is not None and not home.is_away(back)


def test_a_resident_channel_that_fails_for_good_falls_back_to_the_alarm_limit(
    store: Store, config: RouterConfig, world: World, resident: Recipient
) -> None:
    alert_id, _ = ask(store, config)
    with store.transaction() as session:
        session.execute(update(Delivery).where(Delivery.alert_id == alert_id).values(status=DeliveryStatus.DEAD))
    timers(store, config, ASKED_AT + timedelta(minutes=31))
    assert alert_of(store, alert_id).check_in == CheckIn.FAILED
    assert told(store, alert_id, "alert.raised") == []  # not at the timeout: as if there were no resident channel
    assert route(store, config, event("MA", at=RAISED_AT), RAISED_AT) == "notified"
    assert told(store, alert_id, "alert.raised") == sorted([world.family_a.id, world.grid_worker.id])


def test_the_resident_gets_no_reminder_and_no_all_clear(
    store: Store, config: RouterConfig, world: World, resident: Recipient
) -> None:
    ask(store, config)
    timers(store, config, ASKED_AT + timedelta(minutes=30))
    with store.transaction() as session:
        remind_due(session, now=ASKED_AT + timedelta(hours=5), config=config)
    back = ASKED_AT + timedelta(hours=6)
    route(store, config, event("MA", transition="resolved", at=back), back)
    with store.transaction() as session:
        to_resident = session.scalars(select(Delivery.event_type).where(Delivery.recipient_id == resident.id))
        assert list(to_resident) == ["alert.check_in"]


def test_water_use_before_anyone_answers_ends_the_check_in_quietly(
    store: Store, config: RouterConfig, world: World, resident: Recipient
) -> None:
    alert_id, _ = ask(store, config)
    used = ASKED_AT + timedelta(minutes=20)
    assert route(store, config, event("MA", transition="resolved", at=used), used) == "resolved-before-carers"
    alert = alert_of(store, alert_id)
    assert (alert.status, alert.outcome) == (AlertStatus.RESOLVED, Outcome.CONDITION_CLEARED)
    timers(store, config, ASKED_AT + timedelta(hours=2))
    assert told(store, alert_id) == [resident.id]


def test_a_silenced_household_is_not_asked(
    store: Store, config: RouterConfig, world: World, resident: Recipient
) -> None:
    with store.transaction() as session:
        home = session.get(Household, world.home_a.id)
        assert home is not None
        admin.set_away(home, until=T0 + timedelta(days=3), note="hospital", now=T0, by="Daughter A")
    alert_id, result = ask(store, config)
    assert result == "check-in-skipped:away"
    assert told(store, alert_id) == []


def test_a_check_in_seen_long_after_it_was_decided_asks_nobody(
    store: Store, config: RouterConfig, world: World, resident: Recipient
) -> None:
    # History uploaded late: the silence may be long over; the alarm limit speaks to carers, as without one.
    late = event("MA", transition="check_in", at=ASKED_AT)
    assert route(store, config, late, ASKED_AT + timedelta(hours=1, minutes=1)) == "check-in-skipped:late"
    assert told(store, late.alert_id) == []
    assert route(store, config, event("MA", at=RAISED_AT), RAISED_AT) == "notified"
    assert told(store, late.alert_id, "alert.raised") == sorted([world.family_a.id, world.grid_worker.id])
