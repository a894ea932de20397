"""The audit trail: who read or changed which household, alert or delivery, when, from where.

One append-only table, ``audit_events``. The API writes a row in the same transaction as each change it
makes (a change that fails leaves no row) and one per request that reads households, alerts or their
deliveries. A row holds ids only (the key or recipient that acted, the object, the household), never a
name, an address or a note: the trail itself must not become another copy of the personal data.

The database refuses to UPDATE or DELETE a row (triggers made by its migration, on SQLite and on
PostgreSQL); no route changes one. See docs/PRIVACY.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, Select, String, Text, cast, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from alerts.models import Base, utcnow

# Every action the trail records, as "<object>.<verb>": reads first, then changes. GET /v1/audit refuses
# a filter on any other name, so a typo is an error rather than an empty answer.
READS = frozenset(
    {
        "household.list",
        "household.read",
        "alert.list",
        "alert.read",  # with the deliveries (notifications) shown
        "recipient.read",
        "subscription.list",
        "audit.list",
        "audit.export",
        "household.export",  # everything held about one household (a data-subject request)
        "report.read",  # a community's monthly report: it lists the month's emergencies and offline meters by id
    }
)
WRITES = frozenset(
    {
        "household.create",
        "household.update",
        "household.erase",
        "meter.create",
        "consent.withdraw",
        "consent.grant",
        "away.set",
        "away.end",
        "recipient.create",
        "recipient.rotate_secret",
        "recipient.ping",
        "subscription.create",
        "subscription.delete",
        "key.issue",
        "key.revoke",
        "secrets.rotate",  # every sealed value encrypted again under the newest key (shouwang secrets rotate)
        "alert.acknowledge",
        "alert.resolve",
        "check_in.fine",
        "check_in.away",
        "silence.create",
        "silence.expire",
        "incident.submit",
    }
)
ACTIONS = READS | WRITES


class AuditEvent(Base):
    """One read or change. ``households`` lists the households a list read returned data of (a list
    has no single household); ``detail`` holds ids and filters only, never free text."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_household_at", "household_id", "at"),
        Index("ix_audit_events_actor_at", "actor", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64))  # an API key id (key_…), a recipient id (rcp_…), cli:<user>
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    # No foreign key: the trail outlives an erased household, and must not stop its erasure.
    household_id: Mapped[str | None] = mapped_column(String(32))
    households: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    request_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(String(64))  # the client's address as the server saw it


@dataclass(frozen=True)
class Actor:
    """Who acts, and the request they act through (the API fills these from the key and the request)."""

    id: str
    role: str
    request_id: str | None = None
    source: str | None = None


def record(
    session: Session,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str | None = None,
    *,
    household_id: str | None = None,
    households: list[str] | None = None,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEvent:
    """Add one event to ``session``: it commits, or rolls back, with whatever else the session does."""
    if action not in ACTIONS:  # a programming error: an unknown name could never be filtered on
        raise ValueError(f"unknown audit action {action!r}")
    event = AuditEvent(
        at=now or utcnow(),
        actor=actor.id[:64],
        role=actor.role[:16],
        action=action,
        object_type=object_type,
        object_id=object_id,
        household_id=household_id,
        households=sorted(set(households)) if households is not None else None,
        detail=detail,
        request_id=actor.request_id,
        source=(actor.source or "")[:64] or None,
    )
    session.add(event)
    return event


def find(
    *,
    household_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select[AuditEvent]:
    """Events matching every filter given (``since`` inclusive, ``until`` exclusive), unordered. A household
    matches the events about it and the list reads that returned its data."""
    query = select(AuditEvent)
    if household_id is not None:
        # Ids are letters, digits and "_": only "_" (and "%", "\\" in a bad filter) need escaping for LIKE.
        escaped = household_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(
            or_(
                AuditEvent.household_id == household_id,
                cast(AuditEvent.households, Text).like(f'%"{escaped}"%', escape="\\"),
            )
        )
    if actor is not None:
        query = query.where(AuditEvent.actor == actor)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if object_id is not None:
        query = query.where(AuditEvent.object_id == object_id)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    return query


def as_dict(event: AuditEvent) -> dict[str, Any]:
    """One event as JSON-ready values (the API's answer and the export's lines)."""
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "role": event.role,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "household_id": event.household_id,
        "households": event.households,
        "detail": event.detail,
        "request_id": event.request_id,
        "source": event.source,
    }
