"""Ask the elder first: the resident check-in tier of ``no_usage``.

At the detector's check limit (a ``check_in`` event) only the resident is asked, through their own
channel: "您好，今天还没看到用水，您还好吗？" with one-tap answers. Carers (family and grid worker) are
told when nobody answers within ``SHOUWANG_CHECK_IN_TIMEOUT``, or at the detector's alarm limit
(``raised``) if that comes first: asking the resident never makes carers hear later than they would
without it. "I'm fine" closes the alert as ``resident_fine`` and nobody else is told, unless the silence
reaches 24 h, which goes to carers as critical whatever was answered. "I'm away" sets the household's
away mode with the resident as the actor, until the day given or until water is used again.

A household with no resident channel (or none that works: every check-in message dead) keeps the
behaviour without check-ins: carers at the alarm limit.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from alerts.lifecycle import LifecycleError, resolve
from alerts.models import Alert, AlertTransition, Delivery, Endpoint, Household, Recipient
from alerts.notifications import record_notifications, subscribed_recipients
from alerts.pipeline import RouteContext, RouterConfig
from alerts.policy import RESIDENT
from alerts.silences import silence_reason
from alerts.statuses import AlertStatus, CheckIn, DeliveryStatus, EndpointStatus, Outcome
from shouwang.events import AlertEvent

CHECK_IN_EVENT = "alert.check_in"
# Past this, a silence goes to carers whatever the resident answered.
ABSENCE = timedelta(hours=24)
# A check-in decided this long before the router sees it (history uploaded late, a meter that sends a
# day at once) asks nobody: the silence may be long over, and an "are you well?" about last night helps
# nobody. The alarm limit speaks to carers then, as for a household without a resident channel.
STALE_AFTER = timedelta(hours=1)


def ask_resident_first(ctx: RouteContext) -> None:
    """A ``check_in`` event: a new alert that asks only the resident, or nothing at all when the
    household has nobody to ask (the alarm limit will speak to carers then, as without check-ins)."""
    if ctx.event.event != "check_in":
        return
    event, session, household = ctx.event, ctx.session, ctx.household
    if session.get(Alert, event.alert_id) is not None:
        ctx.stop("duplicate")  # the episode is known already (a re-delivered check-in)
        return
    alert = alert_from_event(event, household, status=AlertStatus.CHECKING, now=ctx.now)
    alert.check_in = CheckIn.ASKED
    if household is None:
        ctx.stop("check-in-skipped:unknown-meter")
        return
    if ctx.now - event.at > STALE_AFTER:
        ctx.stop("check-in-skipped:late")
        return
    why_not = silence_reason(session, alert, household, ctx.now)
    if why_not is not None:
        ctx.stop(f"check-in-skipped:{why_not}")
        return
    residents = [
        recipient
        for recipient in subscribed_recipients(session, alert=alert, household=household, roles={RESIDENT})
        if session.scalar(
            select(Endpoint.id).where(Endpoint.recipient_id == recipient.id, Endpoint.status == EndpointStatus.ACTIVE)
        )
    ]
    if not residents:
        ctx.stop("check-in-skipped:no-resident")
        return
    session.add(alert)
    alert.check_in_due_at = ctx.now + ctx.config.check_in_timeout
    session.add(
        AlertTransition(alert_id=alert.id, event="check_in", at=event.at, actor="detector", recorded_at=ctx.now)
    )
    ctx.alert = alert
    ctx.deliveries = record_notifications(
        session,
        alert=alert,
        household=household,
        recipients=residents,
        event_type=CHECK_IN_EVENT,
        tier=0,
        now=ctx.now,
        public_url=ctx.config.public_url,
    )
    ctx.stop("asked-resident")


def alert_from_event(event: AlertEvent, household: Household | None, *, status: str, now: datetime) -> Alert:
    """A new alert for the episode an event names (not yet added to the session)."""
    return Alert(
        id=event.alert_id,
        kind=event.kind.value,
        severity=event.severity.value,
        status=status,
        meter_id=event.meter_id,
        household_id=household.id if household else None,
        grid_cell=household.grid_cell if household else event.grid_cell,
        since=event.since,
        raised_at=event.at,
        explanation_zh=event.explanation.zh,
        explanation_en=event.explanation.en,
        facts=dict(event.facts),
        escalation_tier=0,
        created_at=now,
        updated_at=now,
    )


def end_check_in(session: Session, alert: Alert, state: CheckIn) -> None:
    """The resident is no longer waited for: messages to them not yet sent are not sent any more (an
    "are you well?" arriving hours later helps nobody)."""
    alert.check_in, alert.check_in_due_at = state, None
    resident_ids = select(Recipient.id).where(Recipient.role == RESIDENT)
    session.execute(
        update(Delivery)
        .where(
            Delivery.alert_id == alert.id,
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.recipient_id.in_(resident_ids),
        )
        .values(status=DeliveryStatus.DEAD, last_error="the check-in is over", claimed_until=None)
        .execution_options(synchronize_session=False)
    )


def tell_carers(session: Session, alert: Alert, *, now: datetime, config: RouterConfig, actor: str) -> list[Delivery]:
    """The first tier of the alert's chain is told now, and escalation and reminders start, as for a raise."""
    household = session.get(Household, alert.household_id) if alert.household_id else None
    alert.status = AlertStatus.RAISED
    alert.updated_at = now
    roles = config.policy.roles_for(alert.severity, alert.kind, 0)
    deliveries = record_notifications(
        session,
        alert=alert,
        household=household,
        recipients=subscribed_recipients(session, alert=alert, household=household, roles=roles),
        event_type="alert.raised",
        tier=0,
        now=now,
        public_url=config.public_url,
    )
    wait = config.policy.wait_after(alert.severity, 0)
    alert.next_escalation_at = now + wait if wait is not None else None
    alert.next_reminder_at = now + config.repeat_interval
    session.add(AlertTransition(alert_id=alert.id, event=f"carers:{actor}", at=now, actor="router", recorded_at=now))
    return deliveries


