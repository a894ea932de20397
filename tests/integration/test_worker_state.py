"""The worker's per-meter state survives a SIGKILL (recovered from the table's changelog), and a
record keyed by something else than its meter is re-keyed, not lost — on the real broker."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from shouwang.settings import Settings
from shouwang.topics import Topics
from streams.offline import partition_of
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


def _persisted_offsets(var_dir: Path) -> set[int]:
    """The partitions whose RocksDB store of the meter-state table holds a changelog offset."""
    from rocksdict import AccessType, Options, Rdict

    found = set()
    for path in var_dir.glob("worker/**/*meter-state-*.db"):
        db = Rdict(str(path), options=Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            if db.get(b"__faust\0offset__") is not None:
                found.add(int(path.name.removesuffix(".db").rpartition("-")[2]))
        finally:
            db.close()
    return found


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_state_survives_sigkill_and_mis_keyed_records_are_rekeyed(
    kafka_settings: Settings, tmp_path: Path, store: str
) -> None:
    # memory:// rebuilds the table from the changelog; rocksdb:// reopens its files on disk and
    # reads only the changelog past them.
    kafka_settings = kafka_settings.model_copy(update={"worker_store": store})
    provision_topics(kafka_settings)
    topics = Topics.from_settings(kafka_settings)
    env = settings_env(kafka_settings)
    metrics = f"http://127.0.0.1:{kafka_settings.worker_web_port}/metrics"
    meters = [f"k-{i}" for i in range(20)]
    worker = start_shouwang(["worker"], env, tmp_path / "worker-1.log")
    try:
        wait_http(metrics)
        # Three hours of readings per meter; the ones of k-0 come keyed by a wrong key.
        records = [
            (b"wrong-key" if m == "k-0" else m.encode(), hourly_reading(m, h, 1000.0 + 10 * h))
            for h in range(3)
            for m in meters
        ]
        produce(kafka_settings.bootstrap_servers, topics.readings, records)
        until(lambda: readings_processed(metrics) >= len(records))
        time.sleep(3)  # past the commit interval: offsets and changelog writes are out
    finally:
        stop(worker, signal.SIGKILL)
    if store == "rocksdb://":
        # Beside the states, each partition's store keeps the changelog offset it holds up to, so
        # a restarted worker replays only the changelog past it.
        partitions = kafka_settings.readings_partitions
        assert _persisted_offsets(kafka_settings.var_dir) == {partition_of(m, partitions) for m in meters}
    worker = start_shouwang(["worker"], env, tmp_path / "worker-2.log")
    try:
        wait_http(metrics)
        # This test is about the state a restarted worker recovers, so it sends its readings once the
        # worker is ready; readings sent during recovery are tests/streams/faust_compat/test_fetch_loop.py's.
        log = tmp_path / "worker-2.log"
        until(lambda: "Worker ready" in log.read_text(errors="replace"))
        # The register of every meter goes back by 900 L. Only a worker that remembers each meter's
        # last register (recovered from the changelog, not from memory) can tell.
        produce(
            kafka_settings.bootstrap_servers,
            topics.readings,
            [(m.encode(), hourly_reading(m, 3, 1120.0 - 900)) for m in meters],
        )
        alerts = values(
            consume(
                kafka_settings.bootstrap_servers,
                topics.alerts,
                until=lambda found: (
                    len({json.loads(r.value)["meter_id"] for r in found if b"data_quality" in r.value}) >= len(meters)
                ),
                timeout=90,
            )
        )
        assert worker.poll() is None
    finally:
        code = stop(worker)
    log = (tmp_path / "worker-2.log").read_text()
    assert code == 0, log[-3000:]
    quality = sorted(a["meter_id"] for a in alerts if a["kind"] == "data_quality" and a["event"] == "raised")
    assert quality == sorted(meters), "every meter's state must come back after SIGKILL"
    assert all("register went backwards" in a["explanation"]["en"] for a in alerts if a["kind"] == "data_quality")
