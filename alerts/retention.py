"""How long the alert store keeps personal data, enforced by a periodic job in the router.

Four rules, each a setting (``SHOUWANG_RETENTION_*``; the whole policy, Kafka topics included, is one table in
the README and docs/PRIVACY.md):

- a notification's stored body (the elder's name, address, the hours of water use) is emptied some days after
  its delivery ended, delivered or dead; its status, times and attempt count stay;
- a closed alert is anonymised some days after it closed (``anonymise_alerts``): its explanation (which names
  times: "no water since 06:10"), its facts but the few the monthly reports count, the resolution note and the
  names of who saw, acknowledged or resolved it go; kind, severity, times, outcome, grid cell, meter and
  household ids stay, so the reports count it as before;
- delivery attempts (each try's status code and error) are deleted some days after they were made;
- meters' day summaries (the morning's first water use, litres) are deleted some days after their day, and at
  once for a meter of an erased household (a summary on its way when the household was erased);
- what reached an erased household after its erasure is erased too (``after_erasure``).

The job works in small batches, one transaction each, so it never holds a table for long; several routers may
run it at once (each batch changes only rows still due). The clock is injected: tests move it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from alerts.db import Store
from alerts.models import Alert, AlertTransition, Delivery, DeliveryAttempt, Household, Meter, MeterDay, utcnow
from alerts.statuses import AlertStatus, DeliveryStatus
from shouwang.settings import Settings

log = logging.getLogger(__name__)

BATCH = 500
# What an anonymised alert says instead of its explanation.
ANONYMISED_ZH = "（个人信息已删除）"
ANONYMISED_EN = "(personal details removed)"
# The facts an anonymised alert keeps: what the monthly report counts residents' reports by (alerts/reports.py).
# Household alerts' facts (hourly water use, silence lengths, register values) all go.
STATISTICAL_FACTS = ("category", "urgency", "report_count", "households")
ERASER = "erasure"  # who closes the alerts still open when their household is erased (alerts/erasure.py)
# Actors that name no person: they stay in an anonymised alert's history.
MACHINE_ACTORS = ("detector", "router", ERASER)


@dataclass(frozen=True)
class RetentionPolicy:
    payload_after: timedelta
    alert_facts_after: timedelta
    attempts_after: timedelta
    daily_after: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            payload_after=timedelta(days=settings.retention_payload_days),
            alert_facts_after=timedelta(days=settings.retention_alert_facts_days),
            attempts_after=timedelta(days=settings.retention_attempts_days),
            daily_after=timedelta(days=settings.retention_daily_days),
        )


@dataclass
class Purged:
    """What one pass removed, by kind of record."""

    payloads: int = 0
    alerts: int = 0
    attempts: int = 0
    meter_days: int = 0

    @property
    def total(self) -> int:
        return sum(getattr(self, field.name) for field in fields(self))


def _machine(actor: str | None) -> str | None:
    """An actor kept after anonymisation: machines only (people's names and keys' names go)."""
    return actor if actor in MACHINE_ACTORS else None


def close_erased(session: Session, alert: Alert, *, now: datetime) -> bool:
    """Close an open alert of an erased household (nobody is told); False if it was closed already."""
    if alert.status == AlertStatus.RESOLVED:
        return False
    alert.status, alert.resolved_at, alert.resolved_by = AlertStatus.RESOLVED, now, ERASER
    alert.next_escalation_at = alert.next_reminder_at = None
    alert.check_in_due_at = alert.recheck_at = alert.ack_expires_at = None
    alert.updated_at = now
    session.add(AlertTransition(alert_id=alert.id, event="erased", at=now, actor=ERASER, recorded_at=now))
    return True


def anonymise_alerts(session: Session, alerts: Sequence[Alert], *, now: datetime) -> None:
    """Leave only the alerts' anonymous statistics (module docstring); their history keeps the events and times,
    not who. Idempotent."""
    for alert in alerts:
        alert.explanation_zh, alert.explanation_en = ANONYMISED_ZH, ANONYMISED_EN
        facts = alert.facts or {}
        alert.facts = {key: facts[key] for key in STATISTICAL_FACTS if key in facts}  # a new dict: JSON tracks it
        alert.resolution_note = None
        alert.acknowledged_by = _machine(alert.acknowledged_by)
        alert.family_seen_by = _machine(alert.family_seen_by)
        alert.resolved_by = _machine(alert.resolved_by)
        alert.anonymised_at = alert.anonymised_at or now
    if alerts:
        session.execute(
            update(AlertTransition)
            .where(
                AlertTransition.alert_id.in_([alert.id for alert in alerts]),
                AlertTransition.actor.not_in(MACHINE_ACTORS),
            )
            .values(actor=None)
            .execution_options(synchronize_session=False)
        )


def _batches(store: Store, step: Callable[[Session], int]) -> int:
    """Run ``step`` (one batch, returning how many rows it changed) in transactions of its own until a batch
    comes back short."""
    total = 0
    while True:
        with store.transaction() as session:
            done = step(session)
        total += done
        if done < BATCH:
            return total


def purge_payloads(store: Store, *, before: datetime) -> int:
    """Empty the bodies of deliveries that ended before ``before``. A dead delivery has no end time of its own:
    its next attempt time is when it was last tried (or would have been), never earlier than its end."""
    ended = func.coalesce(Delivery.delivered_at, Delivery.next_attempt_at)

    def step(session: Session) -> int:
        ids = list(
            session.scalars(
                select(Delivery.id)
                .where(
                    Delivery.status.in_([DeliveryStatus.DELIVERED, DeliveryStatus.DEAD]),
                    Delivery.payload != "",
                    ended < before,
                )
                .limit(BATCH)
            )
        )
        if ids:
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids))
                .values(payload="")
                .execution_options(synchronize_session=False)
            )
        return len(ids)

    return _batches(store, step)


def anonymise_closed_alerts(store: Store, *, before: datetime, now: datetime) -> int:
    """Anonymise the alerts closed before ``before`` that still hold personal facts."""

    def step(session: Session) -> int:
        alerts = list(
            session.scalars(
                select(Alert)
                .where(Alert.status == AlertStatus.RESOLVED, Alert.resolved_at < before, Alert.anonymised_at.is_(None))
                .limit(BATCH)
            )
        )
        anonymise_alerts(session, alerts, now=now)
        return len(alerts)

    return _batches(store, step)


def trim_attempts(store: Store, *, before: datetime) -> int:
    def step(session: Session) -> int:
        ids = list(session.scalars(select(DeliveryAttempt.id).where(DeliveryAttempt.at < before).limit(BATCH)))
        if ids:
            session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.id.in_(ids)))
        return len(ids)

    return _batches(store, step)


def purge_meter_days(store: Store, *, before_day: str) -> int:
    """Day summaries of days before ``before_day`` (YYYY-MM-DD), and every one of an erased household's meter."""
    erased_meters = select(Meter.meter_id).join(Household).where(Household.erased_at.is_not(None))

    def step(session: Session) -> int:
        ids = list(
            session.scalars(
                select(MeterDay.id)
                .where((MeterDay.day < before_day) | MeterDay.meter_id.in_(erased_meters))
                .limit(BATCH)
            )
        )
        if ids:
            session.execute(delete(MeterDay).where(MeterDay.id.in_(ids)))
        return len(ids)

    return _batches(store, step)


