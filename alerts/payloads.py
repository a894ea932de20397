"""The JSON body of every webhook (schema: ``docs/webhook-payload.schema.json``).

Shape follows Standard Webhooks' recommendation: ``{"type", "timestamp", "data"}``. The body is
rendered once, when the delivery is recorded, and stored: a resend is byte-identical.

An alert's body is the view its recipient's role reads (``data.view``), chosen here and nowhere else:

- **staff** (grid workers, supervisors, operators): the full alert, the body as it always was (no
  ``view`` field): meter, grid cell, the household's id and address, the detector's facts (the hourly
  water-use series), the tier, who in the family has seen it;
- **family**: what a relative needs to act for their elder: the elder as they call them, what happened
  in plain words, severity, times, status, how it ended, their acknowledge link and which roles have
  been told. No address (they know it), no meter, grid cell or household id, no facts;
- **resident**: the check-in's question; its answers are added as signed links when it is sent.

Channel messages (chat, SMS, email) are rendered from the same stored body, so a family's message cannot
show more than its webhook does, whatever an override template asks for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.models import Alert, Delivery, Endpoint, Household, Recipient, Subscription
from alerts.policy import RESIDENT, ROLES
from alerts.statuses import AlertStatus, EndpointStatus

EVENT_TYPES = (
    "alert.raised",
    "alert.updated",
    "alert.escalated",
    "alert.reminder",
    "alert.resolved",
    "endpoint.ping",
    "alert.check_in",  # to the resident only: "are you well?" (alerts/check_ins.py)
    "household.all_is_well",  # to a family that opted in: the day started as usual (alerts/all_is_well.py)
    "household.away",  # to the grid worker: the family set away mode, the home is empty (alerts/away_notice.py)
    "report.monthly",  # to a supervisor on the 1st: last month's report of their community (monthly_report_send.py)
)
# Messages about no alert: they carry no action links (there is nothing to acknowledge).
NO_ALERT_EVENTS = frozenset({"household.all_is_well", "household.away", "report.monthly"})

STAFF_VIEW, FAMILY_VIEW, RESIDENT_VIEW = "staff", "family", "resident"
STAFF_ROLES = frozenset({"grid_worker", "supervisor", "operator"})
# What a resident's device (a smart speaker, a voice-call service) says; the answers follow as links.
CHECK_IN_QUESTION = {
    "zh": "您好，今天还没看到用水，您还好吗？",
    "en": "Hello, we have not seen any water use today. Are you well?",
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def view_of(role: str) -> str:
    """The view a recipient's role reads. A role this code does not know reads the family's: the least
    that still says what happened, never the staff's by default."""
    if role in STAFF_ROLES:
        return STAFF_VIEW
    return RESIDENT_VIEW if role == RESIDENT else FAMILY_VIEW


def alert_data(*, alert: Alert, household: Household | None, tier: int, public_url: str) -> dict[str, Any]:
    """The full alert: the staff view, and what the other views are cut from."""
    data: dict[str, Any] = {
        "alert_id": alert.id,
        "status": alert.status,
        "kind": alert.kind,
        "severity": alert.severity,
        "since": _iso(alert.since),
        "at": _iso(alert.raised_at),
        "meter_id": alert.meter_id,
        "grid_cell": alert.grid_cell,
        "household": None
        if household is None
        else {
            "id": household.id,
            "name": household.name,
            "address": household.address,
            "timezone": household.timezone,
        },
        "explanation": {"zh": alert.explanation_zh, "en": alert.explanation_en},
        "facts": alert.facts or {},
        "tier": tier,
        "acknowledge_url": f"{public_url.rstrip('/')}/v1/alerts/{alert.id}/ack",
    }
    if alert.family_seen_at is not None:  # staff read that the family knows; their tier still acts
        data["family_seen"] = {"by": alert.family_seen_by, "at": _iso(alert.family_seen_at)}
    if alert.status == AlertStatus.RESOLVED:
        data["resolution"] = {
            "outcome": alert.outcome,
            "by": alert.resolved_by,
            "at": _iso(alert.resolved_at),
            "note": alert.resolution_note,
        }
    return data


