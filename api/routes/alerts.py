"""Alerts in the caller's scope: list, detail with notification history, acknowledge, resolve. Each read and
change is recorded in the audit trail (alerts/audit.py), a change in the transaction that makes it."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from sqlalchemy import Select, and_, exists, or_, select

from alerts.audit import record
from alerts.lifecycle import LifecycleError, acknowledge, resolve
from alerts.models import Alert, Delivery, DeliveryAttempt, Household, utcnow
from alerts.pipeline import router_config
from alerts.policy import ROLE_KINDS
from alerts.statuses import AlertStatus
from api.auth import Principal
from api.deps import ActorDep, Reader, SessionDep, Staff
from api.errors import ERROR_RESPONSES, ApiError, error_responses, not_found
from api.schemas import AlertDetail, AlertOut, AlertPage, AttemptOut, Kind, NotificationOut, Resolve
from shouwang.events import GridCell, Timestamp

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], responses=ERROR_RESPONSES)
PAGE = 50


def alert_out(alert: Alert) -> AlertOut:
    return AlertOut(
        id=alert.id,
        kind=alert.kind,
        severity=alert.severity,
        status=alert.status,
        meter_id=alert.meter_id,
        household_id=alert.household_id,
        grid_cell=alert.grid_cell,
        since=alert.since,
        raised_at=alert.raised_at,
        explanation={"zh": alert.explanation_zh, "en": alert.explanation_en},
        facts=alert.facts or {},
        silenced_by=alert.silenced_by,
        acknowledged_at=alert.acknowledged_at,
        acknowledged_by=alert.acknowledged_by,
        family_seen_at=alert.family_seen_at,
        family_seen_by=alert.family_seen_by,
        resolved_at=alert.resolved_at,
        resolved_by=alert.resolved_by,
        outcome=alert.outcome,
        resolution_note=alert.resolution_note,
        escalation_tier=alert.escalation_tier,
        check_in=alert.check_in,
    )


def _scoped(query: Select[Alert], principal: Principal) -> Select[Alert]:
    if principal.role == "operator":
        return query
    if principal.role == "family":
        # Their elder's water-use alerts only: meter glitches and batteries are staff matters.
        # A silence the resident was asked about first shows only once the family was told of it: settled
        # with the resident (or by water use) before that, nobody else hears of it, here neither.
        told_this_family = exists().where(
            Delivery.alert_id == Alert.id, Delivery.recipient_id == (principal.recipient_id or "")
        )
        return query.where(
            Alert.household_id.in_(principal.household_ids or {""}),
            Alert.kind.in_(ROLE_KINDS["family"]),
            or_(Alert.silenced_by.is_(None), Alert.silenced_by != "consent"),
            or_(Alert.check_in.is_(None), told_this_family),
        )
    cells = principal.grid_cells or {""}
    if principal.role == "supervisor" and principal.community:
        in_community = select(Household.id).where(Household.community == principal.community)
        # Incidents and hotspots have no household: the community's cells are where its homes are.
        community_cells = select(Household.grid_cell).where(Household.community == principal.community)
        return query.where(
            or_(
                Alert.grid_cell.in_(cells),
                Alert.household_id.in_(in_community),
                and_(Alert.household_id.is_(None), Alert.grid_cell.in_(community_cells)),
            )
        )
    return query.where(Alert.grid_cell.in_(cells))


def visible_alert(session: SessionDep, principal: Principal, alert_id: str) -> Alert:
    alert = session.scalar(_scoped(select(Alert).where(Alert.id == alert_id), principal))
    if alert is None:
        raise not_found(f"alert {alert_id}")
    return alert


def _cursor(alert: Alert) -> str:
    return base64.urlsafe_b64encode(f"{alert.raised_at.isoformat()}|{alert.id}".encode()).decode()


def _after(cursor: str) -> tuple[datetime, str]:
    try:
        stamp, alert_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        at = datetime.fromisoformat(stamp)
        if at.tzinfo is None or "\x00" in alert_id:  # the store refuses these (that was a 500)
            raise ValueError("not a cursor")
        return at.astimezone(UTC), alert_id
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError(422, "invalid_request", "cursor: not a cursor this API returned") from exc


@router.get("", response_model=AlertPage, summary="Alerts in the caller's scope, newest first")
def list_alerts(
    session: SessionDep,
    principal: Reader,
    actor: ActorDep,
    household_id: Annotated[str | None, Query(max_length=32)] = None,
    grid_cell: GridCell | None = None,
    status: Literal["checking", "raised", "acknowledged", "resolved", "open"] | None = None,
    kind: Kind | None = None,
    since: Annotated[Timestamp | None, Query(description="Raised at or after (ISO 8601 with offset)")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = PAGE,
) -> AlertPage:
    query = _scoped(select(Alert), principal)
    if household_id is not None:
        query = query.where(Alert.household_id == household_id)
    if grid_cell is not None:
        query = query.where(Alert.grid_cell == grid_cell)
    if status == "open":
        query = query.where(Alert.status != AlertStatus.RESOLVED)
    elif status is not None:
        query = query.where(Alert.status == status)
    if kind is not None:
        query = query.where(Alert.kind == kind)
    if since is not None:
        query = query.where(Alert.raised_at >= since)
    if cursor is not None:
        stamp, last_id = _after(cursor)
        query = query.where(or_(Alert.raised_at < stamp, and_(Alert.raised_at == stamp, Alert.id < last_id)))
    rows = list(session.scalars(query.order_by(Alert.raised_at.desc(), Alert.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    # One event for the page: the filter asked for, the alerts returned and the households they are about.
    asked = {
        "household_id": household_id,
        "grid_cell": grid_cell,
        "status": status,
        "kind": kind,
        "since": since.isoformat() if since else None,
        "cursor": cursor,
    }
    record(
        session,
        actor,
        "alert.list",
        "alert",
        households=[a.household_id for a in rows if a.household_id],
        detail={"filter": {k: v for k, v in asked.items() if v is not None}, "ids": [a.id for a in rows]},
    )
    return AlertPage(items=[alert_out(a) for a in rows], next_cursor=_cursor(rows[-1]) if more and rows else None)


@router.get("/{alert_id}", response_model=AlertDetail, summary="One alert with its notification history")
def get_alert(alert_id: str, session: SessionDep, principal: Reader, actor: ActorDep) -> AlertDetail:
    alert = visible_alert(session, principal, alert_id)
    query = select(Delivery).where(Delivery.alert_id == alert.id).order_by(Delivery.created_at, Delivery.id)
    if principal.role == "family":  # a family sees what was sent to them, not to staff
        query = query.where(Delivery.recipient_id == (principal.recipient_id or ""))
    notifications = []
    for delivery in session.scalars(query):
        attempts = session.scalars(
            select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery.id).order_by(DeliveryAttempt.id)
        )
        notifications.append(
            NotificationOut(
                id=delivery.id,
                recipient_id=delivery.recipient_id,
                event_type=delivery.event_type,
                tier=delivery.tier,
                status=delivery.status,
                attempts=delivery.attempts,
                created_at=delivery.created_at,
                delivered_at=delivery.delivered_at,
                last_error=delivery.last_error,
                history=[
                    AttemptOut(at=a.at, outcome=a.outcome, status_code=a.status_code, error=a.error) for a in attempts
                ],
            )
        )
    # The deliveries shown are read too: their ids go with the alert's.
    record(
        session,
        actor,
        "alert.read",
        "alert",
        alert.id,
        household_id=alert.household_id,
        detail={"deliveries": [n.id for n in notifications]},
    )
    return AlertDetail(**alert_out(alert).model_dump(), notifications=notifications)


@router.post(
    "/{alert_id}/ack",
    response_model=AlertOut,
    responses=error_responses(409),
    summary="Acknowledge. Staff: escalation and reminders stop (until the severity's SHOUWANG_STAFF_ACK_TIMEOUT). "
    "Family: 'family has seen it', the staff tiers go on",
)
def ack(alert_id: str, session: SessionDep, principal: Reader, request: Request, actor: ActorDep) -> AlertOut:
    alert = visible_alert(session, principal, alert_id)
    try:
        acknowledge(
            session,
            alert,
            by=f"{principal.name} ({principal.actor})",
            now=utcnow(),
            role=principal.role,
            config=router_config(request.app.state.settings),
        )
    except LifecycleError as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    record(session, actor, "alert.acknowledge", "alert", alert.id, household_id=alert.household_id)
    return alert_out(alert)


@router.post(
    "/{alert_id}/resolve", response_model=AlertOut, responses=error_responses(409), summary="Resolve with an outcome"
)
def resolve_alert(
    alert_id: str, body: Resolve, session: SessionDep, principal: Staff, request: Request, actor: ActorDep
) -> AlertOut:
    alert = visible_alert(session, principal, alert_id)
    try:
        resolve(
            session,
            alert,
            by=f"{principal.name} ({principal.actor})",
            outcome=body.outcome,
            note=body.note,
            now=utcnow(),
            config=router_config(request.app.state.settings),
        )
    except LifecycleError as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    record(session, actor, "alert.resolve", "alert", alert.id, household_id=alert.household_id)
    return alert_out(alert)
