"""A router whose consumer group rebalances while it works through a batch (another router joined, or one
died and its session ran out) must go on: the offset commit of the old generation is refused, and the records
are read again by whichever router holds the partition now, the dedup stage making a second reading harmless.

Found by the fault run (bench/chaos.py): SIGKILL of one of two routers made the other one exit with
``CommitFailedError`` as soon as the group rebalanced, and the restarted one could do the same to it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from sqlalchemy import func, select

from alerts.db import Store
from alerts.models import AlertTransition
from alerts.router import Router
from shouwang.deadletter import DeadLetter
from shouwang.events import encode
from shouwang.settings import Settings
from shouwang.topics import Topics
from streams.topic_provisioning import provision_topics
from tests.integration.test_router import alert_event
from tests.kafka_helpers import produce

pytestmark = pytest.mark.kafka
METERS = [f"M{n:02d}" for n in range(24)]


def router_of_its_own(kafka_settings: Settings, tmp_path: Path) -> Settings:
    """A router on a SQLite store of the test's own, in a consumer group of its own, the topics provisioned."""
    provision_topics(kafka_settings)
    return kafka_settings.model_copy(
        update={
            "database_url": f"sqlite:///{tmp_path / 'router.db'}",
            "router_id": f"router-{kafka_settings.worker_id}",
        }
    )


def test_a_rebalance_in_the_middle_of_a_batch_does_not_stop_the_router(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = router_of_its_own(kafka_settings, tmp_path)
    topic = Topics.from_settings(settings).alerts
    produce(
        settings.bootstrap_servers,
        topic,
        [(m.encode(), encode(alert_event(m, "spike", "high"))) for m in METERS],
    )
    assert asyncio.run(_consume_through_a_rebalance(settings, topic)) == len(METERS)


async def _consume_through_a_rebalance(settings: Settings, topic: str) -> int:
    router = Router(settings)
    handled: list[int] = []
    recorded = router.handle

    def slowly(record: ConsumerRecord) -> tuple[str, DeadLetter | None]:
        result = recorded(record)
        handled.append(record.offset)
        time.sleep(0.4)  # the batch takes a while: the group rebalances meanwhile, between commits
        return result

    router.handle = slowly  # type: ignore[method-assign]
    consuming = asyncio.create_task(router.consume())
    store = Store(str(settings.database_url))
    try:
        while not handled and not consuming.done():
            await asyncio.sleep(0.1)
        # A second member of the router's group: the coordinator starts a new generation, in which the
        # router's commit for the record it is handling is refused.
        other = AIOKafkaConsumer(  # commits nothing: what it reads stays the router's to record
            topic, bootstrap_servers=settings.bootstrap_servers, group_id=settings.router_id, enable_auto_commit=False
        )
        await other.start()
        try:
            await other.getmany(timeout_ms=6000)
            await asyncio.sleep(4.0)
        finally:
            await other.stop()  # it leaves the group: its partitions come back to the router, from the last commit
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _recorded(store) < len(METERS) and not consuming.done():
            await asyncio.sleep(0.3)
        assert not consuming.done(), f"the router stopped: {consuming.exception()!r}"
        return _recorded(store)
    finally:
        router.stop_event.set()
        await asyncio.gather(consuming, return_exceptions=True)
        store.close()


def _recorded(store: Store) -> int:
    with store.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(AlertTransition)) or 0)
