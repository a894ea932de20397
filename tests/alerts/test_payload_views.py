"""Each recipient's body is the view of their role (alerts/payloads.py): staff the full alert, a family what
they need for their elder, the resident the check-in's question. Through the real outbox to a real receiver."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import timedelta
from typing import Any

import jsonschema
import pytest
from sqlalchemy import select, update

from alerts import admin
from alerts.action_links import ActionLinkSigner, LinkMaker
from alerts.channels.base import Notification
from alerts.channels.sms import template_variables
from alerts.channels.templates import CHANNEL_FAMILIES, Templates, sample_notification
from alerts.db import Store
from alerts.lifecycle import escalate_due, remind_due, resolve
from alerts.models import Alert, Delivery, Household, Recipient, Subscription
from alerts.outbox import OutboxConfig, OutboxDispatcher
from alerts.payloads import CHECK_IN_QUESTION, family_view, view_of
from alerts.pipeline import RouterConfig
from alerts.secret_box import new_key
from alerts.webhooks import EndpointLimiter, make_client
from tests.alerts.conftest import BOX, LOOPBACK, T0, World, build_world
from tests.alerts.test_payloads import SCHEMA
from tests.alerts.test_pipeline import event, route
from tests.alerts.webhooks.receiver import Receiver

ADDRESS_A, ADDRESS_B = "莲花路 12 号 3 栋 501", "梅林路 8 号 2 栋 302"
SERIES = [0.0, 0.0, 0.0, 41.5, 0.0, 0.0]  # the hourly water use a staff body carries in its facts
FACTS = {"silence_h": 14, "usage_hourly_l": json.dumps(SERIES)}
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def dispatch(store: Store, links: LinkMaker) -> None:
    """One router's dispatcher, with action links (the resident's answers), until nothing is pending."""

    async def run() -> None:
        client = make_client(allow=LOOPBACK, timeout_s=2.0)
        dispatcher = OutboxDispatcher(
            store,
            OutboxConfig(schedule=(0.05,), lease=timedelta(seconds=30), timeout_s=2.0),
            client=client,
            limiter=EndpointLimiter(4),
            rng=random.Random(3),
            links=links,
            box=BOX,
        )
        try:
            while await dispatcher.run_once():
                pass
        finally:
            await client.aclose()

    asyncio.run(run())


def set_the_scene(store: Store, receiver_url: str) -> tuple[World, Recipient]:
    """Two homes with addresses; family A calls the elder 妈妈; home B's elder has a speaker for check-ins."""
    world = build_world(store, receiver_url=receiver_url)
    with store.transaction() as session:
        for home, address in ((world.home_a, ADDRESS_A), (world.home_b, ADDRESS_B)):
            session.execute(update(Household).where(Household.id == home.id).values(address=address))
        session.execute(
            update(Subscription)
            .where(Subscription.recipient_id == world.family_a.id)
            .values(all_is_well_every="day", all_is_well_call="妈妈")
        )
        resident, secret = admin.create_recipient(
            session, name="Elder B", role="resident", webhook_url=receiver_url, allow=LOOPBACK, box=BOX
        )
        assert secret is not None
        admin.subscribe(session, resident, household_id=world.home_b.id)
        world.secrets[resident.id] = secret
        session.expunge(resident)
    return world, resident


