"""The audit trail, for operators: who read or changed which household, alert or delivery (alerts/audit.py).

Read only: no route changes or deletes an event (and the database refuses to). Reading the trail is itself
recorded, so whoever looks at who looked is on it too."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, StringConstraints

from alerts.audit import ACTIONS, AuditEvent, as_dict, find, record
from api.deps import ActorDep, Operator, SessionDep
from api.errors import ERROR_RESPONSES, ApiError
from shouwang.events import Timestamp

router = APIRouter(prefix="/v1", tags=["audit"], responses=ERROR_RESPONSES)
PAGE = 100
# Ids this API hands out (hh_…, key_…, rcp_…, al_…) and cli:<user>: letters, digits and . _ : -
Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="The API key (key_…), the recipient of an action link (rcp_…) or cli:<user>")
    role: str
    action: str = Field(description="<object>.<verb>, e.g. household.read, away.set, key.revoke")
    object_type: str
    object_id: str | None
    household_id: str | None
    households: list[str] | None = Field(description="A list read: the households whose data it returned")
    detail: dict[str, Any] | None = Field(description="Ids and filters only: a list's ids, the fields changed, …")
    request_id: str | None = Field(description="The request's X-Request-ID")
    source: str | None = Field(description="The client's address as the API saw it")


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_cursor: str | None = Field(description="Pass as cursor for the next (older) page; null on the last")


def _cursor(value: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise ApiError(422, "invalid_request", "cursor: not a cursor this API returned")
    return int(value)


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="Audit events, newest first (operators): filter by household, actor, action, object, time",
)
def list_audit_events(
    session: SessionDep,
    _: Operator,
    actor_of_request: ActorDep,
    household_id: Annotated[
        Id | None, Query(description="Events about this household, and list reads that returned it")
    ] = None,
    actor: Annotated[Id | None, Query(description="A key id (key_…), a recipient id (rcp_…) or cli:<user>")] = None,
    action: Annotated[str | None, Query(max_length=32, description="e.g. household.read")] = None,
    object_id: Annotated[Id | None, Query()] = None,
    since: Annotated[Timestamp | None, Query(description="At or after (ISO 8601 with offset)")] = None,
    until: Annotated[Timestamp | None, Query(description="Before (ISO 8601 with offset)")] = None,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = PAGE,
) -> AuditPage:
    if action is not None and action not in ACTIONS:
        raise ApiError(
            422, "invalid_request", f"action: unknown action {action!r}; one of {', '.join(sorted(ACTIONS))}"
        )
    if since is not None and until is not None and since >= until:
        raise ApiError(422, "invalid_request", "since must be before until")
    query = find(household_id=household_id, actor=actor, action=action, object_id=object_id, since=since, until=until)
    if cursor is not None:
        query = query.where(AuditEvent.id < _cursor(cursor))
    rows = list(session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    asked = {
        "household_id": household_id,
        "actor": actor,
        "action": action,
        "object_id": object_id,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "cursor": cursor,
    }
    # Recorded after the query, so a page never holds the event of its own request.
    record(
        session,
        actor_of_request,
        "audit.list",
        "audit",
        detail={"filter": {k: v for k, v in asked.items() if v is not None}, "count": len(rows)},
    )
    return AuditPage(
        items=[AuditEventOut.model_validate(as_dict(row)) for row in rows],
        next_cursor=str(rows[-1].id) if more and rows else None,
    )
