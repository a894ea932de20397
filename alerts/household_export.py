"""Everything Shouwang holds about one household, as JSON: the answer to a data-subject access request (PIPL
articles 44 and 45: to see and copy one's personal information).

Pure queries over a session: the API serves it (``GET /v1/households/{id}/export``, operators only:
docs/PRIVACY.md says why). What it holds: the household with its consent and consent history, away mode and
routine hints; its meters and their day summaries; the recipients subscribed to it, with their channels and
keys (never a secret, a sealed credential or a key's hash); every alert of it with its history, notifications,
their stored bodies and every attempt; the messages about no alert that name it (all is well, away mode) and
the all-is-well days sent; the silences set on it or its meters; once erased, the erasure record; and the audit
trail's events about it (who read or changed its data, and when).
Nothing about another household: a recipient's subscriptions to other homes are left out.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from alerts import audit
from alerts.consent import history, household_of_payload
from alerts.models import (
    Alert,
    AlertTransition,
    AllIsWellMessage,
    ApiKey,
    Delivery,
    DeliveryAttempt,
    Endpoint,
    Household,
    HouseholdErasure,
    Meter,
    MeterDay,
    Recipient,
    Silence,
    Subscription,
    utcnow,
)

FORMAT = "shouwang.household-export"
VERSION = 1


def _value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _row(obj: object, *names: str) -> dict[str, Any]:
    return {name: _value(getattr(obj, name)) for name in names}


def export_household(session: Session, household: Household, *, now: datetime | None = None) -> dict[str, Any]:
    """The whole export of ``household`` (module docstring), JSON-ready."""
    meters = list(session.scalars(select(Meter).where(Meter.household_id == household.id).order_by(Meter.meter_id)))
    meter_ids = [meter.meter_id for meter in meters]
    subscriptions = list(
        session.scalars(select(Subscription).where(Subscription.household_id == household.id).order_by(Subscription.id))
    )
    alerts = list(
        session.scalars(select(Alert).where(Alert.household_id == household.id).order_by(Alert.raised_at, Alert.id))
    )
    erasure = session.get(HouseholdErasure, household.id)
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": _value(now or utcnow()),
        "household": {
            **_row(
                household,
                "id",
                "name",
                "address",
                "timezone",
                "grid_cell",
                "community",
                "created_at",
                "updated_at",
                "erased_at",
            ),
            "consent": _row(
                household,
                "consent_given_by",
                "consent_given_at",
                "consent_scope",
                "consent_withdrawn_at",
                "consent_withdrawn_by",
            ),
            "consent_history": [
                _row(event, "action", "by", "evidence", "scope", "recorded_by", "at")
                for event in history(session, household.id)
            ],
            "away": _row(household, "away_until", "away_note", "away_set_by", "away_ends_on_use"),
            "routine_hints": household.routine_hints,
        },
        "meters": [_row(meter, "meter_id", "reporting_interval_s", "created_at") for meter in meters],
        "meter_days": [
            _row(day, "meter_id", "day", "first_use_at", "litres", "hours_with_use", "complete", "updated_at")
            for day in session.scalars(
                select(MeterDay).where(MeterDay.meter_id.in_(meter_ids)).order_by(MeterDay.meter_id, MeterDay.day)
            )
        ],
        "recipients": _recipients(session, subscriptions),
        "subscriptions": [
            {
                **_row(
                    subscription,
                    "id",
                    "recipient_id",
                    "kinds",
                    "min_severity",
                    "all_is_well_every",
                    "all_is_well_at",
                    "all_is_well_call",
                    "created_at",
                ),
                "all_is_well_sent": [
                    _row(message, "day", "sent_at")
                    for message in session.scalars(
                        select(AllIsWellMessage)
                        .where(AllIsWellMessage.subscription_id == subscription.id)
                        .order_by(AllIsWellMessage.day)
                    )
                ],
            }
            for subscription in subscriptions
        ],
        "alerts": [_alert(session, alert) for alert in alerts],
        "other_notifications": [_delivery(session, d) for d in _naming(session, household.id)],
        "silences": [
            _row(silence, "id", "household_id", "meter_id", "kind", "starts_at", "ends_at", "created_by", "reason")
            for silence in session.scalars(
                select(Silence)
                .where(or_(Silence.household_id == household.id, Silence.meter_id.in_(meter_ids)))
                .order_by(Silence.starts_at, Silence.id)
            )
        ],
        "erasure": None if erasure is None else _row(erasure, "erased_at", "erased_by", "counts"),
        "audit": _audit(session, household.id),
    }


def _audit(session: Session, household_id: str) -> list[dict[str, Any]]:
    """Who read or changed its data, and when (ids only): the audit trail's events about it. A list read names
    other households and their alerts too: of those, only that it happened, by whom and when."""
    out = []
    for event in session.scalars(audit.find(household_id=household_id).order_by(audit.AuditEvent.id)):
        shown = audit.as_dict(event)
        del shown["households"]
        if event.household_id != household_id:
            shown["object_id"] = shown["detail"] = None
        out.append(shown)
    return out


def _recipients(session: Session, subscriptions: list[Subscription]) -> list[dict[str, Any]]:
    out = []
    for recipient_id in sorted({s.recipient_id for s in subscriptions}):
        recipient = session.get(Recipient, recipient_id)
        if recipient is None:
            continue
        endpoints = session.scalars(select(Endpoint).where(Endpoint.recipient_id == recipient_id).order_by(Endpoint.id))
        keys = session.scalars(select(ApiKey).where(ApiKey.recipient_id == recipient_id).order_by(ApiKey.id))
        out.append(
            {
                **_row(recipient, "id", "name", "role", "created_at"),
                # A channel's address as stored: a webhook's URL, another channel's masked form; never its secret.
                "channels": [
                    {
                        **_row(endpoint, "id", "type", "status", "disabled_reason", "created_at"),
                        "address": endpoint.url,
                    }
                    for endpoint in endpoints
                ],
                "keys": [_row(key, "id", "name", "role", "created_at", "revoked_at") for key in keys],
            }
        )
    return out


def _alert(session: Session, alert: Alert) -> dict[str, Any]:
    return {
        **_row(
            alert,
            "id",
            "kind",
            "severity",
            "status",
            "meter_id",
            "grid_cell",
            "since",
            "raised_at",
            "explanation_zh",
            "explanation_en",
            "facts",
            "silenced_by",
            "acknowledged_at",
            "acknowledged_by",
            "family_seen_at",
            "family_seen_by",
            "resolved_at",
            "resolved_by",
            "outcome",
            "resolution_note",
            "escalation_tier",
            "check_in",
            "anonymised_at",
            "created_at",
        ),
        "history": [
            _row(transition, "event", "at", "actor")
            for transition in session.scalars(
                select(AlertTransition).where(AlertTransition.alert_id == alert.id).order_by(AlertTransition.id)
            )
        ],
        "notifications": [
            _delivery(session, delivery)
            for delivery in session.scalars(
                select(Delivery).where(Delivery.alert_id == alert.id).order_by(Delivery.created_at, Delivery.id)
            )
        ],
    }


def _naming(session: Session, household_id: str) -> list[Delivery]:
    """Notifications about no alert whose body names the household."""
    candidates = session.scalars(
        select(Delivery)
        .where(Delivery.alert_id.is_(None), Delivery.payload.contains(f'"{household_id}"'))
        .order_by(Delivery.created_at, Delivery.id)
    )
    return [delivery for delivery in candidates if household_of_payload(delivery.payload) == household_id]


def _body(payload: str) -> Any:
    if not payload:
        return None
    try:
        return json.loads(payload)
    except ValueError:  # not JSON: shown as stored rather than left out
        return payload


def _delivery(session: Session, delivery: Delivery) -> dict[str, Any]:
    return {
        **_row(
            delivery,
            "id",
            "recipient_id",
            "endpoint_id",
            "event_type",
            "tier",
            "status",
            "attempts",
            "created_at",
            "delivered_at",
            "last_status_code",
            "last_error",
        ),
        # The body exactly as sent; None once emptied by the retention job or the household's erasure.
        "payload": _body(delivery.payload),
        "attempt_history": [
            _row(attempt, "at", "outcome", "status_code", "error", "duration_ms")
            for attempt in session.scalars(
                select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery.id).order_by(DeliveryAttempt.id)
            )
        ],
    }
