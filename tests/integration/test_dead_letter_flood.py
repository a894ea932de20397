"""A flood of malformed messages lands in the dead-letter topic while the good readings beside them
are processed — on the real broker, with the real worker.

``test_a_flood_…``: 2,000 malformed messages of eleven kinds (binary junk, invalid JSON, NaN, JSON of
the wrong shape, unknown fields, a negative register, a timestamp without UTC offset, a meter id too
long, a batch with one bad reading inside, an unknown schema version, a null value) are interleaved,
on the same partitions and partly under the same keys, with the readings and batches of 36 meters.
It proves that:

- the worker stays up through the flood, its agent never crashes, and it stops cleanly afterwards;
- every bad message is in the dead-letter topic exactly once, with its original key and bytes, the
  reason of its kind, error class ``invalid`` and the partition and offset it came from;
- every good reading is processed (``shouwang_worker_readings_processed_total``, exactly);
- every alert the good readings must raise is on the alerts topic, once, with its stable id;
- ``shouwang_worker_dead_letters_total`` counts the whole flood as ``invalid`` and none as ``internal``.

``test_oversized_…``: the same promises for messages of about a megabyte, which the broker accepts
(its limit is 1,048,588 bytes) but the schema refuses, or whose dead letter, headers included, is
larger than the worker's producer sends by default (1,000,000 bytes).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from shouwang.deadletter import ERROR_CLASS, REASON, SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC, read_headers
from shouwang.events import MAX_MESSAGE_BYTES, AlertKind, alert_id_for
from shouwang.settings import Settings
from shouwang.topics import Topics
from streams.topic_provisioning import provision_topics
from tests.conftest import settings_env
from tests.kafka_helpers import (
    T0,
    consume,
    read_all,
    readings_processed,
    start_shouwang,
    stop,
    until,
    values,
    wait_http,
)

pytestmark = pytest.mark.kafka
FLOOD = 2_000
HOURS = 6
# (meter index mod 3, hour) → the alert a meter flag at that hour must raise
FLAGGED = {(0, 2): (AlertKind.CONTINUOUS_FLOW, "leak"), (1, 4): (AlertKind.SPIKE, "burst")}


def _json(data: object) -> bytes:
    return json.dumps(data).encode()


# kind → (how to make number i of that kind for meter m, what its dead letter's reason must match)
KINDS: dict[str, tuple[Callable[[int, str], bytes | None], str]] = {
    "binary": (lambda i, m: b"\xff\xfe" + f"junk {i}".encode() + b"\x00\x9c", r"not UTF-8 \(byte 0\)"),
    "invalid_json": (
        lambda i, m: f'{{"meter_id": "{m}", "ts": {T0 + i}, "register_l": '.encode(),
        r"not JSON: Expecting value at line 1 column \d+",
    ),
    "nan": (
        lambda i, m: f'{{"meter_id": "{m}", "ts": {T0 + i}, "register_l": NaN}}'.encode(),
        r"not JSON: NaN is not a JSON number",
    ),
    "wrong_shape": (lambda i, m: _json([m, T0 + i, 5]), r"expected a JSON object, got list"),
    "unknown_field": (
        lambda i, m: _json({"meter_id": m, "ts": T0 + i, "register": 5}),
        r"register_l: Field required; register: unknown field",
    ),
    "negative_register": (
        lambda i, m: _json({"meter_id": m, "ts": T0 + i, "register_l": -1 - i}),
        r"register_l: Input should be greater than or equal to 0",
    ),
    "naive_timestamp": (
        lambda i, m: _json({"meter_id": m, "register_l": 5, "ts": f"2026-03-01T08:{i % 60:02d}:{i // 60 % 60:02d}"}),
        r"ts: timestamp '2026-03-01T08:\d\d:\d\d' has no UTC offset",
    ),
    "long_meter_id": (
        lambda i, m: _json({"meter_id": f"{m}-{i:04d}-" + "x" * 60, "ts": T0, "register_l": 5}),
        r"meter_id: must be 1–64 letters, digits or \. _ : - \(starting with a letter or digit\)",
    ),
    # A whole batch is refused for one bad reading inside it (none of its readings is processed).
    "bad_in_batch": (
        lambda i, m: _json(
            {
                "meter_id": m,
                "readings": [
                    {"ts": T0 + 3600 * 20, "register_l": 5000 + i},
                    {"ts": T0 + 3600 * 21, "register_l": -1},
                    {"ts": T0 + 3600 * 22, "register_l": 5010 + i},
                ],
            }
        ),
        r"readings\.1\.register_l: Input should be greater than or equal to 0",
    ),
    "schema_version": (
        lambda i, m: _json({"v": 2, "meter_id": m, "ts": T0 + i, "register_l": 5}),
        r"unsupported schema version v=2; this service reads v=1",
    ),
    "null_value": (lambda i, m: None, r"empty message \(null value\)"),
}
BIG: dict[str, tuple[Callable[[int, str], bytes | None], str]] = {
    # Over the schema's limit, under the broker's.
    "oversized": (
        lambda i, m: _json(
            {"meter_id": m, "ts": T0, "register_l": 5, "note": f"{i}:" + "x" * (MAX_MESSAGE_BYTES + 50)}
        ),
        rf"message is {MAX_MESSAGE_BYTES // 1000}\d{{3}} bytes; the limit is {MAX_MESSAGE_BYTES}",
    ),
    # Under the schema's limit by 50 bytes: refused for what it is, but its dead letter is bigger.
    "near_limit_junk": (
        lambda i, m: b"\xff" + f"{i}:".encode().ljust(MAX_MESSAGE_BYTES - 51, b"\x00"),
        r"not UTF-8 \(byte 0\)",
    ),
}


@dataclass(frozen=True)
class Bad:
    """One malformed message, of a kind in KINDS or BIG."""

    kind: str
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Expected:
    records: list[tuple[bytes, bytes]]  # good records, keyed by their meter, in event-time order per meter
    readings: int  # readings they hold (a batch holds several)
    alerts: set[tuple[str, AlertKind, int]]  # (meter, kind, since) they must raise


@dataclass
class Run:
    """What came out of one worker run."""

    origin: dict[tuple[int, int], Bad]  # (partition, offset) of each bad message on the readings topic
    letters: list[ConsumerRecord]
    alerts: list[dict[str, object]]
    metrics: str
    processed: float
    log: str
    exit_code: int
    elapsed: float


def _flood(meters: list[str]) -> list[Bad]:
    """FLOOD malformed messages, each unique; keys: a good meter's (same partition as its readings),
    none, or a key of their own."""
    kinds = list(KINDS)
    bad: list[Bad] = []
    for i in range(FLOOD):
        kind, meter = kinds[i % len(kinds)], meters[i % len(meters)]
        key = (meter.encode(), None, f"junk-{i}".encode())[i % 3]
        if kind == "null_value":
            key = f"null-{i}".encode()  # a tombstone is told apart by its key alone
        bad.append(Bad(kind, key, KINDS[kind][0](i, meter)))
    assert len({(b.key, b.value) for b in bad}) == FLOOD
    return bad


def _good(meters: list[str], hours: int = HOURS) -> Expected:
    records: list[tuple[bytes, bytes]] = []
    alerts: set[tuple[str, AlertKind, int]] = set()
    for hour in range(hours):
        for index, meter in enumerate(meters):
            flags: list[str] = []
            if (index % 3, hour) in FLAGGED:
                kind, flag = FLAGGED[index % 3, hour]
                flags = [flag]
                alerts.add((meter, kind, T0 + 3600 * hour))
            records.append(
                (
                    meter.encode(),
                    _json({"meter_id": meter, "ts": T0 + 3600 * hour, "register_l": 1000 + 10 * hour, "flags": flags}),
                )
            )
    readings = len(records)
    for meter in meters[::4]:  # NB-IoT batches of four hours; the leak flag rides on the last one
        batch_hours = range(hours, hours + 4)
        records.append(
            (
                meter.encode(),
                _json(
                    {
                        "meter_id": meter,
                        "flags": ["leak"],
                        "readings": [{"ts": T0 + 3600 * h, "register_l": 1000 + 10 * h} for h in batch_hours],
                    }
                ),
            )
        )
        readings += len(batch_hours)
        alerts.add((meter, AlertKind.CONTINUOUS_FLOW, T0 + 3600 * batch_hours[-1]))
    return Expected(records, readings, alerts)


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> list[tuple[int, int]]:
    """Send in order; the (partition, offset) each record got."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_request_size=2 * MAX_MESSAGE_BYTES
    )
    try:
        futures = [producer.send(topic, key=key, value=value) for key, value in records]
        producer.flush(timeout=60)
        return [(meta.partition, meta.offset) for meta in (future.get(timeout=30) for future in futures)]
    finally:
        producer.close()


