"""The outbox dispatcher against real HTTP receivers on loopback and a real store."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from sqlalchemy import select

from alerts.db import Store
from alerts.models import Delivery, DeliveryAttempt, Endpoint, utcnow
from alerts.outbox import OutboxConfig, OutboxDispatcher
from alerts.pipeline import RouterConfig
from alerts.webhooks import EndpointLimiter, make_client
from tests.alerts.conftest import BOX, LOOPBACK, T0, World, build_world
from tests.alerts.test_pipeline import event, route
from tests.alerts.webhooks.receiver import Receiver


def dispatch_until_quiet(
    store: Store, *, schedule: tuple[float, ...] = (0.05, 0.05), allow: tuple[str, ...] = LOOPBACK, rounds: int = 40
) -> None:
    async def run() -> None:
        client = make_client(allow=allow, timeout_s=2.0)
        dispatcher = OutboxDispatcher(
            store,
            OutboxConfig(schedule=schedule, lease=timedelta(seconds=30), timeout_s=2.0),
            client=client,
            limiter=EndpointLimiter(2),
            rng=random.Random(7),
            box=BOX,
        )
        try:
            for _ in range(rounds):
                if not await dispatcher.run_once():
                    with store.transaction() as session:
                        pending = session.scalar(select(Delivery.id).where(Delivery.status == "pending"))
                    if pending is None:
                        return
                    await asyncio.sleep(0.03)
        finally:
            await client.aclose()

    asyncio.run(run())


def deliveries(store: Store) -> list[Delivery]:
    with store.transaction() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.recipient_id)))


def raise_one(store: Store, config: RouterConfig, url: str) -> World:
    world = build_world(store, receiver_url=url)
    route(store, config, event("MA"), T0)  # family A and the grid worker: two deliveries
    return world


def test_delivered_signed_and_verifiable(store: Store, config: RouterConfig) -> None:
    with Receiver() as receiver:
        world = raise_one(store, config, receiver.url)
        dispatch_until_quiet(store)
        requests = receiver.wait_for(2)
    sent = {d.id: d for d in deliveries(store)}
    assert {d.status for d in sent.values()} == {"delivered"}
    for request in requests:
        delivery = sent[request.headers["webhook-id"]]
        body = receiver.verify_with(world.secrets[delivery.recipient_id], request)
        assert body["type"] == "alert.raised" and body["data"]["kind"] == "no_usage"


def test_failures_are_retried_with_the_same_webhook_id(store: Store, config: RouterConfig) -> None:
    with Receiver() as receiver:
        receiver.respond_with([503, 503])
        raise_one(store, config, receiver.url)
        dispatch_until_quiet(store, schedule=(0.05, 0.05, 0.05))
        requests = receiver.wait_for(4)
    ids = [r.headers["webhook-id"] for r in requests]
    assert len(set(ids)) == 2 and all(ids.count(i) == 2 for i in set(ids))
    assert {(d.status, d.attempts) for d in deliveries(store)} == {("delivered", 2)}
    with store.transaction() as session:
        attempts = list(session.scalars(select(DeliveryAttempt.outcome).order_by(DeliveryAttempt.id)))
    assert sorted(attempts) == ["delivered", "delivered", "retry", "retry"]


def test_schedule_exhausted_is_a_dead_letter(store: Store, config: RouterConfig) -> None:
    with Receiver(default_status=500) as receiver:
        raise_one(store, config, receiver.url)
        dispatch_until_quiet(store, schedule=(0.02, 0.02))
        assert len(receiver.requests) == 6  # first try + two retries, for each of two deliveries
    assert {(d.status, d.attempts, d.last_status_code) for d in deliveries(store)} == {("dead", 3, 500)}


def test_410_disables_the_endpoint_and_stops_its_deliveries(store: Store, config: RouterConfig) -> None:
    with Receiver(default_status=410) as receiver:
        raise_one(store, config, receiver.url)
        dispatch_until_quiet(store)
    assert {d.status for d in deliveries(store)} == {"dead"}
    with store.transaction() as session:
        statuses = {
            e.status for e in session.scalars(select(Endpoint)) if e.id in {d.endpoint_id for d in deliveries(store)}
        }
    assert statuses == {"disabled"}


def test_ssrf_guard_applies_at_delivery_time(store: Store, config: RouterConfig) -> None:
    with Receiver() as receiver:
        raise_one(store, config, receiver.url)
        dispatch_until_quiet(store, allow=())  # loopback no longer allowlisted
        assert receiver.requests == []
    assert {d.status for d in deliveries(store)} == {"dead"}
    assert all("not allowlisted" in (d.last_error or "") for d in deliveries(store))


def test_a_leased_delivery_is_not_sent_twice_until_its_lease_lapses(store: Store, config: RouterConfig) -> None:
    with Receiver() as receiver:
        raise_one(store, config, receiver.url)
        first = deliveries(store)[0]
        with store.transaction() as session:  # another router holds it (or died holding it)
            row = session.get(Delivery, first.id)
            assert row is not None
            row.claimed_until = utcnow() + timedelta(seconds=1)
        dispatch_until_quiet(store, rounds=1)
        assert first.id not in {r.headers["webhook-id"] for r in receiver.requests}
        asyncio.run(asyncio.sleep(1.1))
        dispatch_until_quiet(store)
        assert first.id in {r.headers["webhook-id"] for r in receiver.wait_for(2)}
    assert {d.status for d in deliveries(store)} == {"delivered"}
