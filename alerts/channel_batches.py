"""Claiming the deliveries of rate-limited channels (every type but webhook) as batches: per endpoint,
one router at a time (a lease on the endpoint), with ``alerts/digests.py`` deciding what goes alone,
what goes together as a digest and what waits. The outbox dispatcher sends the batches."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from alerts.channels.types import ChannelType
from alerts.consent import WITHDRAWN_ERROR, consent_withdrawn
from alerts.db import Store, rows_changed
from alerts.digests import POLICIES, WINDOW, RatePolicy, plan
from alerts.models import Delivery, Endpoint, EndpointMessage, Recipient
from alerts.statuses import DeliveryStatus

DIGEST_EVENT = "alert.digest"


@dataclass(frozen=True)
class Item:
    """One claimed delivery of a batch."""

    id: str
    payload: bytes
    attempts: int
    created_at: datetime
    lease: str = ""  # the claim's token (Delivery.lease_owner)


@dataclass(frozen=True)
class Batch:
    endpoint_id: str
    endpoint_type: str
    sealed_config: str | None
    recipient_id: str
    recipient_role: str
    items: tuple[Item, ...]
    digest: bool  # the items go together, as one message; otherwise one message each


def claim_batches(
    store: Store, *, now: datetime, lease: timedelta, limit: int, policies: Callable[[str], RatePolicy] | None = None
) -> list[Batch]:
    """The batches this router sends now, each under a lease on its endpoint and on its deliveries."""
    policy_of = policies or (lambda kind: POLICIES[kind])
    lease_until = now + lease
    with store.transaction() as session:
        endpoints = (
            session.execute(
                select(Delivery.endpoint_id)
                .join(Endpoint, Delivery.endpoint_id == Endpoint.id)
                .where(
                    Endpoint.type != ChannelType.WEBHOOK,
                    Delivery.status == DeliveryStatus.PENDING,
                    Delivery.next_attempt_at <= now,
                    or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now),
                    or_(Endpoint.send_lease_until.is_(None), Endpoint.send_lease_until < now),
                )
                .group_by(Delivery.endpoint_id)
                .order_by(func.min(Delivery.next_attempt_at))
                .limit(limit)
            )
            .scalars()
            .all()
        )
    batches = []
    for endpoint_id in endpoints:
        with store.transaction() as session:
            batch = _claim_endpoint(session, endpoint_id, now=now, lease_until=lease_until, policy_of=policy_of)
        if batch is not None:
            batches.append(batch)
    return batches


def _claim_endpoint(
    session: Session, endpoint_id: str, *, now: datetime, lease_until: datetime, policy_of: Callable[[str], RatePolicy]
) -> Batch | None:
    taken = rows_changed(
        session,
        update(Endpoint)
        .where(Endpoint.id == endpoint_id, or_(Endpoint.send_lease_until.is_(None), Endpoint.send_lease_until < now))
        .values(send_lease_until=lease_until),
    )
    if taken != 1:
        return None  # another router sends to it now
    endpoint = session.get(Endpoint, endpoint_id)
    recipient = session.get(Recipient, endpoint.recipient_id) if endpoint else None
    if endpoint is None or recipient is None:
        return None
    rows = (
        session.execute(
            select(Delivery)
            .where(
                Delivery.endpoint_id == endpoint_id,
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.next_attempt_at <= now,
                or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now),
            )
            .order_by(Delivery.created_at, Delivery.id)
        )
        .scalars()
        .all()
    )
    withdrawn = [delivery for delivery in rows if consent_withdrawn(session, delivery)]
    for delivery in withdrawn:  # consent withdrawn since it was recorded: never sent
        delivery.status, delivery.last_error, delivery.claimed_until = DeliveryStatus.DEAD, WITHDRAWN_ERROR, None
    rows = [delivery for delivery in rows if delivery not in withdrawn]
    sent = session.execute(
        select(EndpointMessage.sent_at, EndpointMessage.digest).where(
            EndpointMessage.endpoint_id == endpoint_id, EndpointMessage.sent_at > now - WINDOW
        )
    ).all()
    last_digest = session.scalar(
        select(func.max(EndpointMessage.sent_at)).where(
            EndpointMessage.endpoint_id == endpoint_id, EndpointMessage.digest.is_(True)
        )
    )
    decided = plan(
        [row.id for row in rows],
        [at for at, _ in sent],
        policy_of(endpoint.type),
        last_digest_at=last_digest,
        now=now,
    )
    chosen = set(decided.alone or decided.digest)
    items = []
    for delivery in rows:
        if delivery.id in chosen:
            token = secrets.token_hex(12)
            # Conditional: a row whose lapsed lease its router renews at this moment stays that router's.
            taken = rows_changed(
                session,
                update(Delivery)
                .where(Delivery.id == delivery.id, or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now))
                .values(claimed_until=lease_until, lease_owner=token)
                .execution_options(synchronize_session=False),
            )
            if taken == 1:
                items.append(
                    Item(delivery.id, delivery.payload.encode(), delivery.attempts, delivery.created_at, token)
                )
        elif decided.wait_until is not None:
            delivery.next_attempt_at = decided.wait_until  # not polled again before its turn
    if not items:
        endpoint.send_lease_until = None
        return None
    return Batch(
        endpoint.id,
        endpoint.type,
        endpoint.sealed_config,
        recipient.id,
        recipient.role,
        tuple(items),
        digest=bool(decided.digest),
    )


def record_message(store: Store, batch: Batch, *, notifications: int, digest: bool, now: datetime) -> None:
    """One message went to the endpoint (whatever the vendor answered: it counts against the limit)."""
    with store.transaction() as session:
        session.add(
            EndpointMessage(endpoint_id=batch.endpoint_id, sent_at=now, notifications=notifications, digest=digest)
        )


def release(store: Store, batch: Batch) -> None:
    with store.transaction() as session:
        session.execute(update(Endpoint).where(Endpoint.id == batch.endpoint_id).values(send_lease_until=None))


def digest_payload(items: Sequence[Item], *, now: datetime) -> dict[str, Any]:
    """One message for many notifications: each one's data, in the order they were recorded."""
    notifications = [json.loads(item.payload) for item in items]
    return {
        "type": DIGEST_EVENT,
        "timestamp": now.isoformat(timespec="seconds"),
        "data": {
            "count": len(notifications),
            "items": [{"type": n.get("type"), **(n.get("data") or {})} for n in notifications],
        },
    }
