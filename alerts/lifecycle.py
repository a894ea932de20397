"""What people and timers do to an alert after it is raised: acknowledge, resolve with an
outcome, escalate when nobody acknowledges, remind while it stays open.

Functions take the session and the time; they are called by the API (people) and by the
router's timer (escalation, reminders) inside a transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts import metrics
from alerts.models import Alert, AlertTransition, Household
from alerts.notifications import previously_notified, record_notifications, subscribed_recipients
from alerts.pipeline import RouterConfig
from alerts.statuses import PERSON_OUTCOMES, AlertStatus


class LifecycleError(ValueError):
    """The requested change does not fit the alert's state; the message says why."""


def acknowledge(
    session: Session,
    alert: Alert,
    *,
    by: str,
    now: datetime,
    role: str = "operator",
    config: RouterConfig | None = None,
) -> Alert:
    """By staff: someone has it in hand, escalation and reminders stop — until the severity's
    ``staff_ack_timeouts`` pass without a resolution, when the next tier is told. By a family member:
    "family has seen it", recorded for staff to read, and the staff tiers go on (a relative far away
    cannot knock on the door)."""
    if alert.status == AlertStatus.RESOLVED:
        raise LifecycleError(f"alert {alert.id} is already resolved")
    if role == "family":
        if alert.family_seen_at is None:  # the first family member to see it; a second tap changes nothing
            alert.family_seen_at, alert.family_seen_by, alert.updated_at = now, by, now
            session.add(AlertTransition(alert_id=alert.id, event="family_seen", at=now, actor=by, recorded_at=now))
        return alert
    if alert.status == AlertStatus.ACKNOWLEDGED:
        return alert  # idempotent: a second tap on the button changes nothing
    alert.status, alert.acknowledged_at, alert.acknowledged_by = AlertStatus.ACKNOWLEDGED, now, by
    alert.next_escalation_at = alert.next_reminder_at = None
    hold = config.staff_ack_timeouts.get(alert.severity) if config is not None else None
    alert.ack_expires_at = now + hold if hold is not None else None
    alert.updated_at = now
    session.add(AlertTransition(alert_id=alert.id, event=AlertStatus.ACKNOWLEDGED, at=now, actor=by, recorded_at=now))
    metrics.TIME_TO_ACK.labels(alert.kind).observe(max(0.0, (now - alert.created_at).total_seconds()))
    return alert


def acknowledgements_expired(session: Session, *, now: datetime, config: RouterConfig) -> list[Alert]:
    """Acknowledged by staff but not resolved in time: raised again, and the next tier is told at once
    (by ``escalate_due``, on this same pass)."""
    due = list(
        session.scalars(
            select(Alert)
            .where(
                Alert.status == AlertStatus.ACKNOWLEDGED,
                Alert.ack_expires_at.is_not(None),
                Alert.ack_expires_at <= now,
            )
            .limit(200)
        )
    )
    for alert in due:
        session.add(
            AlertTransition(
                alert_id=alert.id,
                event=f"ack_expired:{int(now.timestamp())}",
                at=now,
                actor="router",
                recorded_at=now,
            )
        )
        alert.status, alert.ack_expires_at = AlertStatus.RAISED, None
        alert.next_escalation_at, alert.next_reminder_at = now, now + config.repeat_interval
        alert.updated_at = now
    return due