def _samples(metrics: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one metric family: sorted labels → value."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for labels, value in re.findall(rf"^{name}(?:\{{(.*)\}})? (\S+)$", metrics, re.MULTILINE):
        found[tuple(sorted(re.findall(r'(\w+)="([^"]*)"', labels)))] = float(value)
    return found


def _dead_letters(metrics: str, source: str) -> dict[str, float]:
    """``shouwang_worker_dead_letters_total`` of one source topic, per error class."""
    samples = _samples(metrics, "shouwang_worker_dead_letters_total")
    return {
        dict(labels)["error_class"]: value for labels, value in samples.items() if dict(labels).get("source") == source
    }


def _interleave(good: list[tuple[bytes, bytes]], bad: list[Bad]) -> list[tuple[str, int]]:
    """Each good record followed by its share of the bad ones: ("good" | "bad", index)."""
    share = -(-len(bad) // len(good))
    mixed: list[tuple[str, int]] = []
    for index in range(len(good)):
        mixed += [("good", index), *(("bad", i) for i in range(index * share, min(len(bad), (index + 1) * share)))]
    assert sum(1 for what, _ in mixed if what == "bad") == len(bad)
    return mixed


def _run(settings: Settings, log: Path, good: Expected, bad: list[Bad]) -> Run:
    """Start a worker, send the good and bad records interleaved, wait until it has consumed all of
    them (checking it stays up), collect both output topics and its metrics, stop it."""
    provision_topics(settings)
    topics = Topics.from_settings(settings)
    bootstrap = settings.bootstrap_servers
    url = f"http://127.0.0.1:{settings.worker_web_port}/metrics"
    mixed = _interleave(good.records, bad)
    worker = start_shouwang(["worker"], settings_env(settings), log)
    try:
        wait_http(url, process=worker, log=log)
        began = time.monotonic()
        places = _produce(
            bootstrap,
            topics.readings,
            [good.records[i] if what == "good" else (bad[i].key, bad[i].value) for what, i in mixed],
        )
        origin = {place: bad[i] for place, (what, i) in zip(places, mixed, strict=True) if what == "bad"}

        def consumed_all() -> bool:
            assert worker.poll() is None, "the worker died in the flood:\n" + log.read_text(errors="replace")[-4000:]
            text = wait_http(url).decode()
            return _samples(text, "shouwang_worker_records_consumed_total").get((), 0.0) >= len(mixed)

        until(consumed_all, timeout=90, what=f"all {len(mixed)} records consumed by the worker")
        # Their dead letters and alerts are out once a consumer sees them (what is missing then is
        # reported by the assertions); a little more time for any duplicate to show up.
        consume(bootstrap, topics.deadletter, until=lambda found: len(found) >= len(bad), timeout=20)
        consume(bootstrap, topics.alerts, until=lambda found: len(found) >= len(good.alerts), timeout=20)
        time.sleep(2)
        letters = read_all(bootstrap, topics.deadletter)
        alerts = values(read_all(bootstrap, topics.alerts))
        metrics = wait_http(url).decode()
        processed = readings_processed(url)
        elapsed = time.monotonic() - began
        assert worker.poll() is None, "the worker must survive the flood"
    finally:
        code = stop(worker)
    print(f"\n{len(bad)} malformed + {len(good.records)} good records handled in {elapsed:.1f} s")
    return Run(origin, letters, alerts, metrics, processed, log.read_text(errors="replace"), code, elapsed)


def _check(run: Run, good: Expected, bad: list[Bad], reasons: dict[str, str], readings_topic: str) -> None:
    """Every promise of the module docstring, on one run."""
    crashes = [line for line in run.log.splitlines() if "Crashed reason" in line]
    assert run.exit_code == 0, run.log[-3000:]

    # Every bad message exactly once, original key and bytes, the reason of its kind, its origin.
    places = Counter(
        (int(read_headers(r.headers).get(SOURCE_PARTITION, -1)), int(read_headers(r.headers).get(SOURCE_OFFSET, -1)))
        for r in run.letters
    )
    missing = Counter(bad.kind for place, bad in run.origin.items() if place not in places)
    assert not missing, (
        f"malformed messages missing from the dead-letter topic: {dict(missing)}; agent crashes: {crashes[:3]}"
    )
    twice = {place: count for place, count in places.items() if count > 1}
    assert not twice, f"dead-lettered more than once: {twice}"
    assert len(run.letters) == len(bad), f"{len(run.letters)} dead letters for {len(bad)} malformed messages"
    for letter in run.letters:
        headers = read_headers(letter.headers)
        place = (int(headers[SOURCE_PARTITION]), int(headers[SOURCE_OFFSET]))
        assert place in run.origin, f"a dead letter for a record that was not malformed: {place} {headers}"
        original = run.origin[place]
        assert (letter.key, letter.value) == (original.key, original.value), (original.kind, place)
        assert re.fullmatch(reasons[original.kind], headers[REASON]), (original.kind, headers[REASON])
        assert headers[ERROR_CLASS] == "invalid", (original.kind, headers)
        assert headers[SOURCE_TOPIC] == readings_topic
    assert Counter((r.key, r.value) for r in run.letters) == Counter((b.key, b.value) for b in bad)
    # The records of one source partition keep their order in the (single-partition) dead-letter topic.
    for partition in {p for p, _ in run.origin}:
        offsets = [
            int(read_headers(r.headers)[SOURCE_OFFSET])
            for r in run.letters
            if int(read_headers(r.headers)[SOURCE_PARTITION]) == partition
        ]
        assert offsets == sorted(offsets), f"dead letters of partition {partition} out of order"

    # Every good reading processed, none twice, and no reading of a bad message.
    assert run.processed == good.readings, f"{run.processed} readings processed, {good.readings} sent"

    # Every expected alert, once, with its stable id; nothing else.
    found = sorted(
        (str(a["meter_id"]), str(a["kind"]), int(datetime.fromisoformat(str(a["since"])).timestamp()))
        for a in run.alerts
    )
    assert found == sorted((meter, kind.value, since) for meter, kind, since in good.alerts)
    assert all(a["event"] == "raised" for a in run.alerts)
    ids = [a["alert_id"] for a in run.alerts]
    assert len(set(ids)) == len(ids) == len(good.alerts), "one alert id per alert, none twice"
    assert set(ids) == {
        alert_id_for(meter, kind, datetime.fromtimestamp(since, UTC)) for meter, kind, since in good.alerts
    }

    # The dead-letter metric counts them by error class: all invalid, nothing internal.
    assert _dead_letters(run.metrics, readings_topic) == {"invalid": float(len(bad)), "internal": 0.0}
    assert not crashes, crashes[:3]


def _quiet_timer(settings: Settings) -> Settings:
    # The readings are of March 2026: the hourly `meter_offline` sweep (wall clock) would find every
    # meter overdue if it ran during the test. It is not what is tested here.
    return settings.model_copy(update={"offline_check_s": 3600.0})


def test_a_flood_of_malformed_messages_is_dead_lettered_while_good_readings_pass(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    meters = [f"f-{i:02d}" for i in range(36)]
    good, bad = _good(meters), _flood(meters)
    assert set(Counter(b.kind for b in bad)) == set(KINDS)
    settings = _quiet_timer(kafka_settings)
    run = _run(settings, tmp_path / "worker.log", good, bad)
    _check(
        run, good, bad, {kind: reason for kind, (_, reason) in KINDS.items()}, Topics.from_settings(settings).readings
    )


def test_oversized_messages_are_dead_lettered_without_crashing_the_agent(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    meters = [f"o-{i:02d}" for i in range(12)]
    good = _good(meters, hours=3)
    bad = [
        Bad(kind, meters[i].encode(), make(i, meters[i]))
        for i, (kind, (make, _)) in enumerate([*BIG.items(), *BIG.items()])
    ]
    bad.append(Bad("binary", b"o-00", KINDS["binary"][0](99, "o-00")))  # and an ordinary one after them
    reasons = {kind: reason for kind, (_, reason) in [*KINDS.items(), *BIG.items()]}
    settings = _quiet_timer(kafka_settings)
    run = _run(settings, tmp_path / "worker.log", good, bad)
    _check(run, good, bad, reasons, Topics.from_settings(settings).readings)
