"""On a three-node cluster: provisioning gives every topic three replicas and min.insync.replicas 2, and
the product's producer (acks=all, idempotent) loses nothing and writes nothing twice while the leader
of its partition is killed (SIGKILL); `shouwang broker status` then names the node that is down,
`shouwang broker start --nodes 3` starts it again, and it is back in sync.

Records are sent one after another without waiting for each (as the API and the worker send), through
the kill and the failover after it; every one must be acknowledged, and a consumer reading the
partition throughout must see each exactly once, in the order sent. Kafka's own checks decide the
rest: a leader only acknowledges with two copies in sync, so the new leader has every acknowledged
record, and the broker drops a retried batch it already has.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

from cli.broker import LocalBroker
from cli.cluster import LocalCluster
from shouwang.durability import durable_producer
from shouwang.settings import Settings
from shouwang.topics import Topics
from streams.topic_provisioning import TopicProvisioningError, provision_topics, topic_specs
from tests.conftest import LIB_DIR

pytestmark = pytest.mark.kafka

BEFORE, AFTER = 200, 400  # records sent before the kill, and from the kill on (about 4 s of them)


def _replication(bootstrap: str, names: list[str]) -> dict[str, tuple[set[int], str]]:
    """Each topic's replica counts (one per partition) and its min.insync.replicas."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-cluster")
    try:
        counts = {t["name"]: {len(p["replica_nodes"]) for p in t["partitions"]} for t in admin.describe_topics(names)}
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n, configs={"min.insync.replicas": None}) for n in names]
        )
        isr = {name: str(c["min.insync.replicas"]["value"]) for name, c in described["topic"].items()}
    finally:
        admin.close()
    return {name: (counts[name], isr[name]) for name in names}


