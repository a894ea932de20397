"""A meter's new state never reaches the changelog before the alerts it raised reach the alerts
topic: otherwise a worker killed between the two comes back with a state that has already seen the
reading, ignores it when it is processed again, and the alert is lost for good.

The window is a few milliseconds in a real crash (found once by the SIGKILL test in CI). Here it is
held open: the first worker runs with its alerts never delivered (``stalled_alerts.py``; the
broker's ``min.insync.replicas`` cannot do it, as Kafka caps it at the replication factor), and is
killed once it has processed a reading that raises an alert. A normal worker must then raise it."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from shouwang.settings import Settings
from shouwang.topics import Topics
from streams.offline import partition_of
from streams.topic_provisioning import changelog, provision_topics
from tests.conftest import settings_env
from tests.kafka_helpers import (
    consume,
    hourly_reading,
    produce,
    read_all,
    readings_processed,
    start_python,
    start_shouwang,
    stop,
    until,
    wait_http,
)

pytestmark = pytest.mark.kafka
METER = "held-1"


def _committed(settings: Settings, topic: str, partition: int) -> int:
    """The worker group's committed offset of one partition (0 if none); reading it joins nothing."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=settings.worker_id, enable_auto_commit=False
    )
    try:
        return int(consumer.committed(TopicPartition(topic, partition)) or 0)
    finally:
        consumer.close()


def _reading(hour: int, register: float) -> tuple[bytes, bytes]:
    return METER.encode(), hourly_reading(METER, hour, register)


@pytest.mark.parametrize("committed", [True, False], ids=["first-readings-committed", "nothing-committed"])
@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])  # RocksDB keeps its local store across the crash
def test_an_alert_never_delivered_before_sigkill_is_raised_after_it(
    kafka_settings: Settings, tmp_path: Path, store: str, committed: bool
) -> None:
    """With the first readings' offsets committed, the restarted worker starts at the alerting record;
    with all four produced together, the commit waits for the held state and nothing is committed: it
    starts from the partition's first record, and must find every record there after its recovery."""
    # The timer would add `meter_offline` for these 2026-03 readings by the wall clock: not this test's subject.
    kafka_settings = kafka_settings.model_copy(update={"offline_check_s": 3600.0, "worker_store": store})
    provision_topics(kafka_settings)
    topics = Topics.from_settings(kafka_settings)
    env = settings_env(kafka_settings)
    metrics = f"http://127.0.0.1:{kafka_settings.worker_web_port}/metrics"
    state_changelog = changelog(kafka_settings, "meter-state")
    partition = partition_of(METER, kafka_settings.readings_partitions)
    stalled = [str(Path(__file__).with_name("stalled_alerts.py")), topics.alerts, "worker"]
    worker = start_python(stalled, env, tmp_path / "worker-1.log")
    try:
        wait_http(metrics)
        first = [_reading(h, 1000.0 + 10 * h) for h in range(3)]
        alerting = _reading(3, 1020.0 - 900)  # the register goes back
        if committed:
            produce(kafka_settings.bootstrap_servers, topics.readings, first)
            until(
                lambda: _committed(kafka_settings, topics.readings, partition) == 3, what="the first readings committed"
            )
            produce(kafka_settings.bootstrap_servers, topics.readings, [alerting])
        else:
            produce(kafka_settings.bootstrap_servers, topics.readings, [*first, alerting])
        until(lambda: readings_processed(metrics) >= 4, what="the alerting reading processed")
        time.sleep(4)  # several commit intervals: whatever the worker would write by now is written
        written = len(read_all(kafka_settings.bootstrap_servers, state_changelog))
    finally:
        stop(worker, signal.SIGKILL)
    assert written == 3, f"the state after the undelivered alert reached the changelog ({written} states)"
    # The meter's four records are offsets 0-3 of its partition: none past the alerting one may be committed.
    # Produced together, the four are processed before the next commit, which then waits for the held state
    # (a commit between two of them, unlikely, only moves the restart point within 0-3).
    assert _committed(kafka_settings, topics.readings, partition) <= 3, "an offset was committed past the alert"

    worker = start_shouwang(["worker"], env, tmp_path / "worker-2.log")
    try:
        wait_http(metrics)
        alerts = consume(
            kafka_settings.bootstrap_servers,
            topics.alerts,
            until=lambda found: any(b"data_quality" in r.value for r in found),
            timeout=90,
        )
        assert worker.poll() is None
        processed_again = readings_processed(metrics)
        states = len(read_all(kafka_settings.bootstrap_servers, state_changelog))
    finally:
        code = stop(worker)
    assert code == 0, (tmp_path / "worker-2.log").read_text()[-3000:]
    raised = [json.loads(r.value) for r in alerts]
    assert [(a["meter_id"], a["kind"], a["event"]) for a in raised] == [(METER, "data_quality", "raised")], (
        f"alerts {raised}; the second worker processed {processed_again:.0f} readings; {states} changelog states"
    )
