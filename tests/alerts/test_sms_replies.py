"""Answering a check-in by text message (alerts/sms_replies.py) on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from alerts import admin
from alerts.db import Store
from alerts.models import Alert, Endpoint, Household
from alerts.pipeline import RouterConfig
from alerts.secret_box import SecretBox, new_key
from alerts.sms_replies import ReplyError, answer_by_reply, back_on, parse_reply
from alerts.statuses import AlertStatus, EndpointStatus, Outcome
from tests.alerts.conftest import World, build_world
from tests.alerts.test_check_ins import ASKED_AT, ask

PHONE = "+8613800138000"
TTL = timedelta(hours=72)


@pytest.fixture
def box() -> SecretBox:
    return SecretBox([new_key()])


@pytest.fixture
def world(store: Store, box: SecretBox) -> World:
    built = build_world(store)
    with store.transaction() as session:
        elder, _ = admin.create_recipient(session, name="Elder A", role="resident", webhook_url=None)
        session.add(
            Endpoint(
                recipient_id=elder.id,
                type="sms",
                url="+86138****8000",
                secret="",
                sealed_config=box.seal({"phone": PHONE}),
                status=EndpointStatus.ACTIVE,
            )
        )
        admin.subscribe(session, elder, household_id=built.home_a.id)
    return built


def reply(store: Store, config: RouterConfig, box: SecretBox, text: str, phone: str = PHONE) -> str:
    with store.transaction() as session:
        result = answer_by_reply(
            session, phone=phone, text=text, now=ASKED_AT + timedelta(minutes=4), config=config, box=box, ttl=TTL
        )
        return result.action


def test_1_from_the_residents_phone_is_fine(store: Store, config: RouterConfig, box: SecretBox, world: World) -> None:
    alert_id, result = ask(store, config)
    assert result == "asked-resident"
    assert reply(store, config, box, "１") == "fine"  # a full-width digit, as phones type it
    with store.transaction() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        assert (alert.status, alert.outcome) == (AlertStatus.RESOLVED, Outcome.RESIDENT_FINE)
        assert alert.resolved_by is not None and "via SMS reply" in alert.resolved_by
    with pytest.raises(ReplyError) as second:  # answered already: nothing waits any more
        reply(store, config, box, "1")
    assert second.value.status == 404


def test_2_with_a_day_sets_away_mode_until_that_day(
    store: Store, config: RouterConfig, box: SecretBox, world: World
) -> None:
    ask(store, config)
    assert reply(store, config, box, "2 3月5日") == "away"
    with store.transaction() as session:
        home = session.get(Household, world.home_a.id)
        assert home is not None and home.away_set_by is not None and "Elder A" in home.away_set_by
        assert home.away_until is not None and home.away_until.date() == date(2026, 3, 5)  # 00:00 on the 6th, +08:00


def test_a_reply_from_another_number_changes_nothing(
    store: Store, config: RouterConfig, box: SecretBox, world: World
) -> None:
    alert_id, _ = ask(store, config)
    with pytest.raises(ReplyError, match="no resident is asked on this phone number") as wrong:
        reply(store, config, box, "1", phone="+8613900139000")
    assert wrong.value.status == 404
    with store.transaction() as session:
        assert session.scalar(select(Alert.status).where(Alert.id == alert_id)) == AlertStatus.CHECKING


def test_an_unknown_code_changes_nothing(store: Store, config: RouterConfig, box: SecretBox, world: World) -> None:
    ask(store, config)
    with pytest.raises(ReplyError) as unknown:
        reply(store, config, box, "3")
    assert unknown.value.status == 422


def test_parse_and_days() -> None:
    assert parse_reply(" 我很好。") == ("fine", None)
    assert parse_reply("2 12-10") == ("away", "12-10")
    assert back_on("12-10", today=date(2026, 12, 6), max_days=30) == "2026-12-10"
    assert back_on("1-05", today=date(2026, 12, 6), max_days=30) == "2027-01-05"
    assert back_on(None, today=date(2026, 12, 6), max_days=30) == "2027-01-04"
    with pytest.raises(ReplyError):
        back_on("2-30", today=date(2026, 12, 6), max_days=30)
