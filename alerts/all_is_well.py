"""The all-is-well (平安) message: a family member who opted in hears, at a local time of their choosing, that the
elder's day has started as usual — "妈妈今天 07:12 开始用水，一切如常" — or, weekly, how the past week went.

The worker summarises each meter's local day on the daily topic (first water use, litres, hours with use); the
router keeps the latest summary per meter and day (``record_day``). A timer (``all_is_well_due``, from
``Router.run_timers_once``) sends each opted-in subscription its message once per local day, at or after its
time in the household's zone: a daily one only once the day's first use was seen (a late morning waits for
it, the same day); a weekly one on Mondays, about the seven days before. Nothing is sent while an alert the
family would hear of is open (the alert speaks then), while away mode is on, or once consent is withdrawn.
Each message sent is a unique ``AllIsWellMessage`` row written with its deliveries in one transaction, so
several routers, or a restarted one, never send it twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alerts import metrics
from alerts.db import Store
from alerts.models import (
    Alert,
    AllIsWellMessage,
    Delivery,
    Household,
    Meter,
    MeterDay,
    Recipient,
    Subscription,
)
from alerts.notifications import outbox_rows
from alerts.policy import ROLE_KINDS
from alerts.statuses import AlertStatus
from shouwang.events import DailySummary

log = logging.getLogger(__name__)

EVENT_TYPE = "household.all_is_well"
EVERY = ("day", "week")
DEFAULT_AT = "10:00"
WEEK_DAYS = 7


def record_day(session: Session, summary: DailySummary, *, now: datetime) -> str:
    """Keep the newest summary of the meter's day: ``recorded`` or ``updated``; ``stale`` for an incomplete
    summary of a day already complete (sent again after a crash, it must not shrink the day)."""
    row = session.scalar(select(MeterDay).where(MeterDay.meter_id == summary.meter_id, MeterDay.day == summary.day))
    if row is None:
        row = MeterDay(meter_id=summary.meter_id, day=summary.day)
        session.add(row)
        result = "recorded"
    elif row.complete and not summary.complete:
        return "stale"
    else:
        result = "updated"
    row.first_use_at = summary.first_use_at
    row.litres = summary.litres
    row.hours_with_use = summary.hours_with_use
    row.complete = summary.complete
    row.updated_at = now
    session.flush()
    return result


@dataclass(frozen=True)
class DayOfHome:
    """One local day of a household (all its meters): the earliest first use, litres, hours with use."""

    day: str
    first_use_at: datetime | None
    litres: float
    hours_with_use: int


def all_is_well_due(store: Store, *, now: datetime) -> list[str]:
    """Send every opted-in subscription the message it is due now; the ids of the deliveries recorded.
    One transaction per message, its unique row with it: another router that sent it first wins."""
    with store.transaction() as session:
        rows = session.execute(
            select(Subscription.id, Subscription.all_is_well_every, Subscription.all_is_well_at, Household.timezone)
            .join(Household, Subscription.household_id == Household.id)
            .join(Recipient, Subscription.recipient_id == Recipient.id)
            .where(Subscription.all_is_well_every.is_not(None), Recipient.role == "family")
            .order_by(Subscription.id)
        ).all()
        due = []
        for subscription_id, every, at, timezone in rows:
            try:
                local = now.astimezone(ZoneInfo(timezone))
            except (ZoneInfoNotFoundError, ValueError):
                continue  # the API refuses unknown zones; an old row with one must not stop everyone's messages
            if (every == "week" and local.weekday() != 0) or local.strftime("%H:%M") < (at or DEFAULT_AT):
                continue
            due.append((subscription_id, local.date()))
        sent_days = select(AllIsWellMessage.subscription_id, AllIsWellMessage.day).where(
            AllIsWellMessage.day.in_({today.isoformat() for _, today in due})
        )
        already = {(subscription_id, day) for subscription_id, day in session.execute(sent_days)}
    sent: list[str] = []
    for subscription_id, today in due:
        if (subscription_id, today.isoformat()) in already:
            continue
        try:
            with store.transaction() as session:
                sent.extend(delivery.id for delivery in _send_if_due(session, subscription_id, today, now))
        except IntegrityError:
            log.info("all-is-well of subscription %s for %s was sent by another router", subscription_id, today)
    return sent


def _send_if_due(session: Session, subscription_id: str, today: date, now: datetime) -> list[Delivery]:
    subscription = session.get(Subscription, subscription_id)
    household = (
        session.get(Household, subscription.household_id) if subscription and subscription.household_id else None
    )
    if subscription is None or household is None or not _may_speak(session, household, now):
        return []
    weekly = subscription.all_is_well_every == "week"
    days = _days_of(session, household, _week_before(today) if weekly else [today])
    if weekly:
        if not any(day.first_use_at for day in days):
            return []  # nothing seen all week (a meter not reporting): no "all is well" to say
    elif not days or days[0].first_use_at is None:
        return []  # not seen yet: sent when the morning's first use arrives, later today
    message = compose(household, subscription, days, weekly=weekly)
    payload = all_is_well_payload(household, subscription, today, message, days, weekly=weekly, now=now)
    # The unique row first: a second router's insert fails here (or at the commit) and sends nothing.
    session.add(AllIsWellMessage(subscription_id=subscription.id, day=today.isoformat(), sent_at=now))
    session.flush()
    deliveries = outbox_rows(
        session,
        recipient_id=subscription.recipient_id,
        alert_id=None,
        event_type=EVENT_TYPE,
        tier=0,
        payload=payload,
        now=now,
    )
    metrics.NOTIFICATIONS.labels(EVENT_TYPE, "family").inc()
    return deliveries


def _may_speak(session: Session, household: Household, now: datetime) -> bool:
    if not household.consent_active or household.is_away(now):
        return False
    open_alert = select(Alert.id).where(
        Alert.household_id == household.id,
        Alert.status != AlertStatus.RESOLVED,
        Alert.kind.in_(ROLE_KINDS["family"]),
    )
    return session.scalar(open_alert.limit(1)) is None


def _week_before(monday: date) -> list[date]:
    return [monday - timedelta(days=back) for back in range(WEEK_DAYS, 0, -1)]


def _days_of(session: Session, household: Household, days: Sequence[date]) -> list[DayOfHome]:
    """The household's days in order, its meters together; days nothing was heard of are left out."""
    meters = select(Meter.meter_id).where(Meter.household_id == household.id)
    wanted = [day.isoformat() for day in days]
    rows = session.scalars(select(MeterDay).where(MeterDay.meter_id.in_(meters), MeterDay.day.in_(wanted))).all()
    out = []
    for day in wanted:
        of_day = [row for row in rows if row.day == day]
        if not of_day:
            continue
        uses = [row.first_use_at for row in of_day if row.first_use_at is not None]
        out.append(
            DayOfHome(
                day=day,
                first_use_at=min(uses) if uses else None,
                litres=sum(row.litres for row in of_day),
                hours_with_use=max(row.hours_with_use for row in of_day),
            )
        )
    return out


