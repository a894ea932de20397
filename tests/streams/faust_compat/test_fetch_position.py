"""``fetch_loop._fetch_position`` on the real broker: the fetch position the loop compares with the end of
the batch it left records of, read from the Kafka client's own state (aiokafka's, as Faust's consumer thread
holds it), without waiting."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as KafkaTP
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from shouwang.settings import Settings
from streams.faust_compat.fetch_loop import _fetch_position


def test_fetch_position_follows_seeks_and_fetches_and_is_none_for_a_partition_not_assigned(
    kafka_settings: Settings,
) -> None:
    topic = f"{kafka_settings.topic_prefix}positions"
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    try:
        admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers, acks="all")
    for offset in range(10):
        producer.send(topic, value=b"%d" % offset, partition=0)
    producer.flush()
    producer.close()
    assert AIOKafkaConsumerThread._consumer is None  # where Faust's consumer thread keeps its client

    async def read() -> list[int | None]:
        client = AIOKafkaConsumer(bootstrap_servers=kafka_settings.bootstrap_servers, enable_auto_commit=False)
        faust_consumer = cast(Any, SimpleNamespace(_thread=SimpleNamespace(_consumer=client)))
        await client.start()
        try:
            seen = [_fetch_position(faust_consumer, TP(topic, 0))]  # nothing assigned yet
            client.assign([KafkaTP(topic, 0)])
            client.seek(KafkaTP(topic, 0), 3)
            seen.append(_fetch_position(faust_consumer, TP(topic, 0)))  # Faust's TP finds aiokafka's state
            fetched: list[int] = []
            while len(fetched) < 7:
                batch = await client.getmany(timeout_ms=5_000)
                fetched += [record.offset for records in batch.values() for record in records]
            assert fetched == list(range(3, 10))
            seen.append(_fetch_position(faust_consumer, TP(topic, 0)))  # just past the batch
            seen.append(_fetch_position(faust_consumer, TP(topic, 1)))  # not assigned
            return seen
        finally:
            await client.stop()

    assert asyncio.run(read()) == [None, 3, 10, None]


def test_fetch_position_is_none_before_the_consumer_thread_has_a_client() -> None:
    assert _fetch_position(cast(Any, SimpleNamespace(_thread=SimpleNamespace(_consumer=None))), TP("t", 0)) is None
