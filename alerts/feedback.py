"""What people teach the detectors, sent to the worker on the feedback topic (keyed by meter id).

Four kinds of message (schemas in ``shouwang.events``): a person's verdict that a ``no_usage`` alarm or
check-in was needless (``false_alarm``, ``resident_fine``), the routine hints given at enrolment, a
household's consent withdrawn or given again (alerts/consent.py), and a household's erasure
(alerts/erasure.py: its meters' learned state deleted, their readings refused).
The alert store is the outbox: a verdict or a hint is recorded in the database by whoever made it (the
API, an action link), and this publisher sends what is not sent yet and marks it sent. Delivery is
at-least-once: a router that stops between Kafka's acknowledgement and its commit sends a message
again, which teaches the detector the same thing a little more strongly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from alerts.db import Store
from alerts.models import Alert, ConsentEvent, Household, HouseholdErasure, Meter, utcnow
from alerts.statuses import FEEDBACK_OUTCOMES, AlertStatus
from shouwang.durability import durable_producer
from shouwang.events import ConsentChange, MeterErased, MeterHints, OutcomeFeedback, RoutineHints, encode

log = logging.getLogger(__name__)
BATCH = 200


def pending_feedback(alerts: list[Alert]) -> list[tuple[str, OutcomeFeedback | None]]:
    """The feedback messages for alerts closed by a person as needless (pure: tested without Kafka); None
    for one that cannot be sent (it is marked sent all the same, so it is not tried at every tick)."""
    messages = []
    for alert in alerts:
        if alert.meter_id is None or alert.resolved_at is None:
            continue
        silence_h = (alert.raised_at - alert.since).total_seconds() / 3600.0
        try:
            message = OutcomeFeedback.model_validate(
                {
                    "alert_id": alert.id,
                    "meter_id": alert.meter_id,
                    "kind": alert.kind,
                    "since": alert.since,
                    "silence_h": max(silence_h, 0.01),
                    "outcome": alert.outcome,
                    "at": alert.resolved_at,
                }
            )
        except ValueError:  # an alert older than the schema's bounds: nothing the detector could use
            log.warning("alert %s: feedback not valid; not sent", alert.id)
            message = None
        messages.append((alert.id, message))
    return messages


class FeedbackPublisher:
    def __init__(
        self, store: Store, topic: str, bootstrap_servers: str, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.store = store
        self.topic = topic
        self.bootstrap_servers = bootstrap_servers
        self.clock = clock

    def collect_erasures(self) -> list[tuple[str, list[MeterErased]]]:
        """Households erased, not yet told to the worker: each one's meters' messages."""
        with self.store.transaction() as session:
            erasures = list(
                session.scalars(
                    select(HouseholdErasure)
                    .where(HouseholdErasure.sent_at.is_(None))
                    .order_by(HouseholdErasure.erased_at)
                    .limit(BATCH)
                )
            )
            return [
                (
                    erasure.household_id,
                    [
                        MeterErased(meter_id=meter_id, at=erasure.erased_at)
                        for meter_id in session.scalars(
                            select(Meter.meter_id).where(Meter.household_id == erasure.household_id)
                        )
                    ],
                )
                for erasure in erasures
            ]

    def mark_erasures_sent(self, household_ids: Sequence[str]) -> None:
        now = self.clock()
        with self.store.transaction() as session:
            for household_id in household_ids:
                erasure = session.get(HouseholdErasure, household_id)
                if erasure is not None:
                    erasure.sent_at = now

    def collect_consent(self) -> list[tuple[int, list[ConsentChange]]]:
        """Consent withdrawn or given again, not yet told to the worker: each event's meters' messages."""
        with self.store.transaction() as session:
            events = list(
                session.scalars(
                    select(ConsentEvent).where(ConsentEvent.sent_at.is_(None)).order_by(ConsentEvent.id).limit(BATCH)
                )
            )
            return [
                (
                    event.id,
                    [
                        ConsentChange(meter_id=meter_id, withdrawn=event.action == "withdrawn", at=event.at)
                        for meter_id in session.scalars(
                            select(Meter.meter_id).where(Meter.household_id == event.household_id)
                        )
                    ],
                )
                for event in events
            ]

    def collect(self) -> tuple[list[tuple[str, OutcomeFeedback | None]], list[tuple[str, MeterHints]]]:
        with self.store.transaction() as session:
            alerts = list(
                session.scalars(
                    select(Alert)
                    .where(
                        Alert.kind == "no_usage",
                        Alert.status == AlertStatus.RESOLVED,
                        Alert.outcome.in_([outcome.value for outcome in FEEDBACK_OUTCOMES]),
                        Alert.feedback_sent_at.is_(None),
                        Alert.resolved_by != "detector",
                    )
                    .limit(BATCH)
                )
            )
            feedback = pending_feedback(alerts)
            rows = session.execute(
                select(Meter.meter_id, Household.routine_hints)
                .join(Household, Meter.household_id == Household.id)
                .where(Meter.hints_sent_at.is_(None), Household.routine_hints.is_not(None))
                .limit(BATCH)
            ).all()
            hints = []
            for meter_id, raw in rows:
                try:
                    hints.append((meter_id, MeterHints(meter_id=meter_id, hints=RoutineHints.model_validate(raw))))
                except ValueError:
                    log.warning("meter %s: stored routine hints are not valid; not sent", meter_id)
        return feedback, hints

    def mark_sent(self, alert_ids: list[str], meter_ids: list[str], consent_ids: Sequence[int] = ()) -> None:
        now = self.clock()
        with self.store.transaction() as session:
            for consent_id in consent_ids:
                event = session.get(ConsentEvent, consent_id)
                if event is not None:
                    event.sent_at = now
            for alert_id in alert_ids:
                alert = session.get(Alert, alert_id)
                if alert is not None:
                    alert.feedback_sent_at = now
            for meter_id in meter_ids:
                meter = session.get(Meter, meter_id)
                if meter is not None:
                    meter.hints_sent_at = now

    async def publish_once(self, producer: AIOKafkaProducer) -> int:
        # Erasures first, then consent: either must reach the worker before anything else about its meters.
        erasures = await asyncio.to_thread(self.collect_erasures)
        for _household_id, erased in erasures:
            for erase in erased:
                await producer.send_and_wait(self.topic, key=erase.meter_id.encode(), value=encode(erase))
        if erasures:
            await asyncio.to_thread(self.mark_erasures_sent, [household_id for household_id, _ in erasures])
        changes = await asyncio.to_thread(self.collect_consent)
        for _event_id, messages in changes:
            for change in messages:
                await producer.send_and_wait(self.topic, key=change.meter_id.encode(), value=encode(change))
        if changes:
            await asyncio.to_thread(self.mark_sent, [], [], [event_id for event_id, _ in changes])
        feedback, hints = await asyncio.to_thread(self.collect)
        for _alert_id, message in feedback:
            if message is None:
                continue
            await producer.send_and_wait(self.topic, key=message.meter_id.encode(), value=encode(message))
        for meter_id, hint in hints:
            await producer.send_and_wait(self.topic, key=meter_id.encode(), value=encode(hint))
        if feedback or hints:
            await asyncio.to_thread(self.mark_sent, [a for a, _ in feedback], [m for m, _ in hints])
        told = sum(len(messages) for _, messages in changes) + sum(len(erased) for _, erased in erasures)
        return len(feedback) + len(hints) + told

    async def run(self, stop: asyncio.Event, *, tick_s: float = 1.0) -> None:
        producer = durable_producer(self.bootstrap_servers, client_id="shouwang-feedback")
        await producer.start()
        try:
            while not stop.is_set():
                try:
                    await self.publish_once(producer)
                except Exception:  # Kafka or the database away for a moment: the outbox keeps it
                    log.exception("feedback for the detectors not sent; will retry")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=max(tick_s, 1.0))
        finally:
            await producer.stop()