def after_erasure(store: Store, *, now: datetime) -> tuple[int, int]:
    """What reached an erased household after its erasure: an alert a router recorded in a transaction that
    read the household just before the erasure committed (PostgreSQL runs the two side by side), and the
    bodies of its notifications. The alerts are closed and anonymised; the bodies of ended deliveries emptied
    (a pending one is dead-lettered by the dispatcher first: the household's consent counts as withdrawn).
    Returns (alerts, bodies)."""
    erased = select(Household.id).where(Household.erased_at.is_not(None))

    def alerts_step(session: Session) -> int:
        alerts = list(
            session.scalars(
                select(Alert).where(Alert.household_id.in_(erased), Alert.anonymised_at.is_(None)).limit(BATCH)
            )
        )
        for alert in alerts:
            close_erased(session, alert, now=now)
        anonymise_alerts(session, alerts, now=now)
        return len(alerts)

    def bodies_step(session: Session) -> int:
        ids = list(
            session.scalars(
                select(Delivery.id)
                .where(
                    Delivery.alert_id.in_(select(Alert.id).where(Alert.household_id.in_(erased))),
                    Delivery.status.in_([DeliveryStatus.DELIVERED, DeliveryStatus.DEAD]),
                    Delivery.payload != "",
                )
                .limit(BATCH)
            )
        )
        if ids:
            statement = update(Delivery).where(Delivery.id.in_(ids)).values(payload="")
            session.execute(statement.execution_options(synchronize_session=False))
        return len(ids)

    return _batches(store, alerts_step), _batches(store, bodies_step)


def enforce(store: Store, policy: RetentionPolicy, *, now: datetime) -> Purged:
    """One pass of every rule, as of ``now``."""
    late_alerts, late_bodies = after_erasure(store, now=now)
    return Purged(
        payloads=late_bodies + purge_payloads(store, before=now - policy.payload_after),
        alerts=late_alerts + anonymise_closed_alerts(store, before=now - policy.alert_facts_after, now=now),
        attempts=trim_attempts(store, before=now - policy.attempts_after),
        # A day is a household's local day: a day of margin covers every time zone.
        meter_days=purge_meter_days(
            store, before_day=(now - policy.daily_after - timedelta(days=1)).date().isoformat()
        ),
    )


class RetentionJob:
    """The router's task: a pass every ``every_s`` seconds (the first at once)."""

    def __init__(
        self, store: Store, policy: RetentionPolicy, *, every_s: float, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.store = store
        self.policy = policy
        self.every_s = every_s
        self.clock = clock

    def run_once(self) -> Purged:
        purged = enforce(self.store, self.policy, now=self.clock())
        if purged.total:
            log.info(
                "retention: %d notification bodies emptied, %d alerts anonymised, %d delivery attempts and "
                "%d day summaries deleted",
                purged.payloads,
                purged.alerts,
                purged.attempts,
                purged.meter_days,
            )
        return purged

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:  # the database away for a moment: the next pass does it
                log.exception("retention pass failed; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.every_s)