def shouwang_broker(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    """`shouwang broker …` as a user runs it, with SHOUWANG_VAR_DIR holding the session's cluster."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOUWANG_")}
    env.update(SHOUWANG_VAR_DIR=str(cluster.home.parent), SHOUWANG_BROKER_LIB_DIR=str(LIB_DIR))
    return subprocess.run(
        [sys.executable, "-m", "cli", "broker", *args], env=env, capture_output=True, text=True, timeout=150
    )


def _wait_for(check: str, condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout:.0f} s: {check}")


async def _produce_through_a_kill(cluster: LocalCluster, topic: str, leader: int) -> tuple[list[bytes], list[bytes]]:
    """Send BEFORE records, kill ``leader``, send AFTER more; return what was sent and what was read."""
    partition = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=cluster.bootstrap, enable_auto_commit=False, client_id="test-read")
    consumer.assign([partition])
    producer = durable_producer(cluster.bootstrap, client_id="test-cluster", linger_ms=5)
    await consumer.start()
    await producer.start()
    await consumer.seek_to_beginning(partition)
    sent: list[bytes] = []
    read: list[bytes] = []
    stop_reading = asyncio.Event()

    async def keep_reading() -> None:
        while not stop_reading.is_set() or len(read) < len(sent):
            for records in (await consumer.getmany(partition, timeout_ms=200)).values():
                read.extend(record.value for record in records if record.value is not None)

    reading = asyncio.create_task(keep_reading())
    try:
        deliveries = []
        for i in range(BEFORE + AFTER):
            if i == BEFORE:
                await asyncio.to_thread(cluster.kill, leader)
            value = f"{i:05d}".encode()
            deliveries.append(await producer.send(topic, value, key=b"meter", partition=0))
            sent.append(value)
            await asyncio.sleep(0.01)
        # Every send acknowledged by the cluster (a failed one raises here), failover included.
        await asyncio.wait_for(asyncio.gather(*deliveries), timeout=60)
        stop_reading.set()
        await asyncio.wait_for(reading, timeout=30)
    finally:
        reading.cancel()
        await producer.stop()
        await consumer.stop()
    return sent, read


def _settings(bootstrap: str, var_dir: Path) -> Settings:
    suffix = uuid.uuid4().hex[:8]
    return Settings(
        kafka_bootstrap=bootstrap,
        topic_prefix=f"c{suffix}.",
        worker_id=f"worker-{suffix}",
        var_dir=var_dir,
        readings_partitions=2,
        alerts_partitions=1,
        incidents_partitions=1,
    )


def test_one_broker_gives_one_copy_and_refuses_a_larger_setting(kafka_broker: LocalBroker, tmp_path: Path) -> None:
    settings = _settings(kafka_broker.bootstrap, tmp_path)
    assert provision_topics(settings).replication == 1
    names = [spec.name for spec in topic_specs(settings)]
    assert _replication(kafka_broker.bootstrap, names) == {name: ({1}, "1") for name in names}
    three = _settings(kafka_broker.bootstrap, tmp_path).model_copy(update={"replication_factor": 3})
    with pytest.raises(TopicProvisioningError, match=r"3 replicas .* the cluster has 1 live broker"):
        provision_topics(three)


def test_an_older_topic_with_one_copy_is_named_and_not_asked_for_two(
    kafka_cluster: LocalCluster, tmp_path: Path
) -> None:
    settings = _settings(kafka_cluster.bootstrap, tmp_path)
    readings = Topics.from_settings(settings).readings
    admin = KafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap, client_id="test-cluster")
    try:
        admin.create_topics([NewTopic(readings, settings.readings_partitions, 1)])
    finally:
        admin.close()
    report = provision_topics(settings)
    # Kafka adds replicas only by a reassignment: named; and min.insync.replicas 2 would refuse every write.
    assert report.under_replicated == [readings] and readings not in report.created
    assert _replication(kafka_cluster.bootstrap, [readings]) == {readings: ({1}, "1")}


def test_replicated_topics_lose_nothing_when_the_leader_dies(kafka_cluster: LocalCluster, tmp_path: Path) -> None:
    settings = _settings(kafka_cluster.bootstrap, tmp_path / "var")
    report = provision_topics(settings)
    names = [spec.name for spec in topic_specs(settings)]  # the dead letters and the tables' changelogs too
    assert report.replication == 3 and sorted(report.created) == sorted(names)
    assert _replication(kafka_cluster.bootstrap, names) == {name: ({3}, "2") for name in names}

    topic = Topics.from_settings(settings).readings
    leader = kafka_cluster.partition_leader(topic, 0)
    try:
        sent, read = asyncio.run(_produce_through_a_kill(kafka_cluster, topic, leader))
        assert len(sent) == BEFORE + AFTER
        assert read == sent  # nothing lost, nothing twice, in order
        # The controller fenced the dead node: a new leader, and two replicas in sync (as every broker says
        # once the change has reached it).
        _wait_for(
            f"{topic} led by another node with two in sync",
            lambda: (
                (moved := kafka_cluster.describe_partition(topic, 0)).leader not in (leader, -1)
                and sorted(moved.isr) == sorted(n for n in kafka_cluster.node_ids if n != leader)
            ),
            timeout=15,
        )
        status = shouwang_broker(kafka_cluster, "status")
        assert status.returncode == 1 and f"down: node {leader}" in status.stderr, status.stderr
        started = shouwang_broker(kafka_cluster, "start", "--nodes", "3")
        assert started.returncode == 0 and "cluster of 3 nodes answering" in started.stdout, started.stderr
    finally:
        kafka_cluster.start()  # whatever failed above, the session's cluster is whole again
    # Back in sync: the restarted node has fetched what it missed and is in every replica set's ISR again.
    _wait_for(
        f"node {leader} back in the ISR of {topic}",
        lambda: len(kafka_cluster.describe_partition(topic, 0).isr) == 3,
        timeout=30,
    )
    assert kafka_cluster.is_running() and kafka_cluster.quorum_leader() is not None
