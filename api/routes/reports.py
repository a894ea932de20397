"""The community's monthly report (alerts/reports.py) as JSON, and as the Excel workbook the console's report
page downloads: what a supervisor reports each month, with the previous month beside each figure."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from alerts.audit import Actor, record
from alerts.report_workbook import workbook_bytes
from alerts.reports import ReportError, ReportForbidden, ReportNotFound, ReportScope, monthly_report
from api.auth import Principal
from api.deps import ActorDep, SessionDep, Staff
from api.errors import ERROR_RESPONSES, ApiError, ErrorDetail, forbidden
from api.schemas import Community

router = APIRouter(prefix="/v1", tags=["reports"], responses=ERROR_RESPONSES)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Month = Annotated[str, Query(max_length=16, description="YYYY-MM, in the community's time zone; not future")]


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
    session: SessionDep, principal: Staff, actor: ActorDep, month: Month, community: Community | None = None
) -> MonthlyReport:
    return MonthlyReport.model_validate(_report(session, principal, actor, month, community, "json"))


@router.get(
    "/reports/monthly.xlsx",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}, "description": "The workbook: one sheet per section, Chinese headings"}},
    summary="The same report as an Excel workbook (what the console's report page downloads)",
)
def get_monthly_workbook(
    session: SessionDep, principal: Staff, actor: ActorDep, month: Month, community: Community | None = None
) -> Response:
    report = _report(session, principal, actor, month, community, "xlsx")
    name = f"report-{report['community'] or 'all'}-{report['month']}.xlsx"
    return Response(
        workbook_bytes(report),
        media_type=XLSX,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
    )


def _report(
    session: Session, principal: Principal, actor: Actor, month: str, community: str | None, form: str
) -> dict[str, Any]:
    """The report as the caller's key may see it; a bad or future month 422 naming it, another community 404.
    A report read is in the audit trail: it lists the month's emergencies and offline meters by id."""
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
    detail = {"month": report["month"], "community": report["community"], "format": form}
    record(session, actor, "report.read", "report", detail=detail)
    return report
