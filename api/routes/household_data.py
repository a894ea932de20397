"""A household's personal data on request: its erasure and its export (docs/PRIVACY.md).

Operators only. An elder (or their guardian) asks the community, which checks who is asking and has its
operator act: a family key speaks for one relative, not for the elder, and an export holds other people's data
too (the other relatives' contacts, the staff who acted), which the operator hands over with judgement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from alerts import audit
from alerts.erasure import erase_household
from alerts.household_export import export_household
from alerts.models import Household, utcnow
from api.deps import ActorDep, Operator, SessionDep
from api.errors import ERROR_RESPONSES, not_found

router = APIRouter(prefix="/v1/households", tags=["households"], responses=ERROR_RESPONSES)


class ErasureOut(BaseModel):
    household_id: str
    erased_at: datetime
    erased_by: str
    counts: dict[str, int]  # records erased or anonymised, by kind
    already_erased: bool  # True: erased by an earlier request; this one changed nothing
    worker_told: bool  # the worker has deleted its meters' learned state


@router.delete(
    "/{household_id}",
    response_model=ErasureOut,
    summary="Erase a household's personal data (operators): its name, address, contacts and consent texts go; "
    "its alerts stay only as anonymous statistics; its meters' readings are refused from now on. Repeating it "
    "changes nothing and answers the same record",
)
def erase(household_id: str, session: SessionDep, principal: Operator, actor: ActorDep) -> ErasureOut:
    household = session.get(Household, household_id)
    if household is None:
        raise not_found(f"household {household_id}")
    erasure, done_now = erase_household(session, household, by=principal.actor, now=utcnow())
    if done_now:  # in the erasure's transaction; a repeat changes nothing and is not an event
        audit.record(session, actor, "household.erase", "household", household.id, household_id=household.id)
    return ErasureOut(
        household_id=erasure.household_id,
        erased_at=erasure.erased_at,
        erased_by=erasure.erased_by,
        counts=erasure.counts,
        already_erased=not done_now,
        worker_told=erasure.sent_at is not None,
    )


@router.get(
    "/{household_id}/export",
    response_class=JSONResponse,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
    summary="Everything held about a household, as JSON, for a data-subject access request (operators)",
)
def export(household_id: str, session: SessionDep, _: Operator, actor: ActorDep) -> JSONResponse:
    household = session.get(Household, household_id)
    if household is None:
        raise not_found(f"household {household_id}")
    body: dict[str, Any] = export_household(session, household)
    audit.record(session, actor, "household.export", "household", household.id, household_id=household.id)
    return JSONResponse(body, headers={"Content-Disposition": f'attachment; filename="shouwang-{household.id}.json"'})
