"""Away mode set by the family, told to the household's grid worker.

A family member who sets away mode (travel, hospital) mutes the home's 'no water use' alarms; the grid worker
who looks after the home must know it is empty and that those alarms are muted until then, or they would read
the quiet as good news. ``announce_away`` records one ``household.away`` message per active endpoint of each
grid worker whose subscription covers the household (the household itself, its grid cell or its community),
in the caller's transaction, like any outbox row. It is about no alert: no alert id, no action links.

Only a family member's setting is announced: staff who set it know already, and a resident's own answer
("我不在家") goes through the check-in. Nothing is told once consent is withdrawn.
"""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from alerts import metrics
from alerts.channels import wording
from alerts.models import Delivery, Household, Recipient, Subscription
from alerts.notifications import outbox_rows

EVENT_TYPE = "household.away"
ROLE = "grid_worker"
FAMILY_ACTOR = "family:"  # how the API records a family member's key as the actor (api.auth.Principal.actor)


def announce_away(
    session: Session, household: Household, *, by: str, until: datetime, note: str | None, now: datetime
) -> list[Delivery]:
    """Tell the household's grid workers that the family set away mode until ``until``; the outbox rows
    recorded (none when ``by`` is not a family member, or consent was withdrawn)."""
    if not by.startswith(FAMILY_ACTOR) or not household.consent_active:
        return []
    workers = grid_workers_of(session, household)
    if not workers:
        return []
    payload = away_payload(household, by=by, until=until, note=note, now=now)
    deliveries = []
    for recipient in workers:
        deliveries += outbox_rows(
            session, recipient_id=recipient.id, alert_id=None, event_type=EVENT_TYPE, tier=0, payload=payload, now=now
        )
        metrics.NOTIFICATIONS.labels(EVENT_TYPE, ROLE).inc()
    return deliveries


def grid_workers_of(session: Session, household: Household) -> list[Recipient]:
    """Grid workers subscribed to this household, its grid cell or its community (a grid worker is never
    subscribed to everything). Kinds and severity of a subscription do not apply: this is about the home."""
    scopes: list[ColumnElement[bool]] = [
        Subscription.household_id == household.id,
        Subscription.grid_cell == household.grid_cell,
    ]
    if household.community:
        scopes.append(Subscription.community == household.community)
    query = (
        select(Recipient)
        .join(Subscription, Subscription.recipient_id == Recipient.id)
        .where(Recipient.role == ROLE, or_(*scopes))
        .distinct()
        .order_by(Recipient.id)
    )
    return list(session.scalars(query))


def compose(household: Household, until: datetime) -> dict[str, str]:
    """The message in both languages, the end of away mode on the household's clock (12月10日 18:00)."""
    local = until.astimezone(_zone(household.timezone))
    zh, en = wording.AWAY_MESSAGE
    return {
        "zh": zh.format(name=household.name, until=f"{local.month}月{local.day}日 {local:%H:%M}"),
        "en": en.format(name=household.name, until=f"{local.day} {wording.MONTHS_EN[local.month - 1]} {local:%H:%M}"),
    }


def away_payload(household: Household, *, by: str, until: datetime, note: str | None, now: datetime) -> str:
    """The webhook body (docs/webhook-payload.schema.json, ``household.away``)."""
    data = {
        "household": {
            "id": household.id,
            "name": household.name,
            "address": household.address,
            "timezone": household.timezone,
        },
        "grid_cell": household.grid_cell,
        "away_until": until.astimezone(_zone(household.timezone)).isoformat(timespec="seconds"),
        "set_by": by,
        "note": note,
        "message": compose(household, until),
    }
    body = {"type": EVENT_TYPE, "timestamp": now.isoformat(timespec="seconds"), "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Shanghai")  # the API refuses unknown zones; an old row with one still says a time
