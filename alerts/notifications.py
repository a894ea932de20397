"""Recipients of an alert and the outbox rows that notify them.

Shared by the router's stages (first notification, all-clear) and by the timers (escalation,
reminders), so every notification is recorded the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from alerts import metrics
from alerts.models import Alert, Delivery, Endpoint, Household, Recipient, Subscription
from alerts.payloads import alert_payloads
from alerts.policy import RESIDENT, ROLE_KINDS, severity_at_least
from alerts.statuses import DeliveryStatus, EndpointStatus
from alerts.webhooks import new_message_id

MAX_AREA_CELLS = 21  # a centre and at most 20 neighbours (detectors/incidents/area.py, MAX_NEIGHBOURS)


def subscribed_recipients(
    session: Session, *, alert: Alert, household: Household | None, roles: Iterable[str]
) -> list[Recipient]:
    """Recipients of these roles whose subscriptions cover this alert's household or cell."""
    roles = set(roles)
    if not roles:
        return []
    scopes: list[ColumnElement[bool]] = [
        (Subscription.household_id.is_(None) & Subscription.grid_cell.is_(None) & Subscription.community.is_(None))
    ]  # staff subscribed to everything
    grid_cell = household.grid_cell if household else alert.grid_cell
    if household is not None:
        scopes.append(Subscription.household_id == household.id)
        if household.community:
            scopes.append(Subscription.community == household.community)
    if grid_cell:
        scopes.append(Subscription.grid_cell == grid_cell)
    if household is None and (cells := area_cells(alert)):
        scopes.append(Subscription.grid_cell.in_(cells))
    rows = session.execute(
        select(Subscription, Recipient)
        .join(Recipient, Subscription.recipient_id == Recipient.id)
        .where(Recipient.role.in_(roles), or_(*scopes))
        .order_by(Recipient.id)
    ).all()
    chosen: dict[str, Recipient] = {}
    for subscription, recipient in rows:
        if not _subscription_admits(subscription, recipient, alert, household):
            continue
        chosen.setdefault(recipient.id, recipient)
    return list(chosen.values())


def area_cells(alert: Alert) -> list[str]:
    """The grid cells of an area hotspot (its fact ``cells``, comma-separated, the centre included): each
    cell's grid workers are told, not only the centre's, since the reports came from all of them."""
    cells = (alert.facts or {}).get("cells")
    if not isinstance(cells, str):
        return []
    return [cell.strip() for cell in cells.split(",") if cell.strip()][:MAX_AREA_CELLS]


def _subscription_admits(
    subscription: Subscription, recipient: Recipient, alert: Alert, household: Household | None
) -> bool:
    if alert.kind not in ROLE_KINDS.get(recipient.role, frozenset()):
        return False
    # A family member (or the resident) hears only about the household subscribed to, never a whole cell.
    if recipient.role in {"family", RESIDENT} and (household is None or subscription.household_id != household.id):
        return False
    is_global = not (subscription.household_id or subscription.grid_cell or subscription.community)
    if is_global and recipient.role not in {"supervisor", "operator"}:
        return False
    if subscription.kinds is not None and alert.kind not in subscription.kinds:
        return False
    return severity_at_least(alert.severity, subscription.min_severity)


def previously_notified(session: Session, alert: Alert) -> list[Recipient]:
    """Every carer already told about this alert (they are owed the all-clear and reminders). Not the
    resident: they were asked, and their answer (or their water use) is what ends it."""
    ids = select(Delivery.recipient_id).where(Delivery.alert_id == alert.id).distinct()
    query = select(Recipient).where(Recipient.id.in_(ids), Recipient.role != RESIDENT).order_by(Recipient.id)
    return list(session.scalars(query))


def record_notifications(
    session: Session,
    *,
    alert: Alert,
    household: Household | None,
    recipients: Iterable[Recipient],
    event_type: str,
    tier: int,
    now: datetime,
    public_url: str,
) -> list[Delivery]:
    """One outbox row per active endpoint of each recipient, in the caller's transaction; each body is the
    view of the recipient's role (alerts/payloads.py)."""
    deliveries = []
    chosen = list(recipients)
    bodies = alert_payloads(
        session,
        alert=alert,
        household=household,
        recipients=chosen,
        event_type=event_type,
        tier=tier,
        now=now,
        public_url=public_url,
    )
    for recipient in chosen:
        deliveries += outbox_rows(
            session,
            recipient_id=recipient.id,
            alert_id=alert.id,
            event_type=event_type,
            tier=tier,
            payload=bodies[recipient.id],
            now=now,
        )
        metrics.NOTIFICATIONS.labels(event_type, recipient.role).inc()
    return deliveries


def outbox_rows(
    session: Session,
    *,
    recipient_id: str,
    alert_id: str | None,
    event_type: str,
    tier: int,
    payload: str,
    now: datetime,
) -> list[Delivery]:
    """One pending outbox row per active endpoint of the recipient, added to the caller's transaction
    (``alert_id`` None: a message about no alert, such as all-is-well or away mode)."""
    endpoints = session.scalars(
        select(Endpoint)
        .where(Endpoint.recipient_id == recipient_id, Endpoint.status == EndpointStatus.ACTIVE)
        .order_by(Endpoint.id)
    )
    rows = [
        Delivery(
            id=new_message_id(),
            alert_id=alert_id,
            recipient_id=recipient_id,
            endpoint_id=endpoint.id,
            event_type=event_type,
            tier=tier,
            payload=payload,
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for endpoint in endpoints
    ]
    session.add_all(rows)
    return rows
