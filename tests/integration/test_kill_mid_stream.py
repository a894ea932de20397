"""A worker killed with SIGKILL in the middle of a stream of real households' readings, and started
again while readings keep coming: it must raise exactly the alerts that the same readings give when
processed without a crash (no alert lost, none invented by a household that forgot its routine),
and any alert sent twice carries the same id and content."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from shouwang.events import encode
from shouwang.settings import Settings
from shouwang.topics import Topics
from streams.detection import bank_factory
from streams.processing import ReadingProcessor, SourceRecord
from streams.replay import read_readings
from streams.topic_provisioning import provision_topics
from tests.conftest import settings_env
from tests.kafka_helpers import produce, read_all, readings_processed, start_shouwang, stop, until, wait_http

pytestmark = pytest.mark.kafka
SLICE = Path(__file__).resolve().parent.parent / "data" / "daiad_slice.csv"
COPIES = 4  # each of the slice's 3 real homes under 4 meter ids: 12 meters


def _day_records() -> list[tuple[bytes, bytes]]:
    """A day of hourly readings per record (as NB-IoT meters upload), day by day, meter by meter."""
    with SLICE.open(encoding="utf-8") as lines:
        homes = [sorted(points) for points in read_readings(lines, "Europe/Madrid").meters.values()]
    per_meter: list[list[tuple[bytes, bytes]]] = []
    for copy in range(COPIES):
        for number, points in enumerate(homes):
            meter = f"home-{number}-{copy}"
            per_meter.append(
                [
                    (
                        meter.encode(),
                        json.dumps(
                            {
                                "meter_id": meter,
                                "readings": [
                                    {"ts": int(ts), "register_l": register} for ts, register in points[day : day + 24]
                                ],
                            }
                        ).encode(),
                    )
                    for day in range(0, len(points), 24)
                ]
            )
    days = max(len(records) for records in per_meter)
    return [records[day] for day in range(days) for records in per_meter if day < len(records)]


def _expected(settings: Settings, records: list[tuple[bytes, bytes]]) -> dict[tuple[str, str], bytes]:
    """The alerts of the same records processed once, in order, with no crash: (id, event) → event."""
    processor, states, alerts = ReadingProcessor(bank_factory(settings)), {}, {}
    for offset, (key, value) in enumerate(records):
        outcome = processor.process(SourceRecord("readings", 0, offset, key, value), states.get(key))
        assert outcome.dead_letter is None, outcome.dead_letter
        states[key] = outcome.state
        for alert in outcome.alerts:
            alerts[(alert.alert_id, alert.event)] = encode(alert)
    return alerts


def test_sigkill_mid_stream_loses_no_alert_and_invents_none(kafka_settings: Settings, tmp_path: Path) -> None:
    # The timer would add `meter_offline` for these 2016 readings by the wall clock: not this test's subject.
    settings = kafka_settings.model_copy(update={"household_tz": "Europe/Madrid", "offline_check_s": 3600.0})
    provision_topics(settings)
    topics = Topics.from_settings(settings)
    env = settings_env(settings)
    metrics = f"http://127.0.0.1:{settings.worker_web_port}/metrics"
    records = _day_records()
    readings = sum(len(json.loads(value)["readings"]) for _, value in records)
    expected = _expected(settings, records)
    assert len(expected) > 50, "the households must raise enough alerts for the comparison to mean something"

    # Readings keep coming, in slices, over the whole crash and recovery.
    slices = [records[i : i + 40] for i in range(0, len(records), 40)]
    producing = threading.Thread(
        target=lambda: [
            (produce(settings.bootstrap_servers, topics.readings, part), time.sleep(0.4)) for part in slices
        ]
    )
    worker = start_shouwang(["worker"], env, tmp_path / "worker-1.log")
    try:
        wait_http(metrics)
        producing.start()
        until(lambda: readings_processed(metrics) >= readings // 4, timeout=120)
    finally:
        stop(worker, signal.SIGKILL)  # mid-stream: state, offsets and alerts as a crash leaves them
    worker = start_shouwang(["worker"], env, tmp_path / "worker-2.log")
    try:
        producing.join(timeout=180)
        wait_http(metrics)
        # Every reading since the last committed offset is processed again, some twice: at least
        # all of those after the crash.
        with contextlib.suppress(TimeoutError):  # what is missing is reported below
            until(
                lambda: (
                    len(
                        {
                            (json.loads(r.value)["alert_id"], json.loads(r.value)["event"])
                            for r in read_all(settings.bootstrap_servers, topics.alerts)
                        }
                        & set(expected)
                    )
                    >= len(expected)
                ),
                timeout=120,
                what="every expected alert",
            )
        time.sleep(3)  # anything extra would be out by now
        assert worker.poll() is None
        processed_after_restart = readings_processed(metrics)
    finally:
        code = stop(worker)
    assert code == 0, (tmp_path / "worker-2.log").read_text()[-3000:]

    seen: dict[tuple[str, str], list[bytes]] = defaultdict(list)
    for record in read_all(settings.bootstrap_servers, topics.alerts):
        alert = json.loads(record.value)
        seen[(alert["alert_id"], alert["event"])].append(record.value)
    missing = sorted(set(expected) - set(seen))
    extra = sorted(set(seen) - set(expected))

    def listed(alerts: list[dict[str, str]]) -> str:
        return "; ".join(f"{a['meter_id']} {a['kind']} {a['event']} at {a['at']}" for a in alerts[:8])

    lost = [json.loads(expected[key]) for key in missing]
    invented = [json.loads(seen[key][0]) for key in extra]
    assert not missing, (
        f"{len(missing)} alerts lost: {listed(lost)}; {len(invented)} invented: {listed(invented)}; "
        f"the restarted worker processed {processed_after_restart:.0f} of {readings} readings"
    )
    assert not extra, f"{len(extra)} alerts no crash-free run gives: {[seen[k][0][:200] for k in extra[:3]]}"
    for key, sent in seen.items():
        assert all(json.loads(copy) == json.loads(expected[key]) for copy in sent), f"{key} re-sent differently"