def compose(
    household: Household, subscription: Subscription, days: Sequence[DayOfHome], *, weekly: bool
) -> dict[str, str]:
    """The message in both languages; the elder is called as the subscription says (妈妈), else by name."""
    call = subscription.all_is_well_call or household.name
    zone = ZoneInfo(household.timezone)
    if not weekly:
        first = days[0].first_use_at
        assert first is not None
        clock = first.astimezone(zone).strftime("%H:%M")
        return {
            "zh": f"{call}今天 {clock} 开始用水，一切如常",
            "en": f"{call} started using water at {clock} today: all is well",
        }
    used = [day for day in days if day.first_use_at is not None]
    minutes = [_minute(day.first_use_at, zone) for day in used if day.first_use_at is not None]
    usual = f"{round(sum(minutes) / len(minutes)) // 60:02d}:{round(sum(minutes) / len(minutes)) % 60:02d}"
    litres = round(sum(day.litres for day in days) / max(len(days), 1))
    if len(used) == WEEK_DAYS:
        return {
            "zh": f"{call}过去 7 天每天都用水，平均 {usual} 开始，每天约 {litres} 升，一切如常",
            "en": f"{call} used water every day of the past 7, starting at {usual} on average, "
            f"about {litres} L a day: all is well",
        }
    return {
        "zh": f"{call}过去 7 天有 {len(used)} 天看到用水，平均 {usual} 开始，每天约 {litres} 升",
        "en": f"{call} used water on {len(used)} of the past 7 days, starting at {usual} on average, "
        f"about {litres} L a day",
    }


def _minute(moment: datetime | None, zone: ZoneInfo) -> int:
    local = moment.astimezone(zone) if moment else None
    return local.hour * 60 + local.minute if local else 0


def all_is_well_payload(
    household: Household,
    subscription: Subscription,
    today: date,
    message: dict[str, str],
    days: Sequence[DayOfHome],
    *,
    weekly: bool,
    now: datetime,
) -> str:
    """The webhook body (docs/webhook-payload.schema.json, ``household.all_is_well``)."""
    zone = ZoneInfo(household.timezone)

    def local(moment: datetime | None) -> str | None:
        return moment.astimezone(zone).isoformat(timespec="seconds") if moment else None

    data: dict[str, Any] = {
        # A family's view (alerts/payloads.py): no address or grid cell. The id stays: consent withdrawal and
        # erasure find a pending message about no alert by the household its body names.
        "household": {"id": household.id, "name": household.name, "timezone": household.timezone},
        "period": "week" if weekly else "day",
        "day": today.isoformat(),
        "call": subscription.all_is_well_call or household.name,
        "first_use_at": None if weekly else local(days[0].first_use_at),
        "days": [
            {
                "day": day.day,
                "first_use_at": local(day.first_use_at),
                "litres": round(day.litres, 1),
                "hours_with_use": day.hours_with_use,
            }
            for day in days
        ],
        "message": message,
    }
    body = {"type": EVENT_TYPE, "timestamp": now.isoformat(timespec="seconds"), "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
