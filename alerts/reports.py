"""The community's monthly report (报表通): what a supervisor reports each month about care for elders
living alone and residents' concerns, counted from the alert store.

Pure queries over a session (no web framework): the API, the command line and the workbook read the
same dict. A month is a calendar month in the community's time zone (its households' zone; Asia/Shanghai
when it has none). Every figure is given with the previous month's beside it and the change.

Definitions (each figure in the report is one of these):

- households: enrolled by the month's end; with consent at the month's end; with a ``resident``
  recipient subscribed to the household (asked first at a check-in);
- meters: enrolled by the month's end; reporting = not offline at the month's end; offline for more
  than a day = ``meter_offline`` episodes overlapping the month that lasted (or have lasted by the
  month's end) over 24 h, listed with how long;
- alerts, check-ins, response, outcomes: care alerts (every kind but ``incident`` and ``hotspot``) raised
  in the month; time to acknowledge = ``acknowledged_at - created_at``, time to resolution =
  ``resolved_at - created_at`` of alerts a person resolved; median and 90th percentile (nearest rank);
  escalated past the first tier = ``escalation_tier >= 1``;
- residents' reports: ``incident`` alerts raised in the month (merged reports counted in ``reports``),
  top concerns as ``GET /v1/concerns`` ranks them, ``hotspot`` alerts raised, median time to close
  (``resolved_at - created_at``);
- delivery: notifications about the report's alerts recorded in the month, by channel type and status.

Scope: operators any community (or all when none is named); supervisors their community only; grid
workers their grid cells only; families and devices never.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import Session

from alerts.models import Alert, Delivery, Endpoint, Household, Meter, Recipient, Subscription, utcnow
from alerts.statuses import PERSON_OUTCOMES, CheckIn, DeliveryStatus, Outcome
from detectors.incidents.categories import CATEGORIES, CATEGORY_EN, CATEGORY_ZH, URGENCY_LEVELS
from shouwang.events import AlertKind, Severity

DEFAULT_TIMEZONE = "Asia/Shanghai"
RESIDENT_KINDS = (AlertKind.INCIDENT.value, AlertKind.HOTSPOT.value)  # residents' reports, not water use
CARE_KINDS = tuple(kind.value for kind in AlertKind if kind.value not in RESIDENT_KINDS)
SEVERITIES = tuple(severity.value for severity in reversed(Severity))  # critical first
OUTCOMES = tuple(outcome.value for outcome in Outcome)
CASE_OUTCOMES = (Outcome.EMERGENCY.value, Outcome.HELP_GIVEN.value)
SETTLED_CHECK_INS = (CheckIn.FINE.value, CheckIn.AWAY.value)
CARERS_TOLD_CHECK_INS = (CheckIn.UNANSWERED.value, CheckIn.FAILED.value, CheckIn.FINE_BUT_SILENT.value)
CHANNEL_TYPES = ("webhook", "wecom_robot", "dingtalk_robot", "feishu_bot", "wecom_app", "sms", "email")
DELIVERY_STATUSES = tuple(status.value for status in DeliveryStatus)
MAX_CASES = 50  # the short list of emergencies and help given
OFFLINE_OVER = timedelta(days=1)
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class ReportError(ValueError):
    """A request that cannot be answered as asked (a 422): ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ReportNotFound(LookupError):
    """The community is outside the caller's scope (a 404: never 'forbidden', never data)."""


class ReportForbidden(PermissionError):
    """The caller's role never sees reports (families, devices)."""


@dataclass(frozen=True)
class ReportScope:
    """Who asks: a role with its community and grid cells (an API key's scope; the shell is an operator)."""

    role: str
    community: str | None = None
    grid_cells: frozenset[str] = frozenset()


OPERATOR = ReportScope(role="operator")


@dataclass(frozen=True)
class _Where:
    """What the report counts: a community (None: every one) and grid cells (None: any)."""

    community: str | None
    cells: frozenset[str] | None

    def households(self) -> ColumnElement[bool]:
        clauses: list[ColumnElement[bool]] = [true()]
        if self.community is not None:
            clauses.append(Household.community == self.community)
        if self.cells is not None:
            clauses.append(Household.grid_cell.in_(self.cells) if self.cells else false())
        return and_(*clauses)

    def alerts(self) -> ColumnElement[bool]:
        """An alert of a household belongs where its household does; one of no household (an incident, a
        hotspot) where its grid cell's households are."""
        clauses: list[ColumnElement[bool]] = [true()]
        if self.community is not None:
            homes = select(Household.id).where(Household.community == self.community)
            cells = select(Household.grid_cell).where(Household.community == self.community).distinct()
            clauses.append(
                or_(
                    Alert.household_id.in_(homes),
                    and_(Alert.household_id.is_(None), Alert.grid_cell.in_(cells)),
                )
            )
        if self.cells is not None:
            clauses.append(Alert.grid_cell.in_(self.cells) if self.cells else false())
        return and_(*clauses)


