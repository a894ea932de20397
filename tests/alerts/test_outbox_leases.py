"""Exactly one send per lease, across routers: a router claims only what it can send now, renews its lease
before sending, records a result only while the row is still its own, and the per-endpoint limit holds over
every router. Real store (SQLite and PostgreSQL), real receiver on loopback."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select

from alerts import admin
from alerts.db import Store
from alerts.models import Delivery, DeliveryAttempt, utcnow
from alerts.notifications import outbox_rows
from alerts.outbox import OutboxConfig, OutboxDispatcher
from alerts.payloads import ping_payload
from alerts.statuses import AttemptOutcome, DeliveryStatus
from alerts.webhooks import AttemptResult, EndpointLimiter, make_client
from tests.alerts.conftest import BOX, LOOPBACK, T0
from tests.alerts.webhooks.receiver import Receiver

LIMIT = 2  # SHOUWANG_WEBHOOK_ENDPOINT_CONCURRENCY


def one_endpoint_with(store: Store, url: str, count: int, *, now: datetime = T0) -> list[str]:
    """A grid worker's webhook with ``count`` pending deliveries, all due at ``now``."""
    with store.transaction() as session:
        recipient, _ = admin.create_recipient(
            session, name="网格员", role="grid_worker", webhook_url=url, allow=LOOPBACK, box=BOX
        )
        rows = []
        for _ in range(count):
            rows += outbox_rows(
                session,
                recipient_id=recipient.id,
                alert_id=None,
                event_type="endpoint.ping",
                tier=0,
                payload=ping_payload(endpoint_id="ep", now=now),
                now=now,
            )
        return [row.id for row in rows]


def router(
    store: Store, *, lease_s: float = 30.0, clock: Callable[[], datetime] = utcnow, timeout_s: float = 5.0
) -> OutboxDispatcher:
    return OutboxDispatcher(
        store,
        OutboxConfig(schedule=(60.0,), lease=timedelta(seconds=lease_s), timeout_s=timeout_s),
        client=make_client(allow=LOOPBACK, timeout_s=timeout_s),
        limiter=EndpointLimiter(LIMIT),
        rng=random.Random(5),
        box=BOX,
        clock=clock,
    )


DELIVERED = AttemptResult(AttemptOutcome.DELIVERED, 200, None, 0.1)


def test_two_routers_a_short_lease_and_a_slow_receiver_send_each_delivery_once(store: Store) -> None:
    """The reported case: 8 deliveries, two routers, a lease shorter than the queue takes to drain at two at a
    time. Before, one router leased all 8, the later ones' leases lapsed while they waited for a slot, the other
    router sent them too (12 POSTs), and the endpoint saw up to 4 requests at once."""
    with Receiver(delay_s=0.5) as receiver:
        ids = one_endpoint_with(store, receiver.url, 8, now=utcnow())
        second = Store(store.url)  # the other router's own connections to the same database
        routers = [router(store, lease_s=1.2, timeout_s=2.0), router(second, lease_s=1.2, timeout_s=2.0)]

        async def run() -> None:
            stop, wake = asyncio.Event(), asyncio.Event()

            async def until_all_delivered() -> None:
                for _ in range(400):
                    with store.transaction() as session:
                        done = session.scalar(select(func.count()).where(Delivery.status == DeliveryStatus.DELIVERED))
                    if done == len(ids):
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.6)  # a duplicate would be on its way by now
                stop.set()

            try:
                await asyncio.gather(*(r.run(stop, wake, poll_s=0.05) for r in routers), until_all_delivered())
            finally:
                for r in routers:
                    await r.client.aclose()

        try:
            asyncio.run(run())
        finally:
            second.close()
    webhook_ids = [request.headers["webhook-id"] for request in receiver.requests]
    assert len(receiver.requests) == len(ids), f"{len(receiver.requests)} POSTs for {len(ids)} deliveries"
    assert sorted(webhook_ids) == sorted(ids), "each delivery once, no duplicate webhook-id"
    assert receiver.max_in_flight <= LIMIT, f"{receiver.max_in_flight} requests at once at one endpoint"
    with store.transaction() as session:
        assert {(d.status, d.attempts) for d in session.scalars(select(Delivery))} == {("delivered", 1)}
        assert session.scalar(select(func.count()).select_from(DeliveryAttempt)) == len(ids)


def test_a_router_claims_no_more_than_the_endpoints_free_slots_across_routers(store: Store) -> None:
    one_endpoint_with(store, "http://127.0.0.1:9/hook", 5)
    clock = lambda: T0  # noqa: E731
    first, second = router(store, clock=clock), router(store, clock=clock)
    taken = first.claim_due()
    assert len(taken) == LIMIT
    assert second.claim_due() == [], "the other router's leases fill the endpoint's slots"
    first.record(taken[0], DELIVERED)  # one slot free again
    assert len(second.claim_due()) == 1
    assert first.claim_due() == []


def test_a_lost_lease_is_neither_sent_nor_recorded(store: Store) -> None:
    with Receiver() as receiver:
        [delivery_id] = one_endpoint_with(store, receiver.url, 1)
        now = [T0]
        slow, other = router(store, clock=lambda: now[0]), router(store, clock=lambda: now[0])
        [held] = slow.claim_due()
        now[0] = T0 + timedelta(seconds=31)  # its lease lapsed (the router stalled) and another router took it
        [taken] = other.claim_due()
        assert held.lease != taken.lease
        assert slow.renew(held) is False, "no longer this router's: it must not send it"
        asyncio.run(slow._deliver(held))
        assert receiver.requests == []
        slow.record(held, DELIVERED)  # a result from before the row was taken is not written
        with store.transaction() as session:
            row = session.get(Delivery, delivery_id)
            assert row is not None and (row.status, row.attempts, row.lease_owner) == ("pending", 0, taken.lease)
        asyncio.run(other._deliver(taken))
        assert [request.headers["webhook-id"] for request in receiver.requests] == [delivery_id]
    with store.transaction() as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None and (row.status, row.attempts, row.lease_owner) == ("delivered", 1, None)


def test_a_lapsed_lease_nobody_took_is_still_the_routers_own(store: Store) -> None:
    """A lease lapses so that a dead router's rows are sent again; as long as no other router took the row,
    nobody else sent it, so the result of the router that did is recorded (else it would be sent twice)."""
    [delivery_id] = one_endpoint_with(store, "http://127.0.0.1:9/hook", 1)
    now = [T0]
    dispatcher = router(store, clock=lambda: now[0])
    [held] = dispatcher.claim_due()
    now[0] = T0 + timedelta(seconds=31)
    dispatcher.record(held, DELIVERED)
    with store.transaction() as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None and row.status == "delivered"


def test_an_attempt_ends_within_the_lease() -> None:
    store_less = OutboxDispatcher(
        None,  # type: ignore[arg-type]
        OutboxConfig(schedule=(1.0,), lease=timedelta(seconds=5), timeout_s=10.0),
        client=None,  # type: ignore[arg-type]
        limiter=EndpointLimiter(1),
    )
    assert store_less.attempt_timeout_s == 4.0