def check_ins_due(session: Session, *, now: datetime, config: RouterConfig) -> list[Alert]:
    """Check-ins nobody answered in time go to carers; those whose every message to the resident died
    wait for the alarm limit instead, as for a household without a resident channel."""
    asked = list(
        session.scalars(
            select(Alert)
            .where(Alert.status == AlertStatus.CHECKING, Alert.check_in == CheckIn.ASKED)
            .order_by(Alert.check_in_due_at)
            .limit(500)
        )
    )
    changed = []
    for alert in asked:
        statuses = set(
            session.scalars(
                select(Delivery.status)
                .join(Recipient, Delivery.recipient_id == Recipient.id)
                .where(Delivery.alert_id == alert.id, Recipient.role == RESIDENT)
            )
        )
        if statuses == {DeliveryStatus.DEAD}:
            end_check_in(session, alert, CheckIn.FAILED)
            session.add(
                AlertTransition(alert_id=alert.id, event="check_in_failed", at=now, actor="router", recorded_at=now)
            )
            changed.append(alert)
        elif alert.check_in_due_at is not None and alert.check_in_due_at <= now:
            end_check_in(session, alert, CheckIn.UNANSWERED)
            minutes = round(config.check_in_timeout / timedelta(minutes=1))
            alert.explanation_zh = f"已询问老人本人，{minutes} 分钟未回复。" + alert.explanation_zh
            asked_en = f"The resident was asked and did not answer in {minutes} min. "
            alert.explanation_en = asked_en + alert.explanation_en
            if not _silenced(session, alert, now):
                tell_carers(session, alert, now=now, config=config, actor="check_in_unanswered")
            changed.append(alert)
    return changed


def rechecks_due(session: Session, *, now: datetime, config: RouterConfig) -> list[Alert]:
    """A resident said "I'm fine" but the silence reached 24 h (no water use ended it): carers are told,
    critical, whatever was answered."""
    due = list(
        session.scalars(
            select(Alert)
            .where(Alert.status == AlertStatus.RESOLVED, Alert.recheck_at.is_not(None), Alert.recheck_at <= now)
            .limit(200)
        )
    )
    for alert in due:
        alert.recheck_at = None
        alert.severity = "critical"
        alert.check_in = CheckIn.FINE_BUT_SILENT
        alert.outcome = alert.resolved_at = alert.resolved_by = alert.resolution_note = None
        alert.acknowledged_at = alert.acknowledged_by = None
        alert.explanation_zh = "老人曾答复“我很好”，但已超过 24 小时未用水。" + alert.explanation_zh
        alert.explanation_en = "The resident answered 'I'm fine', but 24 h have passed without water use. " + (
            alert.explanation_en
        )
        if not _silenced(session, alert, now):
            tell_carers(session, alert, now=now, config=config, actor="silent_24h")
    return due


def _silenced(session: Session, alert: Alert, now: datetime) -> bool:
    """Consent withdrawn, away mode or a silence since the resident was asked: recorded, nobody told."""
    household = session.get(Household, alert.household_id) if alert.household_id else None
    reason = silence_reason(session, alert, household, now)
    if reason is None:
        return False
    alert.status, alert.silenced_by, alert.updated_at = AlertStatus.RAISED, reason, now
    return True


