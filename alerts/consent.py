"""The elder's consent: withdrawing it is total and immediate; granting it again starts afresh.

Withdrawal, in the one transaction that records it: every open alert of the household is silenced
(``consent``) with its timers cleared, and every notification about the household not yet sent is
dead-lettered — they carry the elder's name and address. The router's timers, the resolve path and the
dispatcher check consent again before they send anything (``consent_withdrawn`` below), the API refuses
the household's readings, and the worker is told (feedback topic) to drop them and delete the meters'
learned state. Only an operator records a withdrawal or a grant, with who and on what evidence; both
stay as history (``ConsentEvent``).
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from alerts.db import rows_changed
from alerts.models import Alert, ConsentEvent, Delivery, Household
from alerts.statuses import AlertStatus, DeliveryStatus

WITHDRAWN_ERROR = "consent withdrawn: not sent"


class ConsentError(ValueError):
    """A change of consent that does not fit the household's state; the message says why."""


def withdraw(session: Session, household: Household, *, by: str, evidence: str, recorded_by: str, now: datetime) -> int:
    """Record a withdrawal and stop everything about the household at once. Returns how many pending
    notifications were dead-lettered."""
    if not household.consent_active:
        raise ConsentError(f"consent for household {household.id} is already withdrawn")
    household.consent_withdrawn_at, household.consent_withdrawn_by = now, by
    household.updated_at = now
    session.add(
        ConsentEvent(
            household_id=household.id, action="withdrawn", by=by, evidence=evidence, recorded_by=recorded_by, at=now
        )
    )
    open_alerts = session.scalars(
        select(Alert).where(Alert.household_id == household.id, Alert.status != AlertStatus.RESOLVED)
    )
    for alert in open_alerts:
        alert.silenced_by = "consent"
        alert.next_escalation_at = alert.next_reminder_at = None
        alert.check_in_due_at = alert.recheck_at = alert.ack_expires_at = None
        alert.updated_at = now
    alert_ids = select(Alert.id).where(Alert.household_id == household.id)
    stopped = rows_changed(
        session,
        update(Delivery)
        .where(Delivery.status == DeliveryStatus.PENDING, Delivery.alert_id.in_(alert_ids))
        .values(status=DeliveryStatus.DEAD, last_error=WITHDRAWN_ERROR, claimed_until=None)
        .execution_options(synchronize_session=False),
    )
    # Notifications about no alert (all is well, away mode) name the household in their payload.
    for delivery in session.scalars(
        select(Delivery).where(
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.alert_id.is_(None),
            Delivery.payload.contains(f'"{household.id}"'),
        )
    ):
        if household_of_payload(delivery.payload) == household.id:
            delivery.status, delivery.last_error, delivery.claimed_until = DeliveryStatus.DEAD, WITHDRAWN_ERROR, None
            stopped += 1
    return stopped


def grant(
    session: Session,
    household: Household,
    *,
    by: str,
    evidence: str,
    scope: str,
    recorded_by: str,
    now: datetime,
) -> None:
    """Record consent given again: notifications resume for what happens from now on (alerts silenced
    while it was withdrawn stay silenced); the worker learns the household's routine afresh."""
    if household.consent_active:
        raise ConsentError(f"household {household.id} has consent already")
    household.consent_given_by, household.consent_given_at, household.consent_scope = by, now, scope
    household.consent_withdrawn_at = household.consent_withdrawn_by = None
    household.updated_at = now
    session.add(
        ConsentEvent(
            household_id=household.id,
            action="granted",
            by=by,
            evidence=evidence,
            scope=scope,
            recorded_by=recorded_by,
            at=now,
        )
    )


def history(session: Session, household_id: str) -> list[ConsentEvent]:
    return list(
        session.scalars(select(ConsentEvent).where(ConsentEvent.household_id == household_id).order_by(ConsentEvent.id))
    )


def household_of_payload(payload: str) -> str | None:
    """The household a stored notification is about (``data.household.id``), if any."""
    try:
        data = json.loads(payload).get("data") or {}
    except (ValueError, AttributeError):
        return None
    household = data.get("household") if isinstance(data, dict) else None
    return household.get("id") if isinstance(household, dict) else None


def consent_withdrawn(session: Session, delivery: Delivery) -> bool:
    """Checked by the dispatcher just before it sends: is this notification about a household whose
    consent was withdrawn since it was recorded?"""
    if delivery.alert_id is not None:
        alert = session.get(Alert, delivery.alert_id)
        household_id = alert.household_id if alert is not None else None
    else:
        household_id = household_of_payload(delivery.payload)
    if household_id is None:
        return False
    household = session.get(Household, household_id)
    return household is not None and not household.consent_active