def family_view(data: Mapping[str, Any], *, call: str | None = None, told: Sequence[str] = ()) -> dict[str, Any]:
    """A relative's view of the full alert ``data``. Fields are copied by name, never removed from a copy:
    a field added to the staff view one day reaches no family until it is named here."""
    household = data.get("household")
    view: dict[str, Any] = {
        "view": FAMILY_VIEW,
        **{key: data[key] for key in ("alert_id", "status", "kind", "severity", "since", "at")},
        # The elder as this relative calls them (their subscription's 妈妈), else the household's name.
        "household": None
        if not isinstance(household, Mapping)
        else {"name": call or household["name"], "timezone": household["timezone"]},
        "explanation": dict(data["explanation"]),
        "acknowledge_url": data["acknowledge_url"],
        "told": list(told),
    }
    resolution = data.get("resolution")
    if isinstance(resolution, Mapping):  # how it ended and when; not who (a staff key) nor staff's note
        view["resolution"] = {"outcome": resolution["outcome"], "at": resolution["at"]}
    return view


def resident_view(data: Mapping[str, Any]) -> dict[str, Any]:
    """The elder's view of a check-in: the question (the answers are added, signed, when it is sent)."""
    return {"view": RESIDENT_VIEW, "alert_id": data["alert_id"], "question": dict(CHECK_IN_QUESTION)}


def view_for(
    role: str, data: Mapping[str, Any], *, call: str | None = None, told: Sequence[str] = ()
) -> Mapping[str, Any]:
    """The full alert ``data`` as ``role`` reads it."""
    view = view_of(role)
    if view == STAFF_VIEW:
        return data
    return resident_view(data) if view == RESIDENT_VIEW else family_view(data, call=call, told=told)


def _body(event_type: str, now: datetime, data: Mapping[str, Any]) -> str:
    body = {"type": event_type, "timestamp": _iso(now), "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def alert_payload(
    *, event_type: str, alert: Alert, household: Household | None, tier: int, now: datetime, public_url: str
) -> str:
    """The staff view's body."""
    return _body(event_type, now, alert_data(alert=alert, household=household, tier=tier, public_url=public_url))


def alert_payloads(
    session: Session,
    *,
    alert: Alert,
    household: Household | None,
    recipients: Sequence[Recipient],
    event_type: str,
    tier: int,
    now: datetime,
    public_url: str,
) -> dict[str, str]:
    """Each recipient's body (by recipient id): the view of their role. Equal bodies are rendered once."""
    data = alert_data(alert=alert, household=household, tier=tier, public_url=public_url)
    told: list[str] | None = None
    rendered: dict[tuple[str, str | None], str] = {}
    bodies: dict[str, str] = {}
    for recipient in recipients:
        view, call = view_of(recipient.role), None
        if view == FAMILY_VIEW:
            told = told_roles(session, alert, recipients) if told is None else told
            call = elder_as_called(session, recipient.id, household)
        key = (view, call)
        if key not in rendered:
            rendered[key] = _body(event_type, now, view_for(recipient.role, data, call=call, told=told or ()))
        bodies[recipient.id] = rendered[key]
    return bodies


def told_roles(session: Session, alert: Alert, recipients: Iterable[Recipient]) -> list[str]:
    """The carers' roles notified about ``alert`` so far, these ``recipients`` (those with a working
    channel) included, in escalation order: who else knows, never who by name."""
    before = session.scalars(
        select(Recipient.role)
        .join(Delivery, Delivery.recipient_id == Recipient.id)
        .where(Delivery.alert_id == alert.id)
    )
    now = session.scalars(
        select(Recipient.role)
        .join(Endpoint, Endpoint.recipient_id == Recipient.id)
        .where(Recipient.id.in_([r.id for r in recipients]), Endpoint.status == EndpointStatus.ACTIVE)
    )
    roles = {*before, *now} - {RESIDENT}
    return [role for role in ROLES if role in roles]


def elder_as_called(session: Session, recipient_id: str, household: Household | None) -> str | None:
    """What this relative calls the elder, when their subscription to the household says (all_is_well_call)."""
    if household is None:
        return None
    return session.scalar(
        select(Subscription.all_is_well_call)
        .where(
            Subscription.recipient_id == recipient_id,
            Subscription.household_id == household.id,
            Subscription.all_is_well_call.is_not(None),
        )
        .limit(1)
    )


def ping_payload(*, endpoint_id: str, now: datetime) -> str:
    body = {"type": "endpoint.ping", "timestamp": _iso(now), "data": {"endpoint_id": endpoint_id}}
    return json.dumps(body, separators=(",", ":"))
