"""Silent meters on the real broker: the worker's timer raises `meter_offline` once per meter, only
for meters that are overdue, with the id the meter's next reading confirms; a restarted worker
indexes its meters from the recovered table and tells the still-silent ones again under the same id."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shouwang.settings import Settings
from shouwang.topics import Topics
from streams.topic_provisioning import provision_topics
from tests.conftest import settings_env
from tests.kafka_helpers import consume, produce, readings_processed, start_shouwang, stop, until, values, wait_http

pytestmark = pytest.mark.kafka
OLD = 1_772_323_200  # 2026-03-01T00:00:00Z: long before the wall clock, so these meters are overdue


def _reading(meter: str, ts: float, register: float) -> bytes:
    return json.dumps({"meter_id": meter, "ts": int(ts), "register_l": register}).encode()


def _offline(records: list[dict[str, object]]) -> list[dict[str, object]]:
    return [a for a in records if a["kind"] == "meter_offline"]


def test_silent_meters_are_told_once_and_a_fresh_meter_not_at_all(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings.model_copy(update={"offline_check_s": 1.0})
    provision_topics(settings)
    topics = Topics.from_settings(settings)
    env = settings_env(settings)
    metrics = f"http://127.0.0.1:{settings.worker_web_port}/metrics"
    silent = [f"quiet-{i}" for i in range(12)]
    now = time.time()
    records = [(m.encode(), _reading(m, OLD + 3600 * h, 100.0 + h)) for h in range(3) for m in silent]
    # A meter that reported a minute ago is not overdue: it must not be told.
    records += [(b"fresh-1", _reading("fresh-1", now - 3600 * (2 - h) - 60, 5.0 + h)) for h in range(3)]
    worker = start_shouwang(["worker"], env, tmp_path / "worker-1.log")
    try:
        wait_http(metrics)
        produce(settings.bootstrap_servers, topics.readings, records)
        until(lambda: readings_processed(metrics) >= len(records))
        first = _offline(
            values(
                consume(
                    settings.bootstrap_servers,
                    topics.alerts,
                    until=lambda found: len(_offline(values(found))) >= len(silent),
                )
            )
        )
        time.sleep(4)  # four more timer rounds: nobody is told twice
        again = _offline(
            values(consume(settings.bootstrap_servers, topics.alerts, until=lambda found: False, timeout=3))
        )
        # One meter speaks again, now: its reading resolves the episode under the timer's id.
        produce(settings.bootstrap_servers, topics.readings, [(b"quiet-0", _reading("quiet-0", now, 110.0))])
        until(lambda: readings_processed(metrics) >= len(records) + 1)
        assert worker.poll() is None
    finally:
        code = stop(worker)
    assert code == 0, (tmp_path / "worker-1.log").read_text()[-3000:]
    assert sorted(a["meter_id"] for a in first) == sorted(silent)
    last_reading = datetime.fromtimestamp(OLD + 2 * 3600, UTC)
    assert all(a["event"] == "raised" and datetime.fromisoformat(str(a["since"])) == last_reading for a in first), (
        first[:2]
    )
    told = Counter((a["meter_id"], a["event"]) for a in again)
    assert told == Counter({(m, "raised"): 1 for m in silent}), "each silent meter once, the fresh one never"
    ids = {a["meter_id"]: a["alert_id"] for a in first}

    worker = start_shouwang(["worker"], env, tmp_path / "worker-2.log")
    try:
        wait_http(metrics)
        # The restarted worker knows its meters only from the recovered table: it indexes them and
        # tells the still-silent ones again, with the same ids (the router drops the repeats).
        everything = values(
            consume(
                settings.bootstrap_servers,
                topics.alerts,
                until=lambda found: len(_offline(values(found))) >= 2 * len(silent) + 1,
                timeout=90,
            )
        )
        time.sleep(3)
        assert worker.poll() is None
    finally:
        code = stop(worker)
    assert code == 0, (tmp_path / "worker-2.log").read_text()[-3000:]
    offline = _offline(everything)
    resolved = [(a["meter_id"], a["alert_id"]) for a in offline if a["event"] == "resolved"]
    assert resolved == [("quiet-0", ids["quiet-0"])]
    # Raised twice each: by the first worker's timer, then by the restarted worker's timer — or, for
    # quiet-0, by its own late reading (in event time) — always under the same id.
    raised = Counter(a["meter_id"] for a in offline if a["event"] == "raised")
    assert raised == Counter({m: 2 for m in silent})
    assert all(a["alert_id"] == ids[str(a["meter_id"])] for a in offline)
