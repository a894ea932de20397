"""A resident answers a check-in by text message: "1" (我很好) or "2" (我不在家, optionally with the day they
are back, "2 12-10"), sent to the deployment's SMS number and forwarded by the SMS provider's inbound
callback (``POST /v1/sms/replies``).

The reply counts only from the phone the check-in was sent to, for the latest check-in still waiting on
it; anything else changes nothing and says why. A reply is recorded like the answer link it stands for
(``ActionLinkUse``), so the same answer does not act twice.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.channels.types import ChannelType
from alerts.check_ins import CHECK_IN_EVENT, answer_away, answer_fine
from alerts.lifecycle import LifecycleError
from alerts.models import ActionLinkUse, Alert, Delivery, Endpoint, Household, Recipient
from alerts.pipeline import RouterConfig
from alerts.policy import RESIDENT
from alerts.secret_box import SecretBox
from alerts.statuses import AlertStatus, EndpointStatus

_FINE = re.compile(r"^(1|好|我很好|很好|没事|ok)$", re.IGNORECASE)
_AWAY = re.compile(r"^(2|不在家|我不在家)\s*(?P<day>.*)$")
_MONTH_DAY = re.compile(r"^(?:(?P<year>\d{4})[-/.年])?(?P<month>\d{1,2})[-/.月](?P<day>\d{1,2})日?$")


class ReplyError(ValueError):
    """A reply that changes nothing; ``status`` is the HTTP status the callback answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ReplyResult:
    action: str  # fine | away
    alert_id: str
    message: str


def parse_reply(text: str) -> tuple[str, str | None]:
    """("fine", None), ("away", "MM-DD" or "YYYY-MM-DD" or None), or ReplyError(422)."""
    cleaned = unicodedata.normalize("NFKC", text).strip().rstrip("。.!！")
    if _FINE.match(cleaned):
        return "fine", None
    away = _AWAY.match(cleaned)
    if away:
        return "away", away.group("day").strip() or None
    raise ReplyError(
        422, "reply 1 (我很好 / I'm fine) or 2 (我不在家 / I'm away, e.g. 2 12-10 for back on 10 December)"
    )


def back_on(day_text: str | None, *, today: date, max_days: int) -> str:
    """The day the resident is back, as YYYY-MM-DD: the date they gave (the next such date), or without one
    the longest away mode allows (water use at home ends it sooner)."""
    if not day_text:
        return (today + timedelta(days=max_days - 1)).isoformat()
    match = _MONTH_DAY.match(day_text)
    if match is None:
        raise ReplyError(422, f"{day_text[:20]!r} is not a day: write it as 12-10 or 12月10日")
    year = int(match.group("year") or today.year)
    try:
        day = date(year, int(match.group("month")), int(match.group("day")))
    except ValueError:
        raise ReplyError(422, f"{day_text[:20]!r} is not a day of the calendar") from None
    if match.group("year") is None and day < today:
        day = day.replace(year=today.year + 1)  # "1-05" in December: next January
    return day.isoformat()


def answer_by_reply(
    session: Session,
    *,
    phone: str,
    text: str,
    now: datetime,
    config: RouterConfig,
    box: SecretBox,
    ttl: timedelta,
) -> ReplyResult:
    """Apply one text-message reply; ReplyError when it cannot be (unknown number, nothing waiting, bad code)."""
    action, day_text = parse_reply(text)
    delivery = _waiting_check_in(session, phone=phone, now=now, box=box, ttl=ttl)
    alert = session.get(Alert, delivery.alert_id)
    recipient = session.get(Recipient, delivery.recipient_id)
    assert alert is not None and recipient is not None  # foreign keys
    by = f"{recipient.name} ({recipient.id}, via SMS reply)"
    try:
        if action == "fine":
            answer_fine(session, alert, by=by, now=now, config=config)
            message = "已记录：您很好，谢谢。"
        else:
            household = session.get(Household, alert.household_id) if alert.household_id else None
            zone = ZoneInfo(household.timezone) if household else ZoneInfo("Asia/Shanghai")
            max_days = round(config.away_max / timedelta(days=1))
            until = back_on(day_text, today=now.astimezone(zone).date(), max_days=max_days)
            answer_away(session, alert, by=by, until=until, now=now, config=config)
            message = f"已记录：您不在家，{until} 前回来；回家后一用水，守望就恢复照看。"
    except LifecycleError as exc:
        raise ReplyError(409, str(exc)) from exc
    session.add(ActionLinkUse(delivery_id=delivery.id, action=action, used_at=now))
    session.flush()
    return ReplyResult(action, alert.id, message)


def _waiting_check_in(session: Session, *, phone: str, now: datetime, box: SecretBox, ttl: timedelta) -> Delivery:
    """The latest check-in sent to this phone that still waits for an answer."""
    endpoints = session.execute(
        select(Endpoint.id, Endpoint.sealed_config)
        .join(Recipient, Endpoint.recipient_id == Recipient.id)
        .where(
            Endpoint.type == ChannelType.SMS,
            Endpoint.status == EndpointStatus.ACTIVE,
            Recipient.role == RESIDENT,
        )
    ).all()
    # Phone numbers are sealed with the rest of the channel's configuration: residents are few per deployment.
    mine = [endpoint_id for endpoint_id, sealed in endpoints if sealed and box.open(sealed).get("phone") == phone]
    if not mine:
        raise ReplyError(404, "no resident is asked on this phone number: the reply changes nothing")
    delivery = session.scalar(
        select(Delivery)
        .join(Alert, Delivery.alert_id == Alert.id)
        .where(
            Delivery.endpoint_id.in_(mine),
            Delivery.event_type == CHECK_IN_EVENT,
            Delivery.created_at > now - ttl,
            Alert.status != AlertStatus.RESOLVED,
        )
        .order_by(Delivery.created_at.desc())
        .limit(1)
    )
    if delivery is None:
        raise ReplyError(404, "no check-in is waiting for an answer from this number: the reply changes nothing")
    return delivery
