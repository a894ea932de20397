"""The worker benchmark's later phases: state size, recovery after a restart, produce-to-alert latency.

Used by ``bench/throughput.py`` (run that); nothing here is a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shouwang.settings import Settings


def worker_env(settings: Settings, log_level: str = "WARNING") -> dict[str, str]:
    return settings.model_copy(update={"log_level": log_level}).subprocess_env()


def start_worker(
    settings: Settings, log: Path, log_level: str = "WARNING", code: Path | None = None
) -> subprocess.Popen[bytes]:
    """``shouwang worker`` in a child process; ``code``: run another checkout's code instead (an
    earlier commit, say, for a comparison in the same run), with this environment's packages."""
    env = worker_env(settings, log_level)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "worker"], env=env, cwd=code, stdout=out, stderr=subprocess.STDOUT
        )


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


PROCESSED = "shouwang_worker_readings_processed_total"


def metric(url: str, name: str) -> float:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


async def state_bytes(bootstrap: str, changelog: str, partition_count: int) -> tuple[int, float]:
    """Meters in the state changelog and the median size of each meter's latest state."""
    # earliest: a reset to the default latest still in flight can override seek_to_beginning (aiokafka)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    latest: dict[bytes, int] = {}
    try:
        partitions = [TopicPartition(changelog, p) for p in range(partition_count)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=1000, max_records=20_000)).values():
                for record in batch:
                    if record.key is not None and record.value is not None:
                        latest[record.key] = len(record.value)
    finally:
        await consumer.stop()
    return len(latest), statistics.median(latest.values()) if latest else 0.0


def probe(meter: str) -> bytes:
    """A reading flagged by the meter as a burst: its `spike` alert is raised by this very reading."""
    return json.dumps({"meter_id": meter, "ts": int(time.time()), "register_l": 1.0, "flags": ["burst"]}).encode()


@dataclass
class Probes:
    """Probe readings sent (meter → send time) and their alerts received (meter → receive time)."""

    sent: dict[str, float] = field(default_factory=dict)
    received: dict[str, float] = field(default_factory=dict)

    def latencies_ms(self) -> list[float]:
        return sorted((self.received[m] - t) * 1000 for m, t in self.sent.items() if m in self.received)


async def _collect_alerts(
    bootstrap: str, topic: str, probes: Probes, stop: asyncio.Event, ready: asyncio.Event
) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-alerts-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="latest",
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    try:
        while not consumer.assignment():
            await asyncio.sleep(0.05)
        for tp in consumer.assignment():  # "latest" is resolved lazily: pin it before any probe goes out
            await consumer.position(tp)
        ready.set()
        while not stop.is_set():
            for batch in (await consumer.getmany(timeout_ms=50)).values():
                now = time.perf_counter()
                for record in batch:
                    meter = record.key.decode() if record.key else ""
                    if meter in probes.sent and meter not in probes.received:
                        probes.received[meter] = now
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def probing(
    bootstrap: str, readings_topic: str, alerts_topic: str
) -> AsyncIterator[tuple[Probes, Callable[[str], Awaitable[None]]]]:
    """Collect the alerts topic from now on and give a ``send(prefix)`` that sends one probe reading."""
    probes, stop, ready = Probes(), asyncio.Event(), asyncio.Event()
    collector = asyncio.create_task(_collect_alerts(bootstrap, alerts_topic, probes, stop, ready))
    await asyncio.wait_for(ready.wait(), 60)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1)
    await producer.start()

    async def send(prefix: str) -> None:
        meter = f"{prefix}-{uuid.uuid4().hex[:12]}"
        probes.sent[meter] = time.perf_counter()
        await producer.send_and_wait(readings_topic, key=meter.encode(), value=probe(meter))

    try:
        yield probes, send
    finally:
        await producer.stop()
        stop.set()
        await collector


async def _until_answered(probes: Probes, settle_s: float) -> None:
    deadline = time.perf_counter() + settle_s
    while len(probes.received) < len(probes.sent) and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)


async def steady_load(
    bootstrap: str,
    readings_topic: str,
    alerts_topic: str,
    load: Iterator[tuple[bytes, bytes]],
    *,
    readings_per_record: int,
    rate: float,
    seconds: float,
    probes_per_s: float = 20,
    settle_s: float = 30.0,
) -> Probes:
    """Offer ``rate`` readings/s for ``seconds`` (records from ``load``, plus probe readings that
    count towards the rate) and time each probe from its send to its alert on the alerts topic.
    Probes get ``settle_s`` after the load to come back: a late probe is slow, not lost."""
    async with probing(bootstrap, readings_topic, alerts_topic) as (probes, send_probe):
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1)
        await producer.start()
        try:
            began, offered = time.perf_counter(), 0
            while (elapsed := time.perf_counter() - began) < seconds:
                if len(probes.sent) < elapsed * probes_per_s:
                    await send_probe("P")
                    offered += 1
                elif offered < elapsed * rate:
                    key, value = next(load)
                    await producer.send(readings_topic, key=key, value=value)
                    offered += readings_per_record
                else:
                    await asyncio.sleep(0.002)
            await producer.flush()
        finally:
            await producer.stop()
        await _until_answered(probes, settle_s)
    return probes


@dataclass
class Recovery:
    seconds_to_first_alert: float
    probes_sent: int
    probes_lost: int
    peak_rss_mb: float


async def _probe_until_alert(
    bootstrap: str,
    readings_topic: str,
    alerts_topic: str,
    started: float,
    worker: subprocess.Popen[bytes],
    timeout: float,
) -> tuple[float, Probes]:
    """Send a probe every 0.5 s from the worker's start until one's alert comes back."""
    async with probing(bootstrap, readings_topic, alerts_topic) as (probes, send_probe):
        while not probes.received and time.perf_counter() - started < timeout and worker.poll() is None:
            await send_probe("R")
            await asyncio.sleep(0.5)
        if not probes.received:
            raise TimeoutError("the restarted worker answered no probe")
        first = min(probes.received.values()) - started
        await _until_answered(probes, 30)  # probes sent while it recovered must all come back, late but not lost
    return first, probes


def recovery(
    settings: Settings, log: Path, readings_topic: str, alerts_topic: str
) -> tuple[Recovery, subprocess.Popen[bytes]]:
    """Start a worker whose table must be rebuilt from the changelog; time until it answers a probe.
    Returns the running worker (caught up) for the next phase."""
    started = time.perf_counter()
    worker = start_worker(settings, log, log_level="INFO")
    first, probes = asyncio.run(
        _probe_until_alert(settings.bootstrap_servers, readings_topic, alerts_topic, started, worker, timeout=600)
    )
    lost = len(probes.sent) - len(probes.received)
    return Recovery(first, len(probes.sent), lost, peak_rss_mb(worker.pid)), worker


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")
