"""The community's monthly report (alerts/reports.py) as JSON: what a supervisor reports each month, with
the previous month beside each figure."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from alerts.reports import ReportError, ReportForbidden, ReportNotFound, ReportScope, monthly_report
from api.deps import SessionDep, Staff
from api.errors import ERROR_RESPONSES, ApiError, ErrorDetail, forbidden
from api.schemas import Community

router = APIRouter(prefix="/v1", tags=["reports"], responses=ERROR_RESPONSES)


class Period(BaseModel):
    start: str = Field(description="The month's first moment in the community's time zone (ISO 8601)")
    end: str = Field(description="The next month's first moment")


class MonthlyReport(BaseModel):
    community: str | None = Field(description="None: every community the caller sees")
    grid_cells: list[str] | None = Field(description="The grid cells counted (a grid worker's); None: all of them")
    month: str
    previous_month: str
    timezone: str
    period: Period
    generated_at: str
    sections: dict[str, Any] = Field(
        description="households, meters, alerts, check_ins, response, outcomes, residents_reports, delivery: "
        'each figure as {"value", "previous", "change"}; lists (offline meters, cases, top concerns) as they are'
    )


@router.get(
    "/reports/monthly",
    response_model=MonthlyReport,
    summary="A community's monthly report: households, alerts, response times, outcomes, residents' reports, "
    "delivery; the previous month beside each figure",
)
def get_monthly_report(
    session: SessionDep,
    principal: Staff,
    month: Annotated[str, Query(max_length=16, description="YYYY-MM, in the community's time zone; not future")],
    community: Community | None = None,
) -> MonthlyReport:
    scope = ReportScope(role=principal.role, community=principal.community, grid_cells=principal.grid_cells)
    try:
        report = monthly_report(session, community=community, month=month, scope=scope)
    except ReportError as exc:
        raise ApiError(
            422,
            "invalid_request",
            f"{exc.field}: {exc}",
            details=[ErrorDetail(field=exc.field, message=str(exc))],
        ) from exc
    except ReportNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    except ReportForbidden as exc:
        raise forbidden(str(exc)) from exc
    return MonthlyReport.model_validate(report)
