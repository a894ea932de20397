"""The whole path on the real broker: reading → Faust worker → alerts topic, and
malformed messages → dead-letter topic while the good ones beside them pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shouwang.deadletter import read_headers
from shouwang.settings import Settings
from shouwang.topics import Topics
from streams.topic_provisioning import provision_topics
from tests.conftest import settings_env
from tests.kafka_helpers import consume, produce, start_shouwang, stop, values, wait_http

pytestmark = pytest.mark.kafka


def _reading(meter: str, minute: int, flags: list[str] | None = None) -> bytes:
    return json.dumps(
        {
            "meter_id": meter,
            "ts": f"2026-03-01T08:{minute:02d}:00+08:00",
            "register_l": 100 + minute,
            "flags": flags or [],
        }
    ).encode()


BAD = [
    (b"m-bad", b"\x00\x01binary junk"),
    (b"m-bad", b'{"meter_id": "m-bad", "ts": "2026-03-01T08:00:00", "register_l": 1}'),
    (b"m-bad", b'{"meter_id": "m-bad", "ts": 1767225600, "register_l": -5}'),
    (None, b"[]"),
]


def test_readings_become_alerts_and_bad_messages_become_dead_letters(kafka_settings: Settings, tmp_path: Path) -> None:
    provision_topics(kafka_settings)
    topics = Topics.from_settings(kafka_settings)
    worker = start_shouwang(["worker"], settings_env(kafka_settings), tmp_path / "worker.log")
    try:
        wait_http(f"http://127.0.0.1:{kafka_settings.worker_web_port}/metrics")
        good = [(f"m-{i}".encode(), _reading(f"m-{i}", i, ["leak"] if i % 2 == 0 else None)) for i in range(10)]
        batch = json.dumps(
            {
                "meter_id": "m-nb",
                "flags": ["burst"],
                "readings": [{"ts": f"2026-03-01T0{h}:00:00+08:00", "register_l": 10 * h} for h in range(1, 5)],
            }
        )
        # Bad messages interleaved with good ones on the same partitions.
        produce(
            kafka_settings.bootstrap_servers, topics.readings, [*good[:5], *BAD, *good[5:], (b"m-nb", batch.encode())]
        )

        alerts = values(
            consume(kafka_settings.bootstrap_servers, topics.alerts, until=lambda records: len(records) >= 6)
        )
        letters = consume(
            kafka_settings.bootstrap_servers, topics.deadletter, until=lambda records: len(records) >= len(BAD)
        )
        metrics = wait_http(f"http://127.0.0.1:{kafka_settings.worker_web_port}/metrics").decode()
        assert worker.poll() is None, "the worker must survive bad input"
    finally:
        code = stop(worker)
    log = (tmp_path / "worker.log").read_text()
    assert code == 0, log[-3000:]

    leaks = sorted(a["meter_id"] for a in alerts if a["kind"] == "continuous_flow")
    assert leaks == ["m-0", "m-2", "m-4", "m-6", "m-8"]
    [burst] = [a for a in alerts if a["kind"] == "spike"]
    assert burst["meter_id"] == "m-nb" and burst["since"] == "2026-03-01T04:00:00+08:00"
    assert len(alerts) == 6 and len({a["alert_id"] for a in alerts}) == 6

    assert len(letters) == len(BAD)
    # Original bytes and keys; records of one source partition keep their order.
    assert [(r.key, r.value) for r in letters if r.key == b"m-bad"] == BAD[:3]
    assert [(r.key, r.value) for r in letters if r.key is None] == BAD[3:]
    reasons = [
        read_headers(r.headers)["shouwang.reason"] for r in sorted(letters, key=lambda r: BAD.index((r.key, r.value)))
    ]
    assert reasons[0].startswith("not UTF-8") or reasons[0].startswith("not JSON")
    assert "has no UTC offset" in reasons[1]
    assert reasons[2].startswith("register_l:")
    assert reasons[3] == "expected a JSON object, got list"
    assert all(read_headers(r.headers)["shouwang.source.topic"] == topics.readings for r in letters)

    assert "shouwang_worker_readings_processed_total 14.0" in metrics
    assert 'shouwang_worker_dead_letters_total{error_class="invalid",source="' in metrics
