"""Two workers share the readings: partitions are split between them, each meter's state follows
its partition (recovered from the changelog by the worker that takes it over), and no alert is
lost or duplicated across the handover — on the real broker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cli.broker import free_port
from shouwang.settings import Settings
from shouwang.topics import Topics
from streams.topic_provisioning import provision_topics
from tests.conftest import settings_env
from tests.kafka_helpers import (
    consume,
    hourly_reading,
    produce,
    readings_processed,
    start_shouwang,
    stop,
    until,
    values,
    wait_http,
)

pytestmark = pytest.mark.kafka
METERS = [f"s-{i}" for i in range(40)]


def test_two_workers_split_the_meters_and_their_state_follows(kafka_settings: Settings, tmp_path: Path) -> None:
    provision_topics(kafka_settings)
    topics = Topics.from_settings(kafka_settings)
    ports = [kafka_settings.worker_web_port, free_port()]
    urls = [f"http://127.0.0.1:{port}/metrics" for port in ports]
    envs = [{**settings_env(kafka_settings), "SHOUWANG_WORKER_WEB_PORT": str(port)} for port in ports]
    first = start_shouwang(["worker"], envs[0], tmp_path / "worker-a.log")
    second = None
    try:
        wait_http(urls[0])
        produce(
            kafka_settings.bootstrap_servers,
            topics.readings,
            [(m.encode(), hourly_reading(m, h, 500.0 + 5 * h)) for h in range(3) for m in METERS],
        )
        until(lambda: readings_processed(urls[0]) >= 3 * len(METERS), what="first worker caught up")
        time.sleep(2)  # its changelog writes and offsets are out
        second = start_shouwang(["worker"], envs[1], tmp_path / "worker-b.log")
        wait_http(urls[1])
        # The second worker joins: wait until it has taken partitions over and recovered them.
        log_b = tmp_path / "worker-b.log"

        # The memory store reads its partitions' changelog back, then Faust's recovery ends with "Worker
        # ready" (Faust's own "Done reading" appears only when it had records left to read).
        def recovered() -> bool:
            text = log_b.read_text(errors="replace")
            return text.rfind("Worker ready") > text.rfind("changelog records read back") >= 0

        until(recovered, what="second worker recovered its partitions")
        # Every meter's register goes back by 400 L: only the worker holding that meter's state
        # (whichever it is now) can tell.
        produce(
            kafka_settings.bootstrap_servers,
            topics.readings,
            [(m.encode(), hourly_reading(m, 3, 110.0)) for m in METERS],
        )
        alerts = values(
            consume(
                kafka_settings.bootstrap_servers,
                topics.alerts,
                until=lambda found: sum(b'"data_quality"' in r.value for r in found) >= len(METERS),
                timeout=90,
            )
        )
        time.sleep(2)  # a duplicate would be on the topic by now
        alerts = values(
            consume(
                kafka_settings.bootstrap_servers,
                topics.alerts,
                until=lambda found: len(found) >= len(alerts),
                timeout=30,
            )
        )
        processed = [readings_processed(url) for url in urls]
        assert first.poll() is None and second.poll() is None
    finally:
        for process in (second, first):
            if process is not None:
                stop(process)
    quality = [a for a in alerts if a["kind"] == "data_quality" and a["event"] == "raised"]
    assert sorted(a["meter_id"] for a in quality) == sorted(METERS), "each meter exactly once"
    assert len({a["alert_id"] for a in quality}) == len(METERS)
    assert processed[1] > 0, "the second worker took part of the meters"
    assert processed[0] >= 3 * len(METERS)
