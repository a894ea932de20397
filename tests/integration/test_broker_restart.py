"""The broker stopped for 30 s and started again: the worker reconnects by itself and no reading or
alert is lost — on a real broker of this test's own (the session's broker is never stopped).

30 meters send three readings each; once the worker has processed them, the broker is stopped (SIGTERM)
and kept down for 30 s while the worker keeps running, then started again on the same ports and data
directory. As soon as the broker answers, while the worker is still finding its group coordinator
again, every meter sends a reading whose register went backwards; then one reading per meter every
1.5 s for 15 s (the window in which a worker whose session the broker dropped would rejoin its group
and recover its table); then, once the worker's consumer group is stable, one more. Every reading
carries the meter's own leak flag, so each one that is processed raises a ``continuous_flow`` alert of
its own: a lost reading is a missing alert. This proves that:

- the worker process never exits and needs no restart;
- every reading is processed (``shouwang_worker_readings_processed_total``, at least once each) and
  every one of them raises its alert;
- every meter raises ``data_quality`` "register went backwards" after the restart, so each meter's
  state (its last register, in the table) survived the outage;
- every alert is on the alerts topic under its stable id; a re-emitted one (processing is at least
  once, docs/SCALING.md) is the same event under the same id, and nothing unexpected appears.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from cli.broker import LocalBroker, free_port, port_answers, resolve_jars
from shouwang.events import AlertKind, alert_id_for
from shouwang.settings import Settings
from shouwang.topics import Topics
from streams.topic_provisioning import provision_topics
from tests.conftest import LIB_DIR, settings_env
from tests.kafka_helpers import (
    T0,
    consume,
    produce,
    read_all,
    readings_processed,
    start_shouwang,
    stop,
    until,
    wait_http,
)

pytestmark = pytest.mark.kafka
METERS = [f"b-{i:02d}" for i in range(30)]
DOWN_S = 30.0
BEFORE = range(3)  # hours sent before the outage: registers 1000, 1010, 1020
RIGHT_AFTER = 3  # sent as soon as the broker answers again: register 120, backwards
DURING = range(4, 14)  # one hour every WAVE_S while the worker reconnects (and rejoins its group)
WAVE_S = 1.5
FINAL = 14  # sent once the worker's consumer group is stable again
HOURS = [*BEFORE, RIGHT_AFTER, *DURING, FINAL]


def _register(hour: int) -> float:
    return 1000.0 + 10 * hour if hour in BEFORE else 120.0 + 10 * (hour - RIGHT_AFTER)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of this test's own, to stop and start (built like the session's in conftest)."""
    resolve_jars(LIB_DIR)
    broker = LocalBroker(
        home=tmp_path / "kafka", lib_dir=LIB_DIR, port=free_port(), controller_port=free_port(), heap="512m"
    )
    broker.start()
    yield broker
    broker.stop()


def _reading(meter: str, hour: int) -> tuple[bytes, bytes]:
    return meter.encode(), json.dumps(
        {"meter_id": meter, "ts": T0 + 3600 * hour, "register_l": _register(hour), "flags": ["leak"]}
    ).encode()


def _expected() -> dict[tuple[str, str], tuple[str, AlertKind, int]]:
    """(alert id, event) → (meter, kind, since) of every alert the readings must raise."""
    wanted = [(meter, AlertKind.CONTINUOUS_FLOW, T0 + 3600 * hour) for meter in METERS for hour in HOURS]
    wanted += [(meter, AlertKind.DATA_QUALITY, T0 + 3600 * RIGHT_AFTER) for meter in METERS]
    return {
        (alert_id_for(meter, kind, datetime.fromtimestamp(since, UTC)), "raised"): (meter, kind, since)
        for meter, kind, since in wanted
    }