def on_detector_event(ctx: RouteContext, alert: Alert) -> bool:
    """What a ``raised`` or ``resolved`` of the detector means for an alert that began as a check-in.
    Returns True when the event has been dealt with (the pipeline stops)."""
    event, session = ctx.event.event, ctx.session
    if event == "resolved":
        alert.recheck_at = None  # water was used: the 24-hour watch is over
        household = ctx.household
        if household is not None and household.away_ends_on_use and household.is_away(ctx.now):
            household.away_until, household.away_ends_on_use = None, False  # back home
        if alert.status == AlertStatus.CHECKING:
            end_check_in(session, alert, CheckIn(alert.check_in or CheckIn.ASKED))
            alert.status, alert.resolved_at, alert.resolved_by = AlertStatus.RESOLVED, ctx.event.at, "detector"
            alert.outcome = Outcome.CONDITION_CLEARED
            alert.updated_at = ctx.now
            ctx.stop("resolved-before-carers")  # only the resident was asked: no all-clear to anyone
            return True
        return False
    if event == "raised" and alert.status == AlertStatus.CHECKING:
        # The alarm limit, with the resident still asked (or their channel failed): carers now, never later.
        if alert.check_in == CheckIn.ASKED:
            end_check_in(session, alert, CheckIn.UNANSWERED)
        alert.severity = ctx.event.severity.value
        alert.explanation_zh, alert.explanation_en = ctx.event.explanation.zh, ctx.event.explanation.en
        alert.facts = {**(alert.facts or {}), **ctx.event.facts}
        alert.status = AlertStatus.RAISED
        return False  # the stages go on: silences, then the carers' notifications
    if event == "raised" and alert.check_in in {CheckIn.UNANSWERED, CheckIn.FINE_BUT_SILENT}:
        alert.facts = {**(alert.facts or {}), **ctx.event.facts}
        ctx.stop("carers-told-already")  # at the check-in's timeout
        return True
    return False


# -- the resident's answers (one-tap links, SMS replies) ----------------------------------------------
def answer_fine(session: Session, alert: Alert, *, by: str, now: datetime, config: RouterConfig) -> Alert:
    """ "我很好": the alert closes as resident_fine; carers already told hear so; a silence that still
    reaches 24 h goes to carers anyway."""
    _check_answerable(alert)
    if alert.status == AlertStatus.CHECKING:  # settled with the resident: carers never hear of it
        end_check_in(session, alert, CheckIn.FINE)
    resolve(session, alert, by=by, outcome=Outcome.RESIDENT_FINE, note="老人本人答复：我很好", now=now, config=config)
    alert.recheck_at = alert.since + ABSENCE
    return alert


def answer_away(
    session: Session, alert: Alert, *, by: str, until: str, now: datetime, config: RouterConfig
) -> Household:
    """ "我不在家": away mode until the end of the local day ``until`` (YYYY-MM-DD) or until water is used
    again, at most ``config.away_max``; the alert closes as resident_fine."""
    _check_answerable(alert)
    household = session.get(Household, alert.household_id) if alert.household_id else None
    if household is None:
        raise LifecycleError("this alert has no household to set away")
    try:
        day = datetime.strptime(until, "%Y-%m-%d").date()
    except ValueError:
        raise LifecycleError("请选择回家的日期 / choose the day you will be back (YYYY-MM-DD)") from None
    zone = ZoneInfo(household.timezone)
    ends = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    if ends <= now:
        raise LifecycleError("这个日期已经过去 / that day has passed")
    max_days = round(config.away_max / timedelta(days=1))
    if ends - now > config.away_max + timedelta(days=1):
        raise LifecycleError(f"最长可设 {max_days} 天 / away mode lasts at most {max_days} days")
    household.away_until, household.away_set_by, household.away_ends_on_use = ends, by, True
    household.away_note = f"老人本人答复：不在家，{day.isoformat()} 前回来 / resident away until {day.isoformat()}"
    household.updated_at = now
    if alert.status == AlertStatus.CHECKING:  # settled with the resident: carers never hear of it
        end_check_in(session, alert, CheckIn.AWAY)
    resolve(session, alert, by=by, outcome=Outcome.RESIDENT_FINE, note=household.away_note, now=now, config=config)
    return household


def _check_answerable(alert: Alert) -> None:
    if alert.status == AlertStatus.RESOLVED:
        raise LifecycleError(f"alert {alert.id} is already resolved")
    if alert.kind != "no_usage" or alert.check_in is None:
        raise LifecycleError(f"alert {alert.id} did not ask the resident")
