"""Webhook signing secrets sealed at rest (alerts/webhook_secrets.py), on SQLite and PostgreSQL: no secret
is in the database in plain text and deliveries still verify with the receiver's secret; a database without
its key signs nothing (the delivery is rejected with the reason, nothing is sent); after a rotation both the
old and the new secret sign until the overlap ends, then only the new one."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, text
from standardwebhooks import WebhookVerificationError

from alerts.db import Store
from alerts.models import Delivery, Endpoint, utcnow
from alerts.outbox import OutboxConfig, OutboxDispatcher
from alerts.pipeline import RouterConfig
from alerts.secret_box import SecretBox, new_key
from alerts.webhook_secrets import open_webhook_secrets, rotated
from alerts.webhooks import EndpointLimiter, make_client
from tests.alerts.conftest import BOX, LOOPBACK, T0, World, build_world
from tests.alerts.test_pipeline import event, route
from tests.alerts.webhooks.receiver import Receiver


def dispatch(store: Store, box: SecretBox | None, clock: Callable[[], datetime] = utcnow) -> None:
    async def run() -> None:
        client = make_client(allow=LOOPBACK, timeout_s=2.0)
        dispatcher = OutboxDispatcher(
            store,
            OutboxConfig(schedule=(60.0,), lease=timedelta(seconds=30), timeout_s=2.0),
            client=client,
            limiter=EndpointLimiter(2),
            rng=random.Random(7),
            clock=clock,
            box=box,
        )
        try:
            await dispatcher.run_once()
        finally:
            await client.aclose()

    asyncio.run(run())


def raise_one(store: Store, config: RouterConfig, url: str) -> World:
    world = build_world(store, receiver_url=url)
    route(store, config, event("MA"), T0)  # family A and the grid worker: two deliveries
    return world


def test_no_secret_is_stored_in_plain_text_and_deliveries_verify(store: Store, config: RouterConfig) -> None:
    with Receiver() as receiver:
        world = raise_one(store, config, receiver.url)
        with store.engine.connect() as connection:
            dumped = str(connection.execute(text("SELECT * FROM webhook_endpoints")).all())
        for secret in world.secrets.values():
            assert secret not in dumped and secret.removeprefix("whsec_") not in dumped
        dispatch(store, BOX)
        requests = receiver.wait_for(2)
    with store.transaction() as session:
        sent = {d.id: d for d in session.scalars(select(Delivery))}
    assert {d.status for d in sent.values()} == {"delivered"}
    for request in requests:
        receiver.verify_with(world.secrets[sent[request.headers["webhook-id"]].recipient_id], request)


@pytest.mark.parametrize("box", [None, SecretBox([new_key()])], ids=["no-key", "another-key"])
def test_a_database_without_its_key_signs_nothing(store: Store, config: RouterConfig, box: SecretBox | None) -> None:
    with Receiver() as receiver:
        raise_one(store, config, receiver.url)
        dispatch(store, box)
        assert receiver.requests == []
    with store.transaction() as session:
        outcomes = {(d.status, d.last_error) for d in session.scalars(select(Delivery))}
    ((status, error),) = outcomes
    assert status == "dead" and error is not None and error.startswith("cannot sign:"), outcomes
    assert "SHOUWANG_SECRET_KEYS" in error


@pytest.mark.parametrize("rotated_ago", [timedelta(hours=1), timedelta(hours=25)], ids=["in-overlap", "after"])
def test_after_a_rotation_old_and_new_secret_both_verify_until_the_overlap_ends(
    store: Store, config: RouterConfig, rotated_ago: timedelta
) -> None:
    with Receiver() as receiver:
        world = raise_one(store, config, receiver.url)
        family = world.family_a.id
        old = world.secrets[family]
        with store.transaction() as session:
            endpoint = session.scalars(select(Endpoint).where(Endpoint.recipient_id == family)).one()
            new, endpoint.sealed_config = rotated(
                BOX, endpoint.sealed_config, now=utcnow() - rotated_ago, overlap=timedelta(hours=24)
            )
            sealed = endpoint.sealed_config
        assert new != old and old not in sealed and new not in sealed
        kept = open_webhook_secrets(BOX, sealed)
        assert kept.previous == old and kept.previous_until is not None
        dispatch(store, BOX)
        requests = receiver.wait_for(2)
    with store.transaction() as session:
        to_family = {d.id for d in session.scalars(select(Delivery).where(Delivery.recipient_id == family))}
    (request,) = [r for r in requests if r.headers["webhook-id"] in to_family]
    assert receiver.verify_with(new, request)["type"] == "alert.raised"
    if rotated_ago < timedelta(hours=24):
        assert len(request.headers["webhook-signature"].split()) == 2
        assert receiver.verify_with(old, request)["type"] == "alert.raised"
    else:
        assert len(request.headers["webhook-signature"].split()) == 1
        with pytest.raises(WebhookVerificationError):
            receiver.verify_with(old, request)
