"""The JSON body of every webhook (schema: ``docs/webhook-payload.schema.json``).

Shape follows Standard Webhooks' recommendation: ``{"type", "timestamp", "data"}``. The body is
rendered once, when the delivery is recorded, and stored: a resend is byte-identical.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from alerts.models import Alert, Household
from alerts.statuses import AlertStatus

EVENT_TYPES = (
    "alert.raised",
    "alert.updated",
    "alert.escalated",
    "alert.reminder",
    "alert.resolved",
    "endpoint.ping",
    "alert.check_in",  # to the resident only: "are you well?" (alerts/check_ins.py)
    "household.all_is_well",  # to a family that opted in: the day started as usual (alerts/all_is_well.py)
    "household.away",  # to the grid worker: the family set away mode, the home is empty (alerts/away_notice.py)
    "report.monthly",  # to a supervisor on the 1st: last month's report of their community (monthly_report_send.py)
)
# Messages about no alert: they carry no action links (there is nothing to acknowledge).
NO_ALERT_EVENTS = frozenset({"household.all_is_well", "household.away", "report.monthly"})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def alert_payload(
    *, event_type: str, alert: Alert, household: Household | None, tier: int, now: datetime, public_url: str
) -> str:
    data: dict[str, Any] = {
        "alert_id": alert.id,
        "status": alert.status,
        "kind": alert.kind,
        "severity": alert.severity,
        "since": _iso(alert.since),
        "at": _iso(alert.raised_at),
        "meter_id": alert.meter_id,
        "grid_cell": alert.grid_cell,
        "household": None
        if household is None
        else {
            "id": household.id,
            "name": household.name,
            "address": household.address,
            "timezone": household.timezone,
        },
        "explanation": {"zh": alert.explanation_zh, "en": alert.explanation_en},
        "facts": alert.facts or {},
        "tier": tier,
        "acknowledge_url": f"{public_url.rstrip('/')}/v1/alerts/{alert.id}/ack",
    }
    if alert.family_seen_at is not None:  # staff read that the family knows; their tier still acts
        data["family_seen"] = {"by": alert.family_seen_by, "at": _iso(alert.family_seen_at)}
    if alert.status == AlertStatus.RESOLVED:
        data["resolution"] = {
            "outcome": alert.outcome,
            "by": alert.resolved_by,
            "at": _iso(alert.resolved_at),
            "note": alert.resolution_note,
        }
    body = {"type": event_type, "timestamp": _iso(now), "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def ping_payload(*, endpoint_id: str, now: datetime) -> str:
    body = {"type": "endpoint.ping", "timestamp": _iso(now), "data": {"endpoint_id": endpoint_id}}
    return json.dumps(body, separators=(",", ":"))