def test_each_recipient_receives_the_view_of_their_role_signed(store: Store, config: RouterConfig) -> None:
    with Receiver() as receiver:
        world, resident = set_the_scene(store, receiver.url)
        asked_at = T0 + timedelta(hours=8)
        asked = event("MB", transition="check_in", at=asked_at)
        assert route(store, config, asked, asked_at) == "asked-resident"
        raised_a = event("MA").model_copy(update={"facts": FACTS})
        assert route(store, config, raised_a, T0 + timedelta(hours=6)) == "notified"
        leak_b = event("MB", kind="continuous_flow").model_copy(update={"facts": FACTS})
        assert route(store, config, leak_b, T0 + timedelta(hours=6)) == "notified"
        dispatch(store, LinkMaker(ActionLinkSigner([new_key()]), "https://shouwang.example"))
        requests = receiver.wait_for(5)
    with store.transaction() as session:
        sent = {d.id: (d.recipient_id, d.alert_id, d.payload) for d in session.scalars(select(Delivery))}
        alert_a = session.get(Alert, raised_a.alert_id)
        assert alert_a is not None
        session.expunge(alert_a)
    assert len(requests) == len(sent) == 5
    got: dict[tuple[str, str | None], tuple[dict[str, Any], str]] = {}
    for request in requests:
        recipient_id, alert_id, stored = sent[request.headers["webhook-id"]]  # the outbox row's id, as before
        body = receiver.verify_with(world.secrets[recipient_id], request)  # signed with the recipient's secret
        VALIDATOR.validate(body)
        if recipient_id != resident.id:
            assert request.body == stored.encode()  # sent exactly as recorded
        got[recipient_id, alert_id] = body, request.body.decode()

    # A family member: what they need for their elder, and nothing of the other home.
    family, text = got[world.family_a.id, raised_a.alert_id]
    data = family["data"]
    assert family["type"] == "alert.raised"
    assert data == {
        "view": "family",
        "alert_id": raised_a.alert_id,
        "status": "raised",
        "kind": "no_usage",
        "severity": "high",
        "since": T0.isoformat(),
        "at": (T0 + timedelta(hours=6)).isoformat(),
        "household": {"name": "妈妈", "timezone": "Asia/Shanghai"},
        "explanation": {"zh": "自 21:15 起无用水", "en": "no water use since 21:15"},
        "acknowledge_url": f"https://shouwang.example/v1/alerts/{raised_a.alert_id}/ack",
        "told": ["family", "grid_worker"],
    }
    for secret in (ADDRESS_A, "Home A", world.home_a.id, "MA", "C1", "41.5", "usage_hourly_l"):
        assert secret not in text, secret
    for other in (ADDRESS_B, "Home B", world.home_b.id, leak_b.alert_id, "MB"):
        assert other not in text, other

    # Staff: the full alert, exactly as before the views.
    staff, _ = got[world.grid_worker.id, raised_a.alert_id]
    assert staff["data"] == {
        "alert_id": raised_a.alert_id,
        "status": "raised",
        "kind": "no_usage",
        "severity": "high",
        "since": T0.isoformat(),
        "at": (T0 + timedelta(hours=6)).isoformat(),
        "meter_id": "MA",
        "grid_cell": "C1",
        "household": {"id": world.home_a.id, "name": "Home A", "address": ADDRESS_A, "timezone": "Asia/Shanghai"},
        "explanation": {"zh": alert_a.explanation_zh, "en": alert_a.explanation_en},
        "facts": FACTS,
        "tier": 0,
        "acknowledge_url": f"https://shouwang.example/v1/alerts/{raised_a.alert_id}/ack",
    }

    # The resident: the question and the answers, nothing else.
    check_in, text = got[resident.id, asked.alert_id]
    assert check_in["type"] == "alert.check_in"
    answers = check_in["data"].pop("answers")
    assert check_in["data"] == {"view": "resident", "alert_id": asked.alert_id, "question": CHECK_IN_QUESTION}
    assert [(a["action"], a["url"].startswith("https://shouwang.example/a/")) for a in answers] == [
        ("fine", True),
        ("away", True),
    ]
    for secret in (ADDRESS_B, "Home B", world.home_b.id, "MB", "C1", "explanation", "facts"):
        assert secret not in text, secret