def _group_stable(bootstrap: str, group: str) -> bool:
    """The consumer group has one member and is not rebalancing."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    except (KafkaError, OSError):
        return False
    try:
        described = admin.describe_groups([group])[group]
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()
    return described.get("group_state") == "Stable" and len(described.get("members") or []) == 1


def _alert_keys(records: list[ConsumerRecord]) -> set[tuple[str, str]]:
    return {(alert["alert_id"], alert["event"]) for alert in (json.loads(r.value) for r in records)}


@pytest.mark.timeout(420)
def test_worker_reconnects_after_the_broker_was_down_30_s_and_loses_nothing(
    own_broker: LocalBroker, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    # The readings are of March 2026: the `meter_offline` sweep (wall clock) would find every meter
    # overdue if it ran during the test; it is not what is tested here.
    settings = Settings(
        kafka_bootstrap=own_broker.bootstrap,
        topic_prefix=f"r{suffix}.",
        worker_id=f"worker-{suffix}",
        var_dir=tmp_path / "var",
        worker_web_port=free_port(),
        readings_partitions=4,
        alerts_partitions=2,
        offline_check_s=3600.0,
    )
    provision_topics(settings)
    topics = Topics.from_settings(settings)
    bootstrap = settings.bootstrap_servers
    url = f"http://127.0.0.1:{settings.worker_web_port}/metrics"
    expected = _expected()
    log = tmp_path / "worker.log"
    worker = start_shouwang(["worker"], settings_env(settings), log)

    def alive() -> None:
        assert worker.poll() is None, "the worker exited:\n" + log.read_text(errors="replace")[-4000:]

    def processed_at_least(count: int) -> bool:
        alive()
        return readings_processed(url) >= count

    try:
        wait_http(url, process=worker, log=log)
        until(lambda: "Worker ready" in log.read_text(errors="replace"), timeout=90, what="worker ready")
        produce(bootstrap, topics.readings, [_reading(m, h) for h in BEFORE for m in METERS])
        until(lambda: processed_at_least(len(BEFORE) * len(METERS)), timeout=90, what="first readings processed")
        first_alerts = len(BEFORE) * len(METERS)
        consume(bootstrap, topics.alerts, until=lambda found: len(found) >= first_alerts, timeout=60)

        own_broker.stop()
        assert not own_broker.is_running() and not port_answers(own_broker.host, own_broker.port)
        down_at = time.monotonic()
        while time.monotonic() - down_at < DOWN_S:
            alive()
            time.sleep(0.5)
        restart_s = own_broker.start()
        alive()

        # While the worker is still finding its way back to the broker, and (had the broker dropped
        # its session meanwhile) rejoining its group and recovering its table.
        produce(bootstrap, topics.readings, [_reading(m, RIGHT_AFTER) for m in METERS])
        back_at = time.monotonic()
        for hour in DURING:
            time.sleep(WAVE_S)
            alive()
            produce(bootstrap, topics.readings, [_reading(m, hour) for m in METERS])
        until(lambda: _group_stable(bootstrap, settings.worker_id), timeout=120, what="the worker's group stable")
        stable_s = time.monotonic() - back_at
        produce(bootstrap, topics.readings, [_reading(m, FINAL) for m in METERS])
        total = len(HOURS) * len(METERS)
        with contextlib.suppress(TimeoutError):  # what is missing is reported below
            until(
                lambda: (
                    processed_at_least(total)
                    and _alert_keys(
                        consume(bootstrap, topics.alerts, until=lambda found: len(found) >= len(expected), timeout=5)
                    )
                    >= set(expected)
                ),
                timeout=150,
                what="every reading processed and every alert out",
            )
        time.sleep(2)  # a re-emitted alert would be out by now
        records = read_all(bootstrap, topics.alerts)
        processed = readings_processed(url)
        alive()
    finally:
        code = stop(worker)
    text = log.read_text(errors="replace")
    assignments = text.count("Executing _on_partitions_assigned")
    print(
        f"\nbroker back in {restart_s:.1f} s; group stable {stable_s:.1f} s later; {assignments} assignments; "
        f"{processed:.0f} readings processed for {total} sent; {len(records)} alert records"
    )
    assert code == 0, text[-3000:]

    alerts = [json.loads(r.value) for r in records]
    found = Counter((a["alert_id"], a["event"]) for a in alerts)
    missing = sorted(
        (meter, kind.value, (since - T0) // 3600)
        for meter, kind, since in (expected[key] for key in set(expected) - set(found))
    )
    assert not missing, f"{len(missing)} alerts lost (meter, kind, hour): {missing[:20]}"
    unexpected = [a for a in alerts if (a["alert_id"], a["event"]) not in expected]
    assert not unexpected, f"alerts nobody expected: {unexpected[:3]}"
    for alert in alerts:
        meter, kind, since = expected[alert["alert_id"], alert["event"]]
        assert (alert["meter_id"], alert["kind"]) == (meter, kind.value)
        assert int(datetime.fromisoformat(alert["since"]).timestamp()) == since
    # At least once: a reading processed again re-emits its alert under the same id, unchanged.
    by_key: dict[tuple[str, str], set[str]] = {}
    for record in records:
        alert = json.loads(record.value)
        by_key.setdefault((alert["alert_id"], alert["event"]), set()).add(record.value.decode())
    changed = {key: variants for key, variants in by_key.items() if len(variants) > 1}
    assert not changed, f"one alert id, different events: {changed}"
    duplicates = sum(count - 1 for count in found.values())
    print(f"{len(found)} distinct alerts, {duplicates} re-emitted")

    quality = [a for a in alerts if a["kind"] == "data_quality"]
    assert {a["meter_id"] for a in quality} == set(METERS), "every meter's state survived the outage"
    assert all("register went backwards" in a["explanation"]["en"] for a in quality)
    assert processed >= total, f"{processed} readings processed, {total} sent"
