"""Households with the elder's consent, their meters, and away mode. Every read and change is recorded in
the audit trail (alerts/audit.py), a change in the transaction that makes it."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alerts import admin, consent
from alerts.audit import record
from alerts.away_notice import announce_away
from alerts.models import Household, Meter, utcnow
from api.auth import Principal
from api.deps import ActorDep, Operator, Reader, SessionDep
from api.errors import ERROR_RESPONSES, ApiError, error_responses, not_found
from api.schemas import (
    AwayMode,
    ConsentEventOut,
    ConsentGrant,
    ConsentOut,
    ConsentWithdraw,
    HouseholdCreate,
    HouseholdOut,
    HouseholdPatch,
    MeterCreate,
    MeterOut,
)
from shouwang.events import RoutineHints
from shouwang.settings import Settings

router = APIRouter(prefix="/v1/households", tags=["households"], responses=ERROR_RESPONSES)


def household_out(household: Household, session: Session | None = None) -> HouseholdOut:
    return HouseholdOut(
        id=household.id,
        name=household.name,
        timezone=household.timezone,
        grid_cell=household.grid_cell,
        community=household.community,
        address=household.address,
        consent=ConsentOut(
            given_by=household.consent_given_by,
            given_at=household.consent_given_at,
            scope=household.consent_scope,
            withdrawn_at=household.consent_withdrawn_at,
            withdrawn_by=household.consent_withdrawn_by,
            history=[
                ConsentEventOut(
                    action=e.action, by=e.by, evidence=e.evidence, scope=e.scope, recorded_by=e.recorded_by, at=e.at
                )
                for e in (consent.history(session, household.id) if session is not None else [])
            ],
        ),
        away_until=household.away_until,
        away_note=household.away_note,
        away_set_by=household.away_set_by,
        routine_hints=RoutineHints.model_validate(household.routine_hints) if household.routine_hints else None,
        meters=[
            MeterOut(meter_id=m.meter_id, reporting_interval_s=m.reporting_interval_s)
            for m in sorted(household.meters, key=lambda m: m.meter_id)
        ],
    )


def visible_household(session: SessionDep, principal: Principal, household_id: str) -> Household:
    """The household if the caller's scope covers it; 404 otherwise (never reveal it exists). An erased household
    is gone for every route here (its erasure and export: api/routes/household_data.py)."""
    household = session.get(Household, household_id)
    if household is None or household.erased_at is not None or not principal.sees_household(household):
        raise not_found(f"household {household_id}")
    return household


@router.post("", status_code=201, response_model=HouseholdOut, summary="Enrol a household with consent")
def create_household(body: HouseholdCreate, session: SessionDep, _: Operator, actor: ActorDep) -> HouseholdOut:
    household = admin.create_household(
        session,
        name=body.name,
        timezone=body.timezone,
        grid_cell=body.grid_cell,
        community=body.community,
        address=body.address,
        consent_given_by=body.consent.given_by,
        consent_given_at=body.consent.given_at,
        consent_scope=body.consent.scope,
    )
    if body.routine_hints is not None:
        household.routine_hints = body.routine_hints.model_dump(mode="json")
    record(session, actor, "household.create", "household", household.id, household_id=household.id)
    return household_out(household)


@router.get("", response_model=list[HouseholdOut], summary="Households in the caller's scope")
def list_households(session: SessionDep, principal: Reader, actor: ActorDep) -> list[HouseholdOut]:
    query = select(Household).where(Household.erased_at.is_(None)).order_by(Household.id).limit(1000)
    if principal.role == "family":
        query = query.where(Household.id.in_(principal.household_ids or {""}))
    elif principal.role == "grid_worker":
        query = query.where(Household.grid_cell.in_(principal.grid_cells or {""}))
    elif principal.role == "supervisor":
        query = query.where(
            or_(
                Household.community == (principal.community or ""),
                Household.grid_cell.in_(principal.grid_cells or {""}),
            )
        )
    homes = list(session.scalars(query))
    # One event for the request, naming every household whose data it returned.
    record(
        session, actor, "household.list", "household", households=[h.id for h in homes], detail={"count": len(homes)}
    )
    return [household_out(h) for h in homes]


@router.get("/{household_id}", response_model=HouseholdOut)
def get_household(household_id: str, session: SessionDep, principal: Reader, actor: ActorDep) -> HouseholdOut:
    household = visible_household(session, principal, household_id)
    record(session, actor, "household.read", "household", household.id, household_id=household.id)
    return household_out(household, session)


@router.patch("/{household_id}", response_model=HouseholdOut)
def patch_household(
    household_id: str, body: HouseholdPatch, session: SessionDep, principal: Operator, actor: ActorDep
) -> HouseholdOut:
    household = visible_household(session, principal, household_id)
    changes = body.model_dump(exclude_unset=True)
    for field, value in changes.items():
        if value is None and field in {"name", "timezone", "grid_cell"}:
            raise ApiError(422, "invalid_request", f"{field} cannot be null")
        if field == "routine_hints":
            household.routine_hints = body.routine_hints.model_dump(mode="json") if body.routine_hints else None
            for meter in household.meters:  # the worker is sent the new hints
                meter.hints_sent_at = None
            continue
        setattr(household, field, value)
    # The names of the fields changed, never their values (a new address is personal data).
    record(
        session,
        actor,
        "household.update",
        "household",
        household.id,
        household_id=household.id,
        detail={"fields": sorted(changes)},
    )
    return household_out(household)


@router.post(
    "/{household_id}/consent/withdraw",
    response_model=HouseholdOut,
    responses=error_responses(409),
    summary="Record the withdrawal of consent (operators): at once, nothing about this home is notified, its "
    "open alerts are silenced, notifications not yet sent are dropped, its readings refused",
)
def withdraw_consent(
    household_id: str, body: ConsentWithdraw, session: SessionDep, principal: Operator, actor: ActorDep
) -> HouseholdOut:
    household = visible_household(session, principal, household_id)
    try:
        consent.withdraw(
            session, household, by=body.by, evidence=body.evidence, recorded_by=principal.actor, now=utcnow()
        )
    except consent.ConsentError as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    record(session, actor, "consent.withdraw", "household", household.id, household_id=household.id)
    return household_out(household, session)


@router.post(
    "/{household_id}/consent/grant",
    response_model=HouseholdOut,
    responses=error_responses(409),
    summary="Record consent given again (operators): notifications resume for what happens from now on",
)
def grant_consent(
    household_id: str, body: ConsentGrant, session: SessionDep, principal: Operator, actor: ActorDep
) -> HouseholdOut:
    household = visible_household(session, principal, household_id)
    try:
        consent.grant(
            session,
            household,
            by=body.by,
            evidence=body.evidence,
            scope=body.scope,
            recorded_by=principal.actor,
            now=utcnow(),
        )
    except consent.ConsentError as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    record(session, actor, "consent.grant", "household", household.id, household_id=household.id)
    return household_out(household, session)


@router.post("/{household_id}/meters", status_code=201, response_model=MeterOut, responses=error_responses(409))
def add_meter(
    household_id: str, body: MeterCreate, session: SessionDep, principal: Operator, actor: ActorDep
) -> MeterOut:
    household = visible_household(session, principal, household_id)
    if session.get(Meter, body.meter_id) is not None:
        raise ApiError(409, "conflict", f"meter {body.meter_id} is already enrolled")
    try:
        meter = admin.add_meter(
            session, household, meter_id=body.meter_id, reporting_interval_s=body.reporting_interval_s
        )
    except IntegrityError as exc:  # a concurrent enrolment of the same meter
        raise ApiError(409, "conflict", f"meter {body.meter_id} is already enrolled") from exc
    record(session, actor, "meter.create", "meter", meter.meter_id, household_id=household.id)
    return MeterOut(meter_id=meter.meter_id, reporting_interval_s=meter.reporting_interval_s)


@router.put(
    "/{household_id}/away",
    response_model=HouseholdOut,
    summary="Away mode until a time: no 'no water use' alarms while the elder is away",
)
def set_away(
    household_id: str, body: AwayMode, session: SessionDep, principal: Reader, request: Request, actor: ActorDep
) -> HouseholdOut:
    household = visible_household(session, principal, household_id)
    settings: Settings = request.app.state.settings
    now = utcnow()
    try:
        admin.set_away(
            household,
            until=body.until,
            note=body.note,
            now=now,
            by=principal.actor,
            max_days=settings.away_max_days,
        )
    except admin.AdminError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from exc
    if principal.role == "family":  # the grid worker must know the home is empty and its alarms muted
        announce_away(session, household, by=principal.actor, until=body.until, note=body.note, now=now)
    record(session, actor, "away.set", "household", household.id, household_id=household.id, now=now)
    return household_out(household)


@router.delete("/{household_id}/away", status_code=204, response_class=Response, summary="End away mode")
def end_away(household_id: str, session: SessionDep, principal: Reader, actor: ActorDep) -> Response:
    household = visible_household(session, principal, household_id)
    admin.set_away(household, until=None, note=None, now=utcnow(), by=principal.actor)
    record(session, actor, "away.end", "household", household.id, household_id=household.id)
    return Response(status_code=204)
