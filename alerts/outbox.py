"""The outbox dispatcher: sends recorded deliveries, retries with backoff, dead-letters.

A delivery is leased (``claimed_until``) before it is sent, with a conditional UPDATE that
works the same on SQLite and PostgreSQL, so several routers never send one row at once. If a
router dies mid-send the lease lapses and the row is sent again — with the same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from alerts import metrics
from alerts.action_links import LinkMaker
from alerts.channel_batches import Batch, claim_batches, digest_payload, record_message, release
from alerts.channels.base import Channel, Notification
from alerts.channels.types import ChannelType
from alerts.consent import WITHDRAWN_ERROR, consent_withdrawn
from alerts.db import Store, rows_changed
from alerts.models import Delivery, DeliveryAttempt, Endpoint, Recipient, utcnow
from alerts.payloads import NO_ALERT_EVENTS
from alerts.policy import RESIDENT
from alerts.secret_box import SecretBox
from alerts.statuses import AttemptOutcome, DeliveryStatus, EndpointStatus
from alerts.webhook_secrets import open_webhook_secrets
from alerts.webhooks import AttemptResult, EndpointLimiter, next_delay, send_once

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    """A leased delivery with what is needed to send it (read in one transaction)."""

    id: str
    endpoint_id: str
    url: str
    secret: str  # unused: a webhook's secret stays sealed in ``sealed_config`` until it signs
    payload: bytes
    attempts: int
    created_at: datetime
    endpoint_type: str = "webhook"
    sealed_config: str | None = None
    recipient_id: str = ""
    recipient_role: str = ""


# Builds the channel of an endpoint that is not a Standard Webhook from its type and sealed configuration
# (alerts/channels/registry.py); ValueError when it cannot (a key that opens nothing, a bad configuration).
ChannelFactory = Callable[[str, str | None], Channel]


@dataclass
class OutboxConfig:
    schedule: Sequence[float]
    lease: timedelta
    timeout_s: float
    batch_size: int = 50


class OutboxDispatcher:
    def __init__(
        self,
        store: Store,
        config: OutboxConfig,
        *,
        client: httpx.AsyncClient,
        limiter: EndpointLimiter,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        channels: ChannelFactory | None = None,
        links: LinkMaker | None = None,
        box: SecretBox | None = None,
    ) -> None:
        self.store, self.config, self.client, self.limiter = store, config, client, limiter
        self.channels, self.links = channels, links
        self.box = box  # opens webhook secrets; without it nothing can be signed
        self.clock = clock
        self.rng = rng or random.Random()

    def claim_due(self) -> list[Claimed]:
        now = self.clock()
        lease_until = now + self.config.lease
        claimed: list[Claimed] = []
        with self.store.transaction() as session:
            candidates = (
                session.execute(
                    select(Delivery.id)
                    .join(Endpoint, Delivery.endpoint_id == Endpoint.id)
                    .where(
                        Endpoint.type == ChannelType.WEBHOOK,  # the other channels go in batches
                        Delivery.status == DeliveryStatus.PENDING,
                        Delivery.next_attempt_at <= now,
                        or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now),
                    )
                    .order_by(Delivery.next_attempt_at)
                    .limit(self.config.batch_size)
                )
                .scalars()
                .all()
            )
        for delivery_id in candidates:
            with self.store.transaction() as session:
                taken = rows_changed(
                    session,
                    update(Delivery)
                    .where(
                        Delivery.id == delivery_id,
                        Delivery.status == DeliveryStatus.PENDING,
                        or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now),
                    )
                    .values(claimed_until=lease_until),
                )
                if taken != 1:
                    continue  # another dispatcher got it first
                row = session.execute(
                    select(Delivery, Endpoint, Recipient.role)
                    .join(Endpoint, Delivery.endpoint_id == Endpoint.id)
                    .join(Recipient, Delivery.recipient_id == Recipient.id)
                    .where(Delivery.id == delivery_id)
                ).one()
                delivery, endpoint, role = row
                if consent_withdrawn(session, delivery):  # withdrawn since it was recorded: never sent
                    delivery.status, delivery.last_error = DeliveryStatus.DEAD, WITHDRAWN_ERROR
                    delivery.claimed_until = None
                    metrics.DELIVERIES_DEAD.labels("consent").inc()
                    continue
                claimed.append(
                    Claimed(
                        delivery.id,
                        endpoint.id,
                        endpoint.url,
                        "",
                        delivery.payload.encode(),
                        delivery.attempts,
                        delivery.created_at,
                        endpoint.type,
                        endpoint.sealed_config,
                        delivery.recipient_id,
                        role,
                    )
                )
        return claimed

    async def run_once(self) -> int:
        """Claim what is due and send it all; return how many were attempted."""
        claimed = await asyncio.to_thread(self.claim_due)
        batches = await asyncio.to_thread(
            claim_batches, self.store, now=self.clock(), lease=self.config.lease, limit=self.config.batch_size
        )
        if claimed or batches:
            await asyncio.gather(*(self._deliver(item) for item in claimed), *(self._send_batch(b) for b in batches))
        return len(claimed) + sum(len(batch.items) for batch in batches)

    async def run(self, stop: asyncio.Event, wake: asyncio.Event, *, poll_s: float = 1.0) -> None:
        while not stop.is_set():
            try:
                sent = await self.run_once()
            except Exception:  # the database may be briefly unavailable: try again shortly
                log.exception("dispatcher pass failed")
                sent = 0
            if sent:
                continue
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(stop, wake), timeout=poll_s)

    async def _deliver(self, item: Claimed) -> None:
        async with self.limiter.slot(item.endpoint_id):
            try:
                now = self.clock()
                # Opened only now, to sign; a database without its key signs nothing (WebhookSecretError).
                secret, *previous = open_webhook_secrets(self.box, item.sealed_config).signing(now)
                # The client checks the URL against the SSRF guard and connects to the addresses it checked.
                result = await send_once(
                    self.client,
                    url=item.url,
                    secret=secret,
                    message_id=item.id,
                    body=self._with_answers(item),
                    now=now,
                    timeout_s=self.config.timeout_s,
                    also_signed_by=previous,
                )
            except ValueError as exc:  # our own stored data is unusable: retrying cannot help
                result = AttemptResult(
                    outcome=AttemptOutcome.REJECT, status_code=None, error=str(exc)[:300], duration_s=0.0
                )
        await asyncio.to_thread(self.record, item, result)

    def _with_answers(self, item: Claimed) -> bytes:
        """A resident's webhook (a smart speaker, a voice-call service) gets the check-in's answers as signed
        links in ``data.answers``: the same links on every attempt, so a resend stays byte-identical."""
        if item.recipient_role != RESIDENT or self.links is None:
            return item.payload
        links = self.links(delivery_id=item.id, role=item.recipient_role)
        if not links:
            return item.payload
        body = json.loads(item.payload)
        body["data"]["answers"] = [
            {"action": link.action, "url": link.url, "label_zh": link.label_zh, "label_en": link.label_en}
            for link in links
        ]
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    async def _send_batch(self, batch: Batch) -> None:
        """A batch of one endpoint of a rate-limited channel: each notification alone, or all as one digest."""
        try:
            channel: Channel | str = self._channel(batch)
            claimed = [
                Claimed(item.id, batch.endpoint_id, "", "", item.payload, item.attempts, item.created_at,
                        batch.endpoint_type, None, batch.recipient_id, batch.recipient_role)
                for item in batch.items
            ]  # fmt: skip
            if batch.digest:
                now = self.clock()
                digest = Notification(
                    f"dig_{batch.items[0].id}", digest_payload(batch.items, now=now), batch.recipient_role
                )
                result = await self._send_notification(channel, digest)
                await asyncio.to_thread(
                    record_message, self.store, batch, notifications=len(claimed), digest=True, now=now
                )
                for item in claimed:
                    await asyncio.to_thread(self.record, item, result)
                return
            for item in claimed:
                payload = json.loads(item.payload)
                about_an_alert = payload.get("type") not in NO_ALERT_EVENTS
                links = (
                    self.links(delivery_id=item.id, role=item.recipient_role) if self.links and about_an_alert else ()
                )
                notification = Notification(item.id, payload, item.recipient_role, actions=links)
                now = self.clock()
                result = await self._send_notification(channel, notification)
                await asyncio.to_thread(record_message, self.store, batch, notifications=1, digest=False, now=now)
                await asyncio.to_thread(self.record, item, result)
        finally:
            await asyncio.to_thread(release, self.store, batch)

    def _channel(self, batch: Batch) -> Channel | str:
        """The endpoint's channel, or why there is none (our own stored data is unusable)."""
        if self.channels is None:
            return f"this router cannot send on {batch.endpoint_type} channels"
        try:
            return self.channels(batch.endpoint_type, batch.sealed_config)
        except ValueError as exc:
            return str(exc)[:300]

    async def _send_notification(self, channel: Channel | str, notification: Notification) -> AttemptResult:
        if isinstance(channel, str):  # no retry can help: the configuration must be fixed and the channel pinged
            return AttemptResult(AttemptOutcome.REJECT, None, channel, 0.0, None)
        try:
            return await channel.send(self.client, notification, now=self.clock(), timeout_s=self.config.timeout_s)
        except Exception as exc:
            log.exception("%s channel failed to send %s", channel.type, notification.message_id)
            error = channel.redact(f"{type(exc).__name__}: {exc}")[:300]
            return AttemptResult(AttemptOutcome.RETRY, None, error, 0.0, None)

    def record(self, item: Claimed, result: AttemptResult) -> None:
        now = self.clock()
        metrics.DELIVERIES.labels(result.outcome).inc()
        with self.store.transaction() as session:
            delivery = session.get(Delivery, item.id)
            if delivery is None or delivery.status != DeliveryStatus.PENDING:
                return
            delivery.attempts += 1
            delivery.claimed_until = None
            delivery.last_status_code, delivery.last_error = result.status_code, result.error
            session.add(
                DeliveryAttempt(
                    delivery_id=delivery.id,
                    at=now,
                    outcome=result.outcome,
                    status_code=result.status_code,
                    error=result.error,
                    duration_ms=round(result.duration_s * 1000),
                )
            )
            if item.endpoint_type != "webhook":
                note_endpoint_health(session, item.endpoint_id, result, now)
            if result.outcome == AttemptOutcome.DELIVERED:
                delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, now
                metrics.DELIVERY_LATENCY.observe(max(0.0, (now - item.created_at).total_seconds()))
            elif result.outcome == AttemptOutcome.RETRY:
                delay = next_delay(delivery.attempts, self.config.schedule, rng=self.rng)
                if delay is None:
                    delivery.status = DeliveryStatus.DEAD
                    metrics.DELIVERIES_DEAD.labels("retries_exhausted").inc()
                    log.warning(
                        "delivery %s dead after %d attempts: %s",
                        delivery.id,
                        delivery.attempts,
                        result.error or result.status_code,
                    )
                else:
                    delay = max(delay, result.retry_after_s or 0.0)
                    delivery.next_attempt_at = now + timedelta(seconds=delay)
                    metrics.DELIVERY_RETRIES.inc()
            elif result.outcome == AttemptOutcome.DISABLE:
                self._disable_endpoint(session, item.endpoint_id, now)
            else:
                delivery.status = DeliveryStatus.DEAD
                metrics.DELIVERIES_DEAD.labels("rejected").inc()
                log.warning("delivery %s rejected: %s", delivery.id, result.error or result.status_code)

    @staticmethod
    def _disable_endpoint(session: Session, endpoint_id: str, now: datetime) -> None:
        endpoint = session.get(Endpoint, endpoint_id)
        if endpoint is not None:
            endpoint.status = EndpointStatus.DISABLED
            when = now.isoformat(timespec="seconds")
            endpoint.disabled_reason = f"the receiver answered 410 Gone at {when}"
        gone = rows_changed(
            session,
            update(Delivery)
            .where(Delivery.endpoint_id == endpoint_id, Delivery.status == DeliveryStatus.PENDING)
            .values(
                status=DeliveryStatus.DEAD,
                last_error="endpoint disabled: the receiver answered 410 Gone",
                claimed_until=None,
            ),
        )
        metrics.DELIVERIES_DEAD.labels("endpoint_gone").inc(gone)
        log.warning("endpoint %s disabled after 410 Gone; %d pending deliveries dead-lettered", endpoint_id, gone)


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def note_endpoint_health(session: Session, endpoint_id: str, result: AttemptResult, now: datetime) -> None:
    """A vendor's permanent refusal (a wrong secret, an unknown key) marks the channel failing, so operators
    hear of it (shouwang_router_endpoints_failing); the next success clears it."""
    endpoint = session.get(Endpoint, endpoint_id)
    if endpoint is None:
        return
    if result.outcome == AttemptOutcome.DELIVERED:
        endpoint.failing_since, endpoint.last_error = None, None
    elif result.outcome == AttemptOutcome.REJECT:
        if endpoint.failing_since is None:
            endpoint.failing_since = now
            log.warning("%s endpoint %s is failing: %s", endpoint.type, endpoint_id, result.error)
        endpoint.last_error = result.error