def parse_month(month: str) -> tuple[int, int]:
    match = _MONTH.match(month.strip()) if isinstance(month, str) else None
    if match is None:
        raise ReportError("month", f"month must be YYYY-MM (e.g. 2026-11), not {month!r}")
    return int(match[1]), int(match[2])


def _resolve_scope(session: Session, community: str | None, scope: ReportScope) -> _Where:
    if scope.role == "operator":
        return _Where(community, None)
    if scope.role == "supervisor":
        if scope.community is None:  # a supervisor's key with cells only: those cells
            if community is not None:
                raise ReportNotFound(f"community {community} not found")
            return _Where(None, scope.grid_cells)
        if community is not None and community != scope.community:
            raise ReportNotFound(f"community {community} not found")
        return _Where(scope.community, None)
    if scope.role == "grid_worker":
        where = _Where(community, scope.grid_cells)
        if community is not None and session.scalar(select(Household.id).where(where.households()).limit(1)) is None:
            raise ReportNotFound(f"community {community} not found")
        return where
    raise ReportForbidden(f"a {scope.role} key may not read reports")


def _timezone(session: Session, where: _Where) -> str:
    zones = Counter(session.scalars(select(Household.timezone).where(where.households())))
    if not zones:
        return DEFAULT_TIMEZONE
    return sorted(zones.items(), key=lambda item: (-item[1], item[0]))[0][0]


def community_timezone(session: Session, community: str) -> str:
    """The community's time zone as its report counts months: its households' (the most common one)."""
    return _timezone(session, _Where(community, None))


def previous_month_of(local_day: date) -> str:
    """The month before the one ``local_day`` is in, as YYYY-MM (the report the 1st of a month sends)."""
    year, month = _previous_month(local_day.year, local_day.month)
    return f"{year:04d}-{month:02d}"


