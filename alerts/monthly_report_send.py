"""The monthly report sent on its own: on the first day of each month, each supervisor hears their community's
report for the month before, through their channels — a short summary with a link to the printable page and one
to the workbook (both in the console, behind the supervisor's API key: a message cannot carry one, and a link
that opened the figures by itself would open them to whoever the message is forwarded to).

A supervisor subscribed to a community (``Subscription.community``) gets that community's report; one subscribed
to several gets one each. It is due from SHOUWANG_MONTHLY_REPORT_AT (08:00) on the 1st in the community's time
zone (its households' zone, as the report counts its months); a router that was down then sends it when it is
back, within the month's first ``LATE_DAYS`` days. Each message sent is a unique ``MonthlyReportMessage`` row
written with its outbox rows in one transaction, so several routers, or a restarted one, never send it twice.
The report is about no household (counts, no names), so it has no alert and no action links; the outbox sends
it on every active channel of the supervisor, as the other scheduled messages.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alerts import metrics
from alerts.db import Store
from alerts.models import Delivery, MonthlyReportMessage, Recipient, Subscription
from alerts.notifications import outbox_rows
from alerts.reports import ReportScope, community_timezone, monthly_report, previous_month_of

log = logging.getLogger(__name__)

EVENT_TYPE = "report.monthly"
ROLE = "supervisor"
DEFAULT_AT = "08:00"
OFF = "off"
LATE_DAYS = 7  # a router down on the 1st still sends last month's report when it is back, in the first week
QUIET_DAYS = (LATE_DAYS + 2, 27)  # UTC days of the month when no zone (UTC-12 to UTC+14) is in its first week


def monthly_reports_due(store: Store, *, now: datetime, public_url: str, at: str = DEFAULT_AT) -> list[str]:
    """Send every supervisor the report they are due now; the ids of the deliveries recorded. One transaction per
    message, its unique row with it: another router that sent it first wins."""
    if at == OFF or QUIET_DAYS[0] <= now.astimezone(UTC).day <= QUIET_DAYS[1]:
        return []  # no clock on Earth is in a month's first week then: not even a query
    with store.transaction() as session:
        pairs = session.execute(
            select(Subscription.recipient_id, Subscription.community)
            .join(Recipient, Subscription.recipient_id == Recipient.id)
            .where(Recipient.role == ROLE, Subscription.community.is_not(None))
            .distinct()
            .order_by(Subscription.recipient_id, Subscription.community)
        ).all()
        due: list[tuple[str, str, str]] = []
        zones: dict[str, str] = {}
        for recipient_id, community in pairs:
            assert community is not None  # the query asks for community subscriptions only
            if community not in zones:
                zones[community] = community_timezone(session, community)
            local_day = _due_day(now, zones[community], at)
            if local_day is not None:
                due.append((recipient_id, community, previous_month_of(local_day)))
        months = {month for _, _, month in due}
        sent_before = select(
            MonthlyReportMessage.recipient_id, MonthlyReportMessage.community, MonthlyReportMessage.month
        ).where(MonthlyReportMessage.month.in_(months))
        already = {(recipient_id, community, month) for recipient_id, community, month in session.execute(sent_before)}
    sent: list[str] = []
    for recipient_id, community, month in due:
        if (recipient_id, community, month) in already:
            continue
        try:
            with store.transaction() as session:
                deliveries = send_report(session, recipient_id, community, month, now=now, public_url=public_url)
                sent.extend(delivery.id for delivery in deliveries)
        except IntegrityError:
            log.info("the %s report of %s for %s was sent by another router", month, community, recipient_id)
    return sent


def _due_day(now: datetime, zone_name: str, at: str) -> date | None:
    """The community's local day when a report is due now (the 1st from ``at``, or a later day of the first week);
    None otherwise."""
    try:
        local = now.astimezone(ZoneInfo(zone_name))
    except (ZoneInfoNotFoundError, ValueError):
        return None  # the API refuses unknown zones; an old row with one must not stop everyone's reports
    if local.day > LATE_DAYS or (local.day == 1 and local.strftime("%H:%M") < at):
        return None
    return local.date()


def send_report(
    session: Session, recipient_id: str, community: str, month: str, *, now: datetime, public_url: str
) -> list[Delivery]:
    """Record the supervisor's report of ``month`` as outbox rows, with its unique row first: a second router's
    insert fails here (or at the commit) and records nothing."""
    session.add(MonthlyReportMessage(recipient_id=recipient_id, community=community, month=month, sent_at=now))
    session.flush()
    scope = ReportScope(role=ROLE, community=community)
    report = monthly_report(session, community=community, month=month, scope=scope, now=now)
    payload = report_payload(report, public_url=public_url, now=now)
    deliveries = outbox_rows(
        session, recipient_id=recipient_id, alert_id=None, event_type=EVENT_TYPE, tier=0, payload=payload, now=now
    )
    metrics.NOTIFICATIONS.labels(EVENT_TYPE, ROLE).inc()
    return deliveries


def report_links(public_url: str, community: str, month: str) -> dict[str, str]:
    """The console's report page, and the same page that downloads the workbook once the reader has signed in."""
    base = f"{public_url.rstrip('/')}/console/report"
    query = {"community": community, "month": month}
    return {"page": f"{base}?{urlencode(query)}", "workbook": f"{base}?{urlencode({**query, 'download': 'xlsx'})}"}


