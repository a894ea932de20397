"""Small real-Kafka helpers for integration tests (kafka-python, no consumer group)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

T0 = 1_772_323_200  # 2026-03-01T00:00:00Z: hour 0 of the integration tests' readings


def hourly_reading(meter: str, hour: int, register: float) -> bytes:
    """One reading of ``meter``, ``hour`` hours after ``T0``, as a Kafka record value."""
    return json.dumps({"meter_id": meter, "ts": T0 + 3600 * hour, "register_l": register}).encode()


def produce(bootstrap: str, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=30)
    producer.close()


def consume(
    bootstrap: str, topic: str, *, until: Callable[[list[ConsumerRecord]], bool], timeout: float = 60.0
) -> list[ConsumerRecord]:
    """Read a topic from the beginning until ``until(records)`` holds or time runs out."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    deadline = time.monotonic() + timeout
    partitions: list[TopicPartition] = []
    while not partitions and time.monotonic() < deadline:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        if not partitions:
            time.sleep(0.2)
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    records: list[ConsumerRecord] = []
    try:
        while time.monotonic() < deadline and not until(records):
            for batch in consumer.poll(timeout_ms=250).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records


def read_all(bootstrap: str, topic: str, timeout: float = 60.0) -> list[ConsumerRecord]:
    """Every record of ``topic`` up to its end offsets as they are now."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic} not read to its end in {timeout:.0f} s")
            for batch in consumer.poll(timeout_ms=250).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def values(records: list[ConsumerRecord]) -> list[Any]:
    return [json.loads(r.value) for r in records]


def wait_http(
    url: str, timeout: float = 60.0, *, process: subprocess.Popen[bytes] | None = None, log: Path | None = None
) -> bytes:
    """GET ``url`` until it answers. With ``process`` and ``log``, stop as soon as the process has
    exited and show the end of its log either way, so a failure says why."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bytes(response.read())
        except OSError as exc:
            last = exc
            if process is not None and process.poll() is not None:
                break
            time.sleep(0.3)
    exited = "" if process is None or process.poll() is None else f" (exited with {process.returncode})"
    tail = "" if log is None or not log.exists() else "\n" + log.read_text(errors="replace")[-6000:]
    raise TimeoutError(f"{url} did not answer: {last}{exited}{tail}")


def start_shouwang(args: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Run ``python -m cli ARGS`` in its own process group, output to ``log``."""
    return start_python(["-m", "cli", *args], env, log)


def start_python(args: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Run ``python ARGS`` in its own process group, output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    if process.poll() is None:
        os.killpg(process.pid, sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


def until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; ``TimeoutError`` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} not reached in {timeout:.0f} s")


def readings_processed(metrics_url: str) -> float:
    """The worker's ``shouwang_worker_readings_processed_total`` from its metrics page."""
    text = wait_http(metrics_url).decode()
    found = re.search(r"^shouwang_worker_readings_processed_total (\S+)$", text, re.MULTILINE)
    return float(found[1]) if found else 0.0