def _month_start(year: int, month: int, zone: ZoneInfo) -> datetime:
    return datetime(year, month, 1, tzinfo=zone)


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def monthly_report(
    session: Session,
    *,
    community: str | None,
    month: str,
    scope: ReportScope,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The report of ``month`` (YYYY-MM) for ``community`` (None: all the caller sees), with the previous
    month beside each figure. Raises ReportError (bad or future month), ReportNotFound (a community outside
    the scope) and ReportForbidden (a role that never sees reports)."""
    now = now or utcnow()
    year, mon = parse_month(month)
    where = _resolve_scope(session, community, scope)
    zone_name = _timezone(session, where)
    zone = ZoneInfo(zone_name)
    start = _month_start(year, mon, zone)
    if start > now.astimezone(zone):
        raise ReportError("month", f"month {month} is in the future")
    end = _month_start(*_next_month(year, mon), zone)
    prev_year, prev_mon = _previous_month(year, mon)
    prev_start = _month_start(prev_year, prev_mon, zone)
    current = _figures(session, where, start, end, zone, now)
    previous = _figures(session, where, prev_start, start, zone, now)
    return {
        "community": where.community,
        "grid_cells": sorted(where.cells) if where.cells is not None else None,
        "month": f"{year:04d}-{mon:02d}",
        "previous_month": f"{prev_year:04d}-{prev_mon:02d}",
        "timezone": zone_name,
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "generated_at": now.astimezone(UTC).isoformat(),
        "sections": compare(current, previous),
    }


def compare(current: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """Each figure of ``current`` as ``{"value", "previous", "change"}``; lists (the month's cases) as they
    are. A figure the previous month lacks counts as 0; a median nobody had is None, and so is its change."""
    out: dict[str, Any] = {}
    for key, value in current.items():
        before = previous.get(key)
        if isinstance(value, dict):
            out[key] = compare(value, before if isinstance(before, dict) else {})
        elif isinstance(value, list):
            out[key] = value
        else:
            if before is None and isinstance(value, int) and key not in previous:
                before = 0
            change = None if value is None or before is None else round(value - before, 1)
            out[key] = {"value": value, "previous": before, "change": change}
    return out


def _seconds(delta: timedelta) -> float:
    return max(0.0, delta.total_seconds())


def median(values: list[float]) -> float | None:
    return round(float(statistics.median(values)), 1) if values else None


def p90(values: list[float]) -> float | None:
    """The 90th percentile by nearest rank: the smallest value at least 90 % of the values do not exceed."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)], 1)


def rank_concerns(incidents: Iterable[Alert], limit: int = 10) -> list[dict[str, Any]]:
    """Incident categories ranked by reports, then households, then incidents: the community's "top ten"
    (shared by ``GET /v1/concerns`` and the monthly report)."""
    reports: dict[str, int] = defaultdict(int)
    households: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    cells: dict[str, set[str]] = defaultdict(set)
    for alert in incidents:
        facts = alert.facts or {}
        category = str(facts.get("category", "other"))
        reports[category] += int(facts.get("report_count", 1))
        households[category] += int(facts.get("households", facts.get("report_count", 1)))
        counts[category] += 1
        cells[category].add(alert.grid_cell or "")
    ranked = sorted(reports, key=lambda c: (-reports[c], -households[c], -counts[c], c))[:limit]
    return [
        {
            "rank": i + 1,
            "category": c,
            "label_zh": CATEGORY_ZH.get(c, c),
            "label_en": CATEGORY_EN.get(c, c),
            "reports": reports[c],
            "households": households[c],
            "incidents": counts[c],
            "grid_cells": len(cells[c]),
        }
        for i, c in enumerate(ranked)
    ]


def _figures(
    session: Session, where: _Where, start: datetime, end: datetime, zone: ZoneInfo, now: datetime
) -> dict[str, Any]:
    """One month's figures, without the previous month."""
    homes = [
        h
        for h in session.scalars(select(Household).where(where.households()))
        if h.created_at < end and (h.erased_at is None or h.erased_at >= end)  # erased: counted until then
    ]
    home_ids = {h.id for h in homes}
    with_resident = set(
        session.scalars(
            select(Subscription.household_id)
            .join(Recipient, Recipient.id == Subscription.recipient_id)
            .where(Recipient.role == "resident", Subscription.household_id.is_not(None))
        )
    )
    meters = [
        m
        for m in session.scalars(select(Meter).join(Household).where(where.households()))
        if m.created_at < end and m.household_id in home_ids
    ]

    in_month = and_(where.alerts(), Alert.raised_at >= start, Alert.raised_at < end)
    month_alerts = list(session.scalars(select(Alert).where(in_month).order_by(Alert.raised_at, Alert.id)))
    care = [a for a in month_alerts if a.kind in CARE_KINDS]
    incidents = [a for a in month_alerts if a.kind == AlertKind.INCIDENT]
    hotspots = [a for a in month_alerts if a.kind == AlertKind.HOTSPOT]

    # Meters offline: episodes overlapping the month, however long they lasted.
    offline_alerts = session.scalars(
        select(Alert)
        .where(
            where.alerts(),
            Alert.kind == AlertKind.METER_OFFLINE,
            Alert.since < end,
            or_(Alert.resolved_at.is_(None), Alert.resolved_at >= start),
        )
        .order_by(Alert.since, Alert.id)
    )
    offline_at_end: set[str] = set()
    offline_list: list[dict[str, Any]] = []
    for alert in offline_alerts:
        still = alert.resolved_at is None or alert.resolved_at >= end
        until = min(end, now) if still else alert.resolved_at
        assert until is not None
        if still and alert.meter_id:
            offline_at_end.add(alert.meter_id)
        lasted = until - alert.since
        if lasted > OFFLINE_OVER:
            offline_list.append(
                {
                    "alert_id": alert.id,
                    "meter_id": alert.meter_id,
                    "grid_cell": alert.grid_cell,
                    "since": alert.since.isoformat(),
                    "offline_h": round(_seconds(lasted) / 3600.0, 1),
                    "still_offline": still,
                }
            )

    by_kind = dict.fromkeys(CARE_KINDS, 0)
    by_severity = dict.fromkeys(SEVERITIES, 0)
    by_kind_severity = {kind: dict.fromkeys(SEVERITIES, 0) for kind in CARE_KINDS}
    for alert in care:
        by_kind[alert.kind] = by_kind.get(alert.kind, 0) + 1
        by_severity[alert.severity] = by_severity.get(alert.severity, 0) + 1
        by_kind_severity.setdefault(alert.kind, dict.fromkeys(SEVERITIES, 0))
        by_kind_severity[alert.kind][alert.severity] = by_kind_severity[alert.kind].get(alert.severity, 0) + 1

    asked = [a for a in care if a.check_in is not None]
    check_in_states = {state.value: 0 for state in CheckIn}
    for alert in asked:
        check_in_states[str(alert.check_in)] = check_in_states.get(str(alert.check_in), 0) + 1

    response: dict[str, Any] = {}
    for severity in SEVERITIES:
        of_severity = [a for a in care if a.severity == severity]
        to_ack = [_seconds(a.acknowledged_at - a.created_at) for a in of_severity if a.acknowledged_at is not None]
        to_resolve = [
            _seconds(a.resolved_at - a.created_at)
            for a in of_severity
            if a.resolved_at is not None and a.outcome in PERSON_OUTCOMES
        ]
        response[severity] = {
            "alerts": len(of_severity),
            "acknowledged": len(to_ack),
            "ack_median_s": median(to_ack),
            "ack_p90_s": p90(to_ack),
            "resolved_by_people": len(to_resolve),
            "resolve_median_s": median(to_resolve),
            "resolve_p90_s": p90(to_resolve),
            "escalated": sum(1 for a in of_severity if a.escalation_tier >= 1),
        }

    outcomes = dict.fromkeys(OUTCOMES, 0)
    for alert in care:
        if alert.outcome is not None:
            outcomes[alert.outcome] = outcomes.get(alert.outcome, 0) + 1
    cases = [a for a in care if a.outcome in CASE_OUTCOMES]

    by_category = dict.fromkeys(CATEGORIES, 0)
    reports_by_category = dict.fromkeys(CATEGORIES, 0)
    by_urgency = dict.fromkeys(URGENCY_LEVELS, 0)
    for alert in incidents:
        facts = alert.facts or {}
        category = str(facts.get("category", "other"))
        by_category[category] = by_category.get(category, 0) + 1
        reports_by_category[category] = reports_by_category.get(category, 0) + int(facts.get("report_count", 1))
        urgency = str(facts.get("urgency", "normal"))
        by_urgency[urgency] = by_urgency.get(urgency, 0) + 1
    hotspots_by_category = dict.fromkeys(CATEGORIES, 0)
    for alert in hotspots:
        category = str((alert.facts or {}).get("category", "other"))
        hotspots_by_category[category] = hotspots_by_category.get(category, 0) + 1
    to_close = [_seconds(a.resolved_at - a.created_at) for a in incidents if a.resolved_at is not None]

    by_type = {kind: dict.fromkeys(DELIVERY_STATUSES, 0) for kind in CHANNEL_TYPES}
    by_status = dict.fromkeys(DELIVERY_STATUSES, 0)
    deliveries = session.execute(
        select(Endpoint.type, Delivery.status)
        .join(Endpoint, Endpoint.id == Delivery.endpoint_id)
        .join(Alert, Alert.id == Delivery.alert_id)
        .where(where.alerts(), Delivery.created_at >= start, Delivery.created_at < end)
    ).all()
    for endpoint_type, status in deliveries:
        by_type.setdefault(endpoint_type, dict.fromkeys(DELIVERY_STATUSES, 0))
        by_type[endpoint_type][status] = by_type[endpoint_type].get(status, 0) + 1
        by_status[status] = by_status.get(status, 0) + 1

    return {
        "households": {
            "enrolled": len(homes),
            "with_consent": sum(1 for h in homes if h.consent_withdrawn_at is None or h.consent_withdrawn_at >= end),
            "with_resident": len(home_ids & with_resident),
        },
        "meters": {
            "enrolled": len(meters),
            "reporting": sum(1 for m in meters if m.meter_id not in offline_at_end),
            "offline_over_1d": len(offline_list),
            "offline_list": offline_list,
        },
        "alerts": {
            "total": len(care),
            "silenced": sum(1 for a in care if a.silenced_by is not None),
            "by_kind": by_kind,
            "by_severity": by_severity,
            "by_kind_severity": by_kind_severity,
        },
        "check_ins": {
            "asked": len(asked),
            "settled_with_resident": sum(
                1
                for a in asked
                if a.check_in in SETTLED_CHECK_INS or (a.check_in == CheckIn.ASKED and a.resolved_at is not None)
            ),
            "carers_told": sum(1 for a in asked if a.check_in in CARERS_TOLD_CHECK_INS),
            "by_state": check_in_states,
        },
        "response": {
            "escalated_past_first_tier": sum(1 for a in care if a.escalation_tier >= 1),
            "by_severity": response,
        },
        "outcomes": {
            "resolved": sum(1 for a in care if a.resolved_at is not None),
            "open": sum(1 for a in care if a.resolved_at is None),
            "by_outcome": outcomes,
            "cases_total": len(cases),
            "cases": [
                {
                    "alert_id": a.id,
                    "kind": a.kind,
                    "outcome": a.outcome,
                    "date": a.raised_at.astimezone(zone).date().isoformat(),
                    "grid_cell": a.grid_cell,
                }
                for a in cases[:MAX_CASES]
            ],
        },
        "residents_reports": {
            "incidents": len(incidents),
            "reports": sum(int((a.facts or {}).get("report_count", 1)) for a in incidents),
            "by_category": by_category,
            "reports_by_category": reports_by_category,
            "by_urgency": by_urgency,
            "top_concerns": rank_concerns(incidents),
            "hotspots": len(hotspots),
            "hotspots_by_category": hotspots_by_category,
            "closed": len(to_close),
            "close_median_s": median(to_close),
        },
        "delivery": {
            "total": len(deliveries),
            "dead_letters": by_status[DeliveryStatus.DEAD],
            "by_status": by_status,
            "by_type": by_type,
        },
    }
