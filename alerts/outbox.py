"""The outbox dispatcher: sends recorded deliveries, retries with backoff, dead-letters.

A delivery is leased before it is sent (``claimed_until``, and ``lease_owner``: the claim's token), with
conditional UPDATEs that work the same on SQLite and PostgreSQL, so several routers never send one row at
once. Exactly one send per lease:

- a router claims only what it can send now: per endpoint, no more than the free slots of
  ``SHOUWANG_WEBHOOK_ENDPOINT_CONCURRENCY``, counted over the rows every router holds (the count and the claim
  in one transaction that first writes the endpoint's row, so claims for one endpoint never interleave);
- it renews the lease just before sending (a row another router claimed meanwhile is not sent), and an
  attempt ends well within that lease, so a live router's row is never taken from it mid-send;
- it records the result only if the row is still its own; otherwise the result is dropped and the row
  stays with whoever holds it.

If a router dies mid-send the lease lapses and the row is sent again — with the same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import ColumnElement, and_, func, or_, select, update
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
# An attempt may take at most this share of the lease renewed just before it: the rest is for recording the
# result, so a router that is alive never has a row taken from it while it sends.
ATTEMPT_SHARE_OF_LEASE = 0.8


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
    lease: str = ""  # the claim's token (Delivery.lease_owner): the row is this router's while it matches


# Builds the channel of an endpoint that is not a Standard Webhook from its type and sealed configuration
# (alerts/channels/registry.py); ValueError when it cannot (a key that opens nothing, a bad configuration).
ChannelFactory = Callable[[str, str | None], Channel]


@dataclass
class OutboxConfig:
    schedule: Sequence[float]
    lease: timedelta
    timeout_s: float  # one attempt's, at most ATTEMPT_SHARE_OF_LEASE of the lease
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

    @property
    def attempt_timeout_s(self) -> float:
        return min(self.config.timeout_s, ATTEMPT_SHARE_OF_LEASE * self.config.lease.total_seconds())

    def claim_due(self) -> list[Claimed]:
        """Lease the webhook deliveries due that this router can send now: per endpoint, as many as its free
        slots across every router (``limiter.limit`` at once), at most ``batch_size`` in all."""
        now = self.clock()
        with self.store.transaction() as session:
            endpoints = (
                session.execute(
                    select(Delivery.endpoint_id)
                    .join(Endpoint, Delivery.endpoint_id == Endpoint.id)
                    .where(Endpoint.type == ChannelType.WEBHOOK, _due(now))  # the other channels go in batches
                    .group_by(Delivery.endpoint_id)
                    .order_by(func.min(Delivery.next_attempt_at))
                    .limit(self.config.batch_size)
                )
                .scalars()
                .all()
            )
        claimed: list[Claimed] = []
        for endpoint_id in endpoints:
            room = self.config.batch_size - len(claimed)
            if room <= 0:
                break
            with self.store.transaction() as session:
                claimed += self._claim_endpoint(session, endpoint_id, now=now, room=room)
        return claimed

    def _claim_endpoint(self, session: Session, endpoint_id: str, *, now: datetime, room: int) -> list[Claimed]:
        # A write on the endpoint's row first: on PostgreSQL it locks the row, on SQLite it takes the write
        # lock, so no other router counts and claims for this endpoint until this transaction commits.
        session.execute(
            update(Endpoint).where(Endpoint.id == endpoint_id).values(send_lease_until=Endpoint.send_lease_until)
        )
        in_flight = session.scalar(
            select(func.count()).where(
                Delivery.endpoint_id == endpoint_id,
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.claimed_until >= now,
            )
        )
        free = min(self.limiter.limit - (in_flight or 0), room)
        if free <= 0:
            return []  # its slots are all taken, by this router or another: the rows wait for the next pass
        candidates = session.scalars(
            select(Delivery.id)
            .where(Delivery.endpoint_id == endpoint_id, _due(now))
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(free)
        ).all()
        claimed: list[Claimed] = []
        for delivery_id in candidates:
            token = secrets.token_hex(12)
            # Conditional: a lapsed lease its router renews (or records) at this moment stays that router's.
            taken = rows_changed(
                session,
                update(Delivery)
                .where(Delivery.id == delivery_id, _due(now))
                .values(claimed_until=now + self.config.lease, lease_owner=token),
            )
            if taken != 1:
                continue
            delivery, endpoint, role = session.execute(
                select(Delivery, Endpoint, Recipient.role)
                .join(Endpoint, Delivery.endpoint_id == Endpoint.id)
                .join(Recipient, Delivery.recipient_id == Recipient.id)
                .where(Delivery.id == delivery_id)
            ).one()
            if consent_withdrawn(session, delivery):  # withdrawn since it was recorded: never sent
                delivery.status, delivery.last_error = DeliveryStatus.DEAD, WITHDRAWN_ERROR
                delivery.claimed_until = delivery.lease_owner = None
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
                    token,
                )
            )
        return claimed

    def renew(self, item: Claimed) -> bool:
        """Extend the lease for one more attempt, if the row is still this claim's (and still pending)."""
        now = self.clock()
        with self.store.transaction() as session:
            held = rows_changed(
                session,
                update(Delivery).where(_held(item)).values(claimed_until=now + self.config.lease),
            )
        if not held:
            log.warning("delivery %s not sent: another router holds it now (or it is no longer pending)", item.id)
        return held == 1

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
            if not await asyncio.to_thread(self.renew, item):
                return  # another router holds it now: that one sends it and records what happened
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
                    timeout_s=self.attempt_timeout_s,
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
                        batch.endpoint_type, None, batch.recipient_id, batch.recipient_role, item.lease)
                for item in batch.items
            ]  # fmt: skip
            if batch.digest:
                # Only what is still this router's goes in the digest (a slow vendor may have outlasted a lease).
                held = [item for item in claimed if await asyncio.to_thread(self.renew, item)]
                if not held:
                    return
                now = self.clock()
                items = [item for item in batch.items if item.id in {h.id for h in held}]
                digest = Notification(f"dig_{items[0].id}", digest_payload(items, now=now), batch.recipient_role)
                result = await self._send_notification(channel, digest)
                await asyncio.to_thread(
                    record_message, self.store, batch, notifications=len(held), digest=True, now=now
                )
                for item in held:
                    await asyncio.to_thread(self.record, item, result)
                return
            for item in claimed:
                if not await asyncio.to_thread(self.renew, item):  # sent one by one: each renewed before it goes
                    continue
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
            return await channel.send(self.client, notification, now=self.clock(), timeout_s=self.attempt_timeout_s)
        except Exception as exc:
            log.exception("%s channel failed to send %s", channel.type, notification.message_id)
            error = channel.redact(f"{type(exc).__name__}: {exc}")[:300]
            return AttemptResult(AttemptOutcome.RETRY, None, error, 0.0, None)

    def record(self, item: Claimed, result: AttemptResult) -> None:
        now = self.clock()
        metrics.DELIVERIES.labels(result.outcome).inc()
        with self.store.transaction() as session:
            # Only while the row is still this claim's; this UPDATE also locks it until the result is written.
            released = rows_changed(
                session, update(Delivery).where(_held(item)).values(claimed_until=None, lease_owner=None)
            )
            delivery = session.get(Delivery, item.id)
            if released != 1 or delivery is None:
                log.warning(
                    "delivery %s: result %s not recorded, the row is no longer this router's", item.id, result.outcome
                )
                return
            delivery.attempts += 1
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
                lease_owner=None,
            ),
        )
        metrics.DELIVERIES_DEAD.labels("endpoint_gone").inc(gone)
        log.warning("endpoint %s disabled after 410 Gone; %d pending deliveries dead-lettered", endpoint_id, gone)


def _due(now: datetime) -> ColumnElement[bool]:
    """Pending, due, and held by nobody (never claimed, released, or a lease that lapsed: its router died)."""
    return and_(
        Delivery.status == DeliveryStatus.PENDING,
        Delivery.next_attempt_at <= now,
        or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now),
    )


def _held(item: Claimed) -> ColumnElement[bool]:
    """Still pending and still this claim's. Not also "the lease has not lapsed": until another router
    claims the row nobody else sent it, so the claim that sent it may still renew it or record its result."""
    return and_(Delivery.id == item.id, Delivery.lease_owner == item.lease, Delivery.status == DeliveryStatus.PENDING)


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
