"""Silences: maintenance windows and ad-hoc mutes. Alerts they match are recorded, not notified.

Scoped like the rest of the API: operators any silence; supervisors and grid workers only silences
that lie within their scope (a household or meter they see, or a grid cell of theirs); families and
devices none. A silence out of the caller's scope is a 404, exactly like a missing one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, StringConstraints, model_validator
from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from alerts import admin
from alerts.audit import record
from alerts.models import Household, Meter, Silence, utcnow
from api.auth import Principal
from api.deps import ActorDep, SessionDep, Staff
from api.errors import ERROR_RESPONSES, ApiError, forbidden, not_found
from api.schemas import Kind, NoNul, Strict, Text500
from shouwang.events import GridCell, MeterId, Timestamp
from shouwang.settings import Settings

HouseholdId = Annotated[str, StringConstraints(min_length=1, max_length=32), NoNul]


class SilenceCreate(Strict):
    """Mute matching alerts for a while (a maintenance window, a known false alarm): they are recorded,
    not notified. Matchers given must all match; at least one is required."""

    household_id: HouseholdId | None = None
    meter_id: MeterId | None = None
    grid_cell: GridCell | None = None
    kind: Kind | None = None
    reason: Text500 = Field(description="Why, e.g. 'maintenance: meter swap'")
    until: Timestamp = Field(description="When it ends; at most SHOUWANG_SILENCE_MAX_DAYS (7) days after its start")
    start: Timestamp | None = Field(default=None, description="When it starts; now if left out")

    @model_validator(mode="after")
    def _one_matcher(self) -> SilenceCreate:
        if not any((self.household_id, self.meter_id, self.grid_cell, self.kind)):
            raise ValueError(
                "a silence needs at least one matcher (household_id, meter_id, grid_cell or kind): without one "
                "it would mute every alert"
            )
        return self


class SilenceOut(BaseModel):
    id: str
    household_id: str | None
    meter_id: str | None
    grid_cell: str | None
    kind: str | None
    reason: str
    start: datetime
    until: datetime
    created_by: str
    created_at: datetime
    state: Literal["scheduled", "active", "expired"]


router = APIRouter(prefix="/v1/silences", tags=["silences"], responses=ERROR_RESPONSES)


def silence_out(silence: Silence) -> SilenceOut:
    return SilenceOut(
        id=silence.id,
        household_id=silence.household_id,
        meter_id=silence.meter_id,
        grid_cell=silence.grid_cell,
        kind=silence.kind,
        reason=silence.reason,
        start=silence.starts_at,
        until=silence.ends_at,
        created_by=silence.created_by,
        created_at=silence.created_at,
        state=admin.silence_state(silence, utcnow()),
    )


def _cells_condition(principal: Principal, column: InstrumentedAttribute[str | None]) -> ColumnElement[bool]:
    """The grid cells that are the caller's: those on the key and, for a supervisor, those where
    homes of their community are."""
    cells = principal.grid_cells or {""}
    if principal.role == "supervisor" and principal.community:
        community_cells = select(Household.grid_cell).where(Household.community == principal.community)
        return or_(column.in_(cells), column.in_(community_cells))
    return column.in_(cells)


def _scoped(query: Select[Silence], principal: Principal) -> Select[Silence]:
    """A silence is in scope when one of its place matchers is: its matchers must all match, so it mutes
    nothing outside that place. A silence of kinds only (everywhere) is the operators'."""
    if principal.role == "operator":
        return query
    homes = select(Household.id).where(_household_condition(principal))
    meters = select(Meter.meter_id).where(Meter.household_id.in_(homes))
    return query.where(
        or_(
            _cells_condition(principal, Silence.grid_cell),
            Silence.household_id.in_(homes),
            Silence.meter_id.in_(meters),
        )
    )


def _household_condition(principal: Principal) -> ColumnElement[bool]:
    """The households ``principal.sees_household`` admits, as SQL (staff roles)."""
    in_cells = Household.grid_cell.in_(principal.grid_cells or {""})
    if principal.role == "supervisor":
        return or_(Household.community == (principal.community or ""), in_cells)
    return in_cells


