"""The feedback agent: in the readings agent's stream, as the worker wires it (``divert``), first over
stand-in topics and an in-memory changelog, then in a worker process on the real broker."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from detectors.no_usage import NoUsageDetector
from shouwang.deadletter import read_headers
from shouwang.events import alert_id_for
from shouwang.settings import Settings
from shouwang.topics import Topics
from streams.detection import bank_factory
from streams.emitter import Emitter
from streams.feedback import FeedbackProcessor
from streams.feedback_agent import FeedbackAgent
from streams.metrics import ReportingMeters
from streams.offline import OfflineWatch, partition_of
from streams.processing import ReadingProcessor
from streams.reading_agent import ReadingAgent
from streams.state_writes import StateWriter
from streams.topic_provisioning import changelog, provision_topics
from tests.conftest import settings_env
from tests.kafka_helpers import consume, produce, readings_processed, start_shouwang, stop, until, wait_http
from tests.streams.kafka_fakes import FakeTopic, MemoryChangelog, Message, Worker, events, sample, settle

PARTITIONS = 4
FACTORY = bank_factory(Settings())
ZONE = ZoneInfo(Settings().household_tz)
START = datetime(2026, 3, 1, tzinfo=ZONE)
DAYS = 21
SINCE = START + timedelta(days=DAYS - 1, hours=14)  # a silence from 14:00 on the last day


def three_weeks(meter: str) -> bytes:
    """A batch of three weeks of hourly readings: water used every hour from 07:00 to 22:00."""
    readings, register = [], 0.0
    for hour in range(DAYS * 24):
        at = START + timedelta(hours=hour)
        if 7 <= at.hour < 22:
            register += 5.0
        readings.append({"ts": int(at.timestamp()), "register_l": register})
    return json.dumps({"meter_id": meter, "readings": readings}).encode()


def feedback(meter: str, silence_h: float, *, alert_id: str | None = None) -> bytes:
    return json.dumps(
        {
            "type": "feedback",
            "alert_id": alert_id or alert_id_for(meter, "no_usage", SINCE),
            "meter_id": meter,
            "kind": "no_usage",
            "since": SINCE.isoformat(),
            "silence_h": silence_h,
            "outcome": "false_alarm",
            "at": (SINCE + timedelta(hours=silence_h)).isoformat(),
        }
    ).encode()


def limit_at_14(state: bytes) -> float:
    bank = FACTORY()
    bank.load(state)
    return next(d for d in bank.detectors if isinstance(d, NoUsageDetector)).limit_hours(14)


class Rig:
    """Both agents with their collaborators, all real but the topics and the changelog."""

    def __init__(self) -> None:
        self.readings, self.alerts, self.letters = FakeTopic("readings"), FakeTopic("alerts"), FakeTopic("deadletter")
        self.changelog = MemoryChangelog()
        self.states = StateWriter(self.changelog, self.alerts.send, Worker())
        emitter = Emitter(self.alerts.send, self.letters.send)
        self.readings_agent = ReadingAgent(
            processor=ReadingProcessor(FACTORY),
            states=self.states,
            emitter=emitter,
            send_reading=self.readings.send,
            offline=OfflineWatch(PARTITIONS),
            reporting=ReportingMeters(),
        )
        self.feedback_agent = FeedbackAgent(
            topic="t.feedback",
            processor=FeedbackProcessor(FACTORY, partitions=PARTITIONS),
            states=self.states,
            emitter=emitter,
        )

    async def run(self, *messages: Message) -> None:
        await self.readings_agent.run(self.feedback_agent.divert(events(*messages)))  # as streams/app.py wires it
        await settle()


def on(topic: str, meter: str, value: bytes, *, key: bytes | None = None, offset: int = 0) -> Message:
    return Message(topic, partition_of(meter, PARTITIONS), offset, meter.encode() if key is None else key, value)


def test_feedback_in_the_readings_stream_teaches_the_state_and_bad_feedback_is_dead_lettered() -> None:
    worker = Rig()
    learned = sample("shouwang_worker_feedback_processed_total")
    readings_before = sample("shouwang_worker_records_consumed_total")
    asyncio.run(worker.run(on("t.readings", "m1", three_weeks("m1"))))
    before = limit_at_14(worker.changelog.store[b"m1"])
    asyncio.run(
        worker.run(
            on("t.feedback", "m1", feedback("m1", before + 1), offset=1),
            on("t.feedback", "m1", feedback("m1", before + 1, alert_id="al_" + "0" * 24), offset=2),
        )
    )
    assert limit_at_14(worker.changelog.store[b"m1"]) > before
    [letter] = worker.letters.sent
    headers = read_headers(letter.headers)
    assert headers["shouwang.reason"].startswith("unknown alert 'al_000000000000000000000000'")
    assert headers["shouwang.source.topic"] == "t.feedback" and headers["shouwang.source.offset"] == "2"
    assert sample("shouwang_worker_feedback_processed_total") == learned + 2
    # Feedback records are not readings: the readings' counters saw the batch only.
    assert sample("shouwang_worker_records_consumed_total") == readings_before + 1


def test_feedback_builds_on_a_state_still_waiting_for_its_alert() -> None:
    # A reading raised an alert that is not delivered yet: its state is held, not in the changelog.
    # The verdict after it must build on that state, and be written after it.
    async def run() -> None:
        worker = Rig()
        await worker.run(on("t.readings", "m1", three_weeks("m1")))
        worker.alerts.hold = True
        last = int((START + timedelta(days=DAYS)).timestamp())
        flagged = json.dumps({"meter_id": "m1", "ts": last, "register_l": 5000.0, "flags": ["burst"]}).encode()
        before = limit_at_14(worker.changelog.store[b"m1"])
        written = len(worker.changelog.written)
        await worker.run(on("t.readings", "m1", flagged, offset=1), on("t.feedback", "m1", feedback("m1", before + 1)))
        assert worker.alerts.sent and len(worker.changelog.written) == written  # both held behind the alert
        for delivery in worker.alerts.deliveries:
            delivery.set_result(None)
        await settle()
        reading_state, feedback_state = (value for _, value, _ in worker.changelog.written[written:])
        assert limit_at_14(feedback_state) > before == limit_at_14(reading_state)
        # Learning from the verdict kept the reading: the reading's state plus the verdict.
        bank = FACTORY()
        bank.load(reading_state)
        bank.learn_feedback("no_usage", SINCE.timestamp(), before + 1)
        assert feedback_state == bank.dump()

    asyncio.run(run())


def _metric(url: str, name: str) -> float:
    text = wait_http(url).decode()
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found[1]) if found else 0.0


def test_worker_learns_from_feedback_and_dead_letters_bad_feedback(kafka_settings: Settings, tmp_path: Path) -> None:
    provision_topics(kafka_settings)
    topics = Topics.from_settings(kafka_settings)
    bootstrap, meter = kafka_settings.bootstrap_servers, "fb-1"
    states_topic = changelog(kafka_settings, "meter-state")
    metrics = f"http://127.0.0.1:{kafka_settings.worker_web_port}/metrics"
    log = tmp_path / "worker.log"
    worker = start_shouwang(["worker"], settings_env(kafka_settings), log)
    try:
        wait_http(metrics, process=worker, log=log)
        produce(bootstrap, topics.readings, [(meter.encode(), three_weeks(meter))])
        until(lambda: readings_processed(metrics) >= DAYS * 24, what="the readings processed")

        [*_, state] = consume(
            bootstrap, states_topic, until=lambda rs: any(r.key == meter.encode() for r in rs), timeout=30
        )
        assert state.key == meter.encode()
        before = limit_at_14(state.value)
        produce(
            bootstrap,
            topics.feedback,
            [
                (meter.encode(), feedback(meter, before + 1)),
                (meter.encode(), feedback(meter, before + 1, alert_id="al_" + "f" * 24)),
                (b"someone-else", feedback(meter, before + 1)),
                (b"fb-unknown", feedback("fb-unknown", before + 1)),
            ],
        )
        letters = consume(
            bootstrap,
            topics.deadletter,
            until=lambda rs: len([r for r in rs if topics.feedback.encode() in dict(r.headers).values()]) >= 3,
            timeout=60,
        )
        learned = consume(
            bootstrap,
            states_topic,
            until=lambda rs: any(r.key == meter.encode() and limit_at_14(r.value) > before for r in rs),
            timeout=60,
        )
        until(lambda: _metric(metrics, "shouwang_worker_feedback_processed_total") >= 4, what="4 feedback records")
        assert worker.poll() is None
    finally:
        code = stop(worker, signal.SIGTERM)
    assert code == 0, log.read_text(errors="replace")[-3000:]
    reasons = sorted(
        read_headers(r.headers)["shouwang.reason"]
        for r in letters
        if read_headers(r.headers)["shouwang.source.topic"] == topics.feedback
    )
    assert len(reasons) == 3, reasons
    assert reasons[0].startswith("key 'someone-else' is not the meter id 'fb-1'")
    assert reasons[1].startswith("unknown alert 'al_ffffffffffffffffffffffff'")
    assert reasons[2].startswith("unknown meter 'fb-unknown'")
    assert any(r.key == meter.encode() and limit_at_14(r.value) > before for r in learned), (
        "the meter's state never learned from the false alarm"
    )
