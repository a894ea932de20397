"""Top concerns: which kinds of incident residents reported most in a community and period —
the "top ten" a community meeting discusses."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from alerts.models import Alert, Household, utcnow
from alerts.reports import rank_concerns
from api.deps import SessionDep, Staff
from api.errors import ERROR_RESPONSES, ApiError
from api.schemas import Community
from shouwang.events import Timestamp

router = APIRouter(prefix="/v1", tags=["incidents"], responses=ERROR_RESPONSES)


class Concern(BaseModel):
    rank: int
    category: str
    label_zh: str
    label_en: str
    reports: int
    households: int = Field(
        description="Households that reported it (distinct reporters; an anonymous report counts as one)"
    )
    incidents: int
    grid_cells: int


class Concerns(BaseModel):
    community: str | None
    since: datetime
    until: datetime
    concerns: list[Concern]


@router.get(
    "/concerns",
    response_model=Concerns,
    summary="Incident categories ranked by reports, then households, for a community and period",
)
def top_concerns(
    session: SessionDep,
    principal: Staff,
    community: Community | None = None,
    since: Annotated[Timestamp | None, Query(description="Default: 30 days before `until`")] = None,
    until: Annotated[Timestamp | None, Query(description="Default: now")] = None,
    limit: Annotated[int, Query(ge=1, le=10)] = 10,
) -> Concerns:
    until = until or utcnow()
    since = since or until - timedelta(days=30)
    if since >= until:
        raise ApiError(422, "invalid_request", "since must be before until")
    if principal.role == "supervisor":
        community = community or principal.community
        if community is not None and community != principal.community:
            raise ApiError(404, "not_found", f"community {community} not found")
    query = select(Alert).where(Alert.kind == "incident", Alert.raised_at >= since, Alert.raised_at < until)
    if community is not None:
        query = query.where(
            Alert.grid_cell.in_(select(Household.grid_cell).where(Household.community == community).distinct())
        )
    if principal.role == "grid_worker" or (principal.role == "supervisor" and community is None):
        query = query.where(Alert.grid_cell.in_(principal.grid_cells or {""}))
    return Concerns(
        community=community,
        since=since,
        until=until,
        concerns=[Concern(**concern) for concern in rank_concerns(session.scalars(query), limit)],
    )