def _value(section: dict[str, Any], *path: str) -> Any:
    leaf: Any = section
    for key in path:
        leaf = leaf[key]
    return leaf["value"], leaf["previous"]


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The few figures a message can carry, each this month's (the previous month's where it says so)."""
    s = report["sections"]
    alerts, alerts_before = _value(s, "alerts", "total")
    return {
        "households": s["households"]["enrolled"]["value"],
        "alerts": alerts,
        "alerts_previous": alerts_before,
        "emergencies": s["outcomes"]["by_outcome"]["emergency"]["value"],
        "help_given": s["outcomes"]["by_outcome"]["help_given"]["value"],
        "escalated": s["response"]["escalated_past_first_tier"]["value"],
        "open": s["outcomes"]["open"]["value"],
        "incidents": s["residents_reports"]["incidents"]["value"],
        "reports": s["residents_reports"]["reports"]["value"],
        "hotspots": s["residents_reports"]["hotspots"]["value"],
        "dead_letters": s["delivery"]["dead_letters"]["value"],
    }


def compose(community: str, month: str, figures: dict[str, Any]) -> dict[str, str]:
    """The summary in both languages: what a supervisor reads in the message before opening the page."""
    year, mon = month.split("-")
    zh = (
        f"{community} {int(year)}年{int(mon)}月报表：在册 {figures['households']} 户；"
        f"告警 {figures['alerts']} 条（上月 {figures['alerts_previous']} 条），"
        f"紧急情况 {figures['emergencies']} 起、上门帮助 {figures['help_given']} 起，"
        f"越过网格员上报 {figures['escalated']} 条，尚未处置 {figures['open']} 条；"
        f"居民上报 {figures['incidents']} 件（{figures['reports']} 人次）、热点 {figures['hotspots']} 个；"
        f"通知最终失败 {figures['dead_letters']} 条。"
    )
    en = (
        f"{community}, report for {month}: {figures['households']} households; "
        f"{figures['alerts']} alerts ({figures['alerts_previous']} the month before), "
        f"{figures['emergencies']} emergencies and {figures['help_given']} times help given, "
        f"{figures['escalated']} escalated past the grid worker, {figures['open']} still open; "
        f"{figures['incidents']} residents' reports ({figures['reports']} reporters), {figures['hotspots']} hotspots; "
        f"{figures['dead_letters']} notifications dead-lettered."
    )
    return {"zh": zh, "en": en}


def report_payload(report: dict[str, Any], *, public_url: str, now: datetime) -> str:
    """The webhook body (docs/webhook-payload.schema.json, ``report.monthly``)."""
    community = str(report["community"])
    figures = summary(report)
    data = {
        "community": community,
        "month": report["month"],
        "previous_month": report["previous_month"],
        "timezone": report["timezone"],
        "summary": figures,
        "links": report_links(public_url, community, report["month"]),
        "message": compose(community, report["month"], figures),
    }
    body = {"type": EVENT_TYPE, "timestamp": now.isoformat(timespec="seconds"), "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
