"""A household's erasure reaches the worker on the real broker: the router's publisher sends ``erase`` for its
meter, the worker replaces the meter's learned state in its table's changelog with the marker, and a later
reading of the meter is a dead letter with the reason and without the reading; another meter keeps its state."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from alerts import admin
from alerts.db import Store
from alerts.erasure import erase_household
from alerts.feedback import FeedbackPublisher
from alerts.models import utcnow
from shouwang.deadletter import REASON, VALUE_DROPPED, read_headers
from shouwang.settings import Settings
from shouwang.topics import Topics
from streams.processing import ERASED
from streams.topic_provisioning import provision_topics
from tests.conftest import settings_env
from tests.kafka_helpers import (
    consume,
    hourly_reading,
    produce,
    read_all,
    readings_processed,
    start_shouwang,
    stop,
    until,
    wait_http,
)

pytestmark = pytest.mark.kafka
ERASED_METER, KEPT_METER = "ER-0001", "KEEP-0001"


def _latest_states(settings: Settings) -> dict[bytes, bytes | None]:
    """Each meter's newest value in the meter-state table's changelog (what compaction keeps)."""
    changelog = f"{settings.worker_id}-meter-state-changelog"
    return {record.key: record.value for record in read_all(settings.bootstrap_servers, changelog, timeout=20)}


def _publish(publisher: FeedbackPublisher, bootstrap: str) -> int:
    async def once() -> int:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            return await publisher.publish_once(producer)
        finally:
            await producer.stop()

    return asyncio.run(once())


def test_an_erased_households_meter_is_forgotten_and_its_readings_refused(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    provision_topics(kafka_settings)
    topics = Topics.from_settings(kafka_settings)
    bootstrap = kafka_settings.bootstrap_servers
    metrics = f"http://127.0.0.1:{kafka_settings.worker_web_port}/metrics"
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    with store.transaction() as session:
        home = admin.create_household(
            session,
            name="王阿姨",
            timezone="Asia/Shanghai",
            grid_cell="FT-12-3",
            consent_given_by="王阿姨本人",
            consent_given_at=utcnow() - timedelta(days=30),
            consent_scope="用水异常提醒家属和网格员",
        )
        admin.add_meter(session, home, meter_id=ERASED_METER)
        home_id = home.id
    log = tmp_path / "worker.log"
    worker = start_shouwang(["worker"], settings_env(kafka_settings), log)
    try:
        wait_http(metrics, process=worker, log=log)
        readings = [
            (m.encode(), hourly_reading(m, h, 100.0 + 5 * h)) for h in range(3) for m in (ERASED_METER, KEPT_METER)
        ]
        produce(bootstrap, topics.readings, readings)
        until(lambda: readings_processed(metrics) >= len(readings), what="readings processed")
        both = {ERASED_METER.encode(), KEPT_METER.encode()}
        until(lambda: both <= _latest_states(kafka_settings).keys(), what="both meters' states in the changelog")

        with store.transaction() as session:
            household = session.get(type(home), home_id)
            assert household is not None
            erase_household(session, household, by="operator:key_op", now=utcnow())
        publisher = FeedbackPublisher(store, topics.feedback, bootstrap)
        assert _publish(publisher, bootstrap) == 1  # one erase message, for its one meter
        assert _publish(publisher, bootstrap) == 0  # and only once
        until(lambda: _latest_states(kafka_settings).get(ERASED_METER.encode()) == ERASED, what="state replaced")

        produce(bootstrap, topics.readings, [(ERASED_METER.encode(), hourly_reading(ERASED_METER, 3, 120.0))])
        letters = consume(bootstrap, topics.deadletter, until=lambda found: bool(found), timeout=60)
        assert worker.poll() is None
    finally:
        stop(worker)
        store.close()
    (letter,) = letters
    headers = read_headers(letter.headers)
    assert letter.key == ERASED_METER.encode() and letter.value is None  # the water use is not kept
    assert "erased" in headers[REASON] and ERASED_METER in headers[REASON] and VALUE_DROPPED in headers
    kept = _latest_states(kafka_settings)[KEPT_METER.encode()]
    assert kept is not None and kept not in (ERASED, b"")  # the other meter's learned state is untouched