def visible_silence(session: SessionDep, principal: Principal, silence_id: str) -> Silence:
    silence = session.scalar(_scoped(select(Silence).where(Silence.id == silence_id), principal))
    if silence is None:
        raise not_found(f"silence {silence_id}")
    return silence


def _check_scope(session: SessionDep, principal: Principal, body: SilenceCreate) -> None:
    """Every matcher a non-operator names must be theirs: a household or meter they cannot see is
    'unknown' (as one that does not exist: nothing is revealed); a grid cell not theirs is refused."""
    if principal.role == "operator":
        return
    if body.household_id is not None:
        household = session.get(Household, body.household_id)
        if household is None or not principal.sees_household(household):
            raise ApiError(422, "invalid_request", f"unknown household {body.household_id}")
    if body.meter_id is not None:
        meter = session.get(Meter, body.meter_id)
        if meter is None or not principal.sees_household(meter.household):
            raise ApiError(422, "invalid_request", f"unknown meter {body.meter_id}")
    if body.grid_cell is not None and not _owns_cell(session, principal, body.grid_cell):
        raise forbidden(f"grid cell {body.grid_cell} is not one of this {principal.role} key's cells")
    if body.household_id is None and body.meter_id is None and body.grid_cell is None:
        raise forbidden(f"a {principal.role} key's silence must name a household, meter or grid cell of its own")


def _owns_cell(session: SessionDep, principal: Principal, cell: str) -> bool:
    if cell in principal.grid_cells:
        return True
    if principal.role == "supervisor" and principal.community:
        home = select(Household.id).where(Household.community == principal.community, Household.grid_cell == cell)
        return session.scalar(home.limit(1)) is not None
    return False


@router.post("", status_code=201, response_model=SilenceOut, summary="Silence matching alerts until a time")
def create_silence(
    body: SilenceCreate, session: SessionDep, principal: Staff, request: Request, actor: ActorDep
) -> SilenceOut:
    _check_scope(session, principal, body)
    settings: Settings = request.app.state.settings
    now = utcnow()
    silence = admin.add_silence(
        session,
        created_by=f"{principal.name} ({principal.actor})",
        reason=body.reason,
        starts_at=body.start or now,
        ends_at=body.until,
        household_id=body.household_id,
        meter_id=body.meter_id,
        grid_cell=body.grid_cell,
        kind=body.kind,
        now=now,
        max_days=settings.silence_max_days,
    )
    record(session, actor, "silence.create", "silence", silence.id, household_id=silence.household_id, now=now)
    return silence_out(silence)


@router.get("", response_model=list[SilenceOut], summary="Silences in the caller's scope, newest first")
def list_silences(
    session: SessionDep,
    principal: Staff,
    include: Annotated[
        Literal["expired"] | None, Query(description="`expired`: ended silences too (default: active and scheduled)")
    ] = None,
    household_id: Annotated[HouseholdId | None, Query()] = None,
    meter_id: Annotated[MeterId | None, Query()] = None,
    grid_cell: GridCell | None = None,
    kind: Kind | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[SilenceOut]:
    query = admin.find_silences(
        now=utcnow(),
        include_expired=include == "expired",
        household_id=household_id,
        meter_id=meter_id,
        grid_cell=grid_cell,
        kind=kind,
    )
    return [silence_out(s) for s in session.scalars(_scoped(query, principal).limit(limit))]


@router.get("/{silence_id}", response_model=SilenceOut, summary="One silence")
def get_silence(silence_id: str, session: SessionDep, principal: Staff) -> SilenceOut:
    return silence_out(visible_silence(session, principal, silence_id))


@router.delete(
    "/{silence_id}",
    response_model=SilenceOut,
    summary="Expire a silence now (it is kept as history; one already ended is left as it was)",
)
def expire_silence(silence_id: str, session: SessionDep, principal: Staff, actor: ActorDep) -> SilenceOut:
    silence = visible_silence(session, principal, silence_id)
    admin.expire_silence(silence, now=utcnow())
    record(session, actor, "silence.expire", "silence", silence.id, household_id=silence.household_id)
    return silence_out(silence)