def resolve(
    session: Session, alert: Alert, *, by: str, outcome: str, note: str | None, now: datetime, config: RouterConfig
) -> Alert:
    """Closed by a person with an outcome; everyone told so far hears how it ended."""
    if outcome not in PERSON_OUTCOMES:
        raise LifecycleError(f"outcome must be one of {', '.join(PERSON_OUTCOMES)}")
    if alert.status == AlertStatus.RESOLVED:
        raise LifecycleError(f"alert {alert.id} is already resolved")
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = now, by
    alert.status, alert.resolved_at, alert.resolved_by = AlertStatus.RESOLVED, now, by
    alert.outcome, alert.resolution_note = outcome, note
    alert.next_escalation_at = alert.next_reminder_at = alert.ack_expires_at = None
    alert.updated_at = now
    session.add(AlertTransition(alert_id=alert.id, event="resolved_by_person", at=now, actor=by, recorded_at=now))
    household = session.get(Household, alert.household_id) if alert.household_id else None
    if alert.silenced_by is None and (household is None or household.consent_active):
        record_notifications(
            session,
            alert=alert,
            household=household,
            recipients=previously_notified(session, alert),
            event_type="alert.resolved",
            tier=alert.escalation_tier,
            now=now,
            public_url=config.public_url,
        )
    return alert


def _consent_gone(alert: Alert, household: Household | None, now: datetime) -> bool:
    """Checked again before each escalation and reminder: consent withdrawn silences the alert for good."""
    if household is None or household.consent_active:
        return False
    alert.silenced_by = "consent"
    alert.next_escalation_at = alert.next_reminder_at = None
    alert.updated_at = now
    return True


def escalate_due(session: Session, *, now: datetime, config: RouterConfig) -> list[Alert]:
    """Alerts nobody acknowledged in time move to the next tier of their chain. A tier with
    nobody subscribed is passed over at once, so the chain never stalls on an empty step."""
    due = list(
        session.scalars(
            select(Alert)
            .where(
                Alert.status == AlertStatus.RAISED,
                Alert.silenced_by.is_(None),
                Alert.next_escalation_at.is_not(None),
                Alert.next_escalation_at <= now,
            )
            .order_by(Alert.next_escalation_at)
            .limit(200)
        )
    )
    for alert in due:
        household = session.get(Household, alert.household_id) if alert.household_id else None
        if _consent_gone(alert, household, now):
            continue
        tier = alert.escalation_tier
        while True:
            tier += 1
            roles = config.policy.roles_for(alert.severity, alert.kind, tier)
            if not roles and tier >= len(config.policy.chain(alert.severity)):
                alert.next_escalation_at = None
                break
            recipients = subscribed_recipients(session, alert=alert, household=household, roles=roles)
            if not recipients:
                continue
            alert.escalation_tier = tier
            record_notifications(
                session,
                alert=alert,
                household=household,
                recipients=recipients,
                event_type="alert.escalated",
                tier=tier,
                now=now,
                public_url=config.public_url,
            )
            session.add(
                AlertTransition(alert_id=alert.id, event=f"escalated:{tier}", at=now, actor="router", recorded_at=now)
            )
            metrics.ESCALATIONS.labels(alert.severity, str(tier)).inc()
            wait = config.policy.wait_after(alert.severity, tier)
            alert.next_escalation_at = now + wait if wait is not None else None
            break
        alert.updated_at = now
    return due


def remind_due(session: Session, *, now: datetime, config: RouterConfig) -> list[Alert]:
    """While an alert stays unacknowledged, everyone told so far is reminded at the repeat interval."""
    due = list(
        session.scalars(
            select(Alert)
            .where(
                Alert.status == AlertStatus.RAISED,
                Alert.silenced_by.is_(None),
                Alert.next_reminder_at.is_not(None),
                Alert.next_reminder_at <= now,
            )
            .order_by(Alert.next_reminder_at)
            .limit(200)
        )
    )
    for alert in due:
        household = session.get(Household, alert.household_id) if alert.household_id else None
        if _consent_gone(alert, household, now):
            continue
        record_notifications(
            session,
            alert=alert,
            household=household,
            recipients=previously_notified(session, alert),
            event_type="alert.reminder",
            tier=alert.escalation_tier,
            now=now,
            public_url=config.public_url,
        )
        session.add(
            AlertTransition(
                alert_id=alert.id, event=f"reminder:{int(now.timestamp())}", at=now, actor="router", recorded_at=now
            )
        )
        alert.next_reminder_at = now + config.repeat_interval
        alert.updated_at = now
    return due
