"""What people teach the detectors (alerts/feedback.py): verdicts and routine hints, from the store to the
feedback topic of a real broker, each once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from alerts.check_ins import answer_fine
from alerts.db import Store
from alerts.feedback import FeedbackPublisher
from alerts.lifecycle import resolve
from alerts.models import Alert, Household
from alerts.pipeline import RouterConfig
from alerts.policy import parse_policy
from shouwang.events import decode_feedback
from shouwang.settings import Settings
from streams.topic_provisioning import provision_topics
from tests.alerts.conftest import T0, build_world
from tests.alerts.test_pipeline import event, route
from tests.kafka_helpers import read_all

CONFIG = RouterConfig(policy=parse_policy(None), repeat_interval=timedelta(hours=4), public_url="https://sw.example")


def test_needless_alarms_and_hints_reach_the_feedback_topic_once(kafka_settings: Settings, tmp_path: Path) -> None:
    provision_topics(kafka_settings)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    world = build_world(store)
    needless, helped, other_kind = event("MA"), event("MB"), event("MA", kind="spike")
    for alert_event in (needless, helped, other_kind):
        route(store, CONFIG, alert_event, T0 + timedelta(hours=6))
    later = T0 + timedelta(hours=7)
    with store.transaction() as session:
        for alert_id, outcome in ((needless.alert_id, "false_alarm"), (helped.alert_id, "help_given")):
            alert = session.get(Alert, alert_id)
            assert alert is not None
            resolve(session, alert, by="grid worker", outcome=outcome, note=None, now=later, config=CONFIG)
        spike = session.get(Alert, other_kind.alert_id)
        assert spike is not None
        resolve(session, spike, by="grid worker", outcome="false_alarm", note=None, now=later, config=CONFIG)
        home = session.get(Household, world.home_b.id)
        assert home is not None
        home.routine_hints = {"wake_up": "06:30", "outings": []}
    publisher = FeedbackPublisher(store, kafka_settings.topic("feedback"), kafka_settings.bootstrap_servers)

    async def publish_twice() -> tuple[int, int]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers, acks="all")
        await producer.start()
        try:
            return await publisher.publish_once(producer), await publisher.publish_once(producer)
        finally:
            await producer.stop()

    assert asyncio.run(publish_twice()) == (2, 0)  # the verdict and the hints; nothing again the second time
    records = read_all(kafka_settings.bootstrap_servers, kafka_settings.topic("feedback"), timeout=20)
    messages = {(record.key, type(decode_feedback(record.value)).__name__) for record in records}
    assert messages == {(b"MA", "OutcomeFeedback"), (b"MB", "MeterHints")}
    verdict = next(decode_feedback(r.value) for r in records if r.key == b"MA")
    assert verdict.alert_id == needless.alert_id and verdict.outcome == "false_alarm"  # type: ignore[union-attr]
    assert verdict.silence_h == pytest.approx(6.0)  # type: ignore[union-attr]
    store.close()


def test_a_resident_saying_fine_teaches_the_detector_too(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    build_world(store)
    route(store, CONFIG, event("MA"), T0 + timedelta(hours=6))
    with store.transaction() as session:
        alert = session.get(Alert, event("MA").alert_id)
        assert alert is not None
        alert.check_in = "unanswered"  # as after a check-in nobody answered in time
        answer_fine(session, alert, by="Elder A (via link)", now=T0 + timedelta(hours=7), config=CONFIG)
    feedback, _ = FeedbackPublisher(store, "unused", "127.0.0.1:9").collect()
    assert [(alert_id, message.outcome if message else None) for alert_id, message in feedback] == [
        (event("MA").alert_id, "resident_fine")
    ]
    store.close()
