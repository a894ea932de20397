"""The stages of the router's pipeline, each one decision (see ``alerts.pipeline``)."""

from __future__ import annotations

from sqlalchemy import select

from alerts.check_ins import alert_from_event, ask_resident_first, on_detector_event
from alerts.models import Alert, AlertTransition, Meter
from alerts.notifications import previously_notified, record_notifications, subscribed_recipients
from alerts.pipeline import Pipeline, RouteContext
from alerts.policy import severity_at_least
from alerts.silences import silence_reason
from alerts.statuses import AlertStatus, Outcome


def deduplicate(ctx: RouteContext) -> None:
    """A re-delivered event (same alert id, same transition) changes nothing — except that a
    later report merged into an incident raises its report count (nobody is told again)."""
    seen = ctx.session.scalar(
        select(AlertTransition.id).where(
            AlertTransition.alert_id == ctx.event.alert_id, AlertTransition.event == ctx.event.event
        )
    )
    if seen is not None:
        if ctx.event.kind.value == "incident" and ctx.event.event == "raised":
            _merge_report_count(ctx)
        ctx.stop("duplicate")


def _merge_report_count(ctx: RouteContext) -> None:
    alert = ctx.session.get(Alert, ctx.event.alert_id)
    count = ctx.event.facts.get("report_count")
    if alert is None or not isinstance(count, int):
        return
    if count > int((alert.facts or {}).get("report_count", 0)):
        alert.facts = {**(alert.facts or {}), **ctx.event.facts}  # a new dict: JSON columns track assignment
        alert.explanation_zh, alert.explanation_en = ctx.event.explanation.zh, ctx.event.explanation.en
        alert.updated_at = ctx.now


def attach_household(ctx: RouteContext) -> None:
    """The meter's household gives the grid cell, the consent and away mode. An erased household's meter is
    recorded nothing of (an event on its way when it was erased: alerts/erasure.py)."""
    if ctx.event.meter_id is not None:
        meter = ctx.session.get(Meter, ctx.event.meter_id)
        ctx.household = meter.household if meter is not None else None
        if ctx.household is not None and ctx.household.erased_at is not None:
            ctx.stop("erased")


def record_lifecycle(ctx: RouteContext) -> None:
    """raised → a new alert; resolved (by the detector) → the alert is resolved."""
    event, session = ctx.event, ctx.session
    alert = session.get(Alert, event.alert_id)
    if alert is None and event.event == "escalated":  # the raise never arrived: this is the raise
        event = ctx.event = event.model_copy(update={"event": "raised"})
    if alert is None:
        alert = alert_from_event(event, ctx.household, status=AlertStatus.RAISED, now=ctx.now)
        session.add(alert)
    session.add(
        AlertTransition(alert_id=alert.id, event=event.event, at=event.at, actor="detector", recorded_at=ctx.now)
    )
    ctx.alert = alert
    if alert.check_in is not None and on_detector_event(ctx, alert):
        return
    if event.event == "escalated":
        if alert.status == AlertStatus.RESOLVED:
            ctx.stop("already-resolved")
        elif not severity_at_least(event.severity.value, alert.severity) or event.severity.value == alert.severity:
            ctx.stop("not-worse")
        else:
            alert.severity = event.severity.value
            alert.explanation_zh, alert.explanation_en = event.explanation.zh, event.explanation.en
            alert.facts = {**(alert.facts or {}), **event.facts}  # a new dict: JSON columns track assignment
            alert.updated_at = ctx.now
        return
    if event.event == "raised":
        if alert.status != AlertStatus.RAISED:  # its resolution overtook the raise: nothing left to say
            ctx.stop("already-resolved")
        return
    was_open = alert.status != AlertStatus.RESOLVED
    if was_open:
        alert.status, alert.resolved_at, alert.resolved_by = AlertStatus.RESOLVED, event.at, "detector"
        alert.outcome = Outcome.CONDITION_CLEARED
        alert.explanation_zh, alert.explanation_en = event.explanation.zh, event.explanation.en
    alert.next_escalation_at = alert.next_reminder_at = None
    if not was_open:
        ctx.stop("already-resolved")


def apply_silences(ctx: RouteContext) -> None:
    """Consent withdrawn, away mode, maintenance and ad-hoc silences: recorded, not notified."""
    alert, household = ctx.alert, ctx.household
    assert alert is not None
    if ctx.event.event == "resolved":
        if alert.silenced_by is not None:
            ctx.stop(f"silenced:{alert.silenced_by}")  # nobody was told, so no all-clear either
        elif household is not None and not household.consent_active:
            ctx.stop("silenced:consent")
        return
    reason = silence_reason(ctx.session, alert, household, ctx.now)
    if reason is not None:
        alert.silenced_by = reason
        ctx.stop(f"silenced:{reason}")


def enqueue_notifications(ctx: RouteContext) -> None:
    """First tier on a raise; the first tier of the new severity (and everyone told before) when the
    detector raises the severity; everyone already told on a resolve (the all-clear)."""
    alert, session, config = ctx.alert, ctx.session, ctx.config
    assert alert is not None
    if ctx.event.event == "escalated":
        roles = config.policy.roles_for(alert.severity, alert.kind, 0)
        told = {recipient.id: recipient for recipient in previously_notified(session, alert)}
        fresh = subscribed_recipients(session, alert=alert, household=ctx.household, roles=roles)
        recipients = list({**told, **{recipient.id: recipient for recipient in fresh}}.values())
        event_type = "alert.updated"
    elif ctx.event.event == "raised":
        roles = config.policy.roles_for(alert.severity, alert.kind, 0)
        recipients = subscribed_recipients(session, alert=alert, household=ctx.household, roles=roles)
        event_type = "alert.raised"
        wait = config.policy.wait_after(alert.severity, 0)
        alert.next_escalation_at = ctx.now + wait if wait is not None else None
        alert.next_reminder_at = ctx.now + config.repeat_interval
    else:
        recipients = previously_notified(session, alert)
        event_type = "alert.resolved"
    ctx.deliveries = record_notifications(
        session,
        alert=alert,
        household=ctx.household,
        recipients=recipients,
        event_type=event_type,
        tier=alert.escalation_tier,
        now=ctx.now,
        public_url=config.public_url,
    )
    if not ctx.deliveries:
        ctx.result = "no-recipient"


def default_pipeline() -> Pipeline:
    return Pipeline(
        [deduplicate, attach_household, ask_resident_first, record_lifecycle, apply_silences, enqueue_notifications]
    )