def test_a_family_hears_who_else_was_told_and_how_it_ended_not_by_whom(store: Store, config: RouterConfig) -> None:
    world = build_world(store)
    raised = event("MA", severity="critical")
    route(store, config, raised, T0)
    with store.transaction() as session:
        escalate_due(session, now=T0 + timedelta(minutes=20), config=config)  # the supervisor is told
        remind_due(session, now=T0 + timedelta(hours=5), config=config)  # everyone told so far
    with store.transaction() as session:
        alert = session.get(Alert, raised.alert_id)
        assert alert is not None
        note = "邻居李某说老人去了女儿家"  # staff's words, naming a neighbour: not for the family's body
        resolve(session, alert, by="grid_worker:key_1", outcome="resident_fine", note=note, now=T0 + timedelta(hours=6),
                config=config)  # fmt: skip
    with store.transaction() as session:
        rows = session.execute(
            select(Delivery.event_type, Recipient.role, Delivery.payload)
            .join(Recipient, Delivery.recipient_id == Recipient.id)
            .order_by(Delivery.created_at, Delivery.id)
        ).all()
    bodies = {(event_type, role): json.loads(payload) for event_type, role, payload in rows}
    for body in bodies.values():
        VALIDATOR.validate(body)
    assert bodies["alert.raised", "family"]["data"]["told"] == ["family", "grid_worker"]
    assert bodies["alert.reminder", "family"]["data"]["told"] == ["family", "grid_worker", "supervisor"]
    ended = bodies["alert.resolved", "family"]["data"]
    assert ended["resolution"] == {"outcome": "resident_fine", "at": (T0 + timedelta(hours=6)).isoformat()}
    assert note not in json.dumps(ended, ensure_ascii=False) and "key_1" not in json.dumps(ended)
    staff = bodies["alert.resolved", "supervisor"]["data"]
    assert staff["resolution"]["note"] == note and "view" not in staff and staff["household"]["id"] == world.home_a.id
    assert {role for _, role in bodies} == {"family", "grid_worker", "supervisor"}


def test_the_family_view_names_what_it_keeps() -> None:
    data = dict(sample_notification().data)
    data["household"] = {**data["household"], "phone": "+8613800138000"}
    data["new_staff_field"] = "for staff only"
    view = family_view(data, told=("grid_worker",))
    assert "new_staff_field" not in view and view["household"] == {"name": "王阿姨", "timezone": "Asia/Shanghai"}
    assert family_view({**data, "household": None})["household"] is None
    assert {role: view_of(role) for role in ("family", "resident", "grid_worker", "supervisor", "operator", "x")} == {
        "family": "family",
        "resident": "resident",
        "grid_worker": "staff",
        "supervisor": "staff",
        "operator": "staff",
        "x": "family",  # a role this code does not know reads the smaller view, never the staff's
    }


@pytest.mark.parametrize("event_type", ["alert.raised", "alert.reminder", "alert.resolved"])
@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_a_familys_messages_show_only_their_view(event_type: str, language: str) -> None:
    """Chat, app and email messages and SMS variables are made from the stored body: a family's show no
    address, meter, grid cell or water use, even on a person's channel, where staff read them all."""
    templates = Templates()
    family = sample_notification(event_type, language=language, role="family")
    staff = sample_notification(event_type, language=language)
    hidden = ("莲花路", "3 栋", "SZ-FT-0001", "FT-12-3", "hh-sample", "usage")
    for channel_type, kind, audience in CHANNEL_FAMILIES:
        rendered = templates.render(family, channel_type=channel_type, family=kind, audience=audience)
        text = f"{rendered.title}\n{rendered.body}\n{rendered.html or ''}"
        assert not [word for word in hidden if word in text], (channel_type, kind)
        assert ("已通知：家属、网格员" if language == "zh-CN" else "Told so far: family, grid worker") in text
        if audience == "person":  # the control: the same alert as staff read it shows the address
            shown = templates.render(staff, channel_type=channel_type, family=kind, audience=audience)
            assert "莲花路 12 号" in shown.body
    # An SMS names the home, else its grid cell: a family's body has no cell to fall back on.
    homeless = sample_notification(event_type, language=language, household=False, role="family")
    assert dict(template_variables(homeless, params=("name",), max_chars=35)) == {"name": "住户"}
    staff_homeless = sample_notification(event_type, language=language, household=False)
    assert dict(template_variables(staff_homeless, params=("name",), max_chars=35)) == {"name": "网格FT-12-3"}
    check_in = Notification("msg-x", sample_notification("alert.check_in").payload, "resident")
    assert check_in.data == {"view": "resident", "alert_id": "al-sample", "question": CHECK_IN_QUESTION}
