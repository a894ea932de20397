"""Topic provisioning against the real broker."""

from __future__ import annotations

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from shouwang.settings import Settings
from shouwang.topics import Topics
from streams.topics import changelog, provision_topics

pytestmark = pytest.mark.kafka


def _describe(settings: Settings) -> tuple[dict[str, int], dict[str, str]]:
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        names = list(vars(Topics.from_settings(settings)).values())
        partitions = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(names)}
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n, configs={"retention.ms": None}) for n in names],
            config_filter="all")
        retention = {name: c["retention.ms"]["value"] for name, c in configs["topic"].items()}
        return partitions, retention
    finally:
        admin.close()


def test_provisioning_creates_then_changes_nothing(kafka_settings: Settings) -> None:
    first = provision_topics(kafka_settings)
    topics = Topics.from_settings(kafka_settings)
    changelogs = [changelog(kafka_settings, "meter-state"), changelog(kafka_settings, "incident-cells")]
    assert sorted(first.created) == sorted([*vars(topics).values(), *changelogs])
    partitions, retention = _describe(kafka_settings)
    assert partitions[topics.readings] == kafka_settings.readings_partitions
    assert partitions[topics.alerts] == kafka_settings.alerts_partitions
    assert retention[topics.readings] == str(kafka_settings.readings_retention_hours * 3_600_000)
    again = provision_topics(kafka_settings)
    assert again.created == again.grown == again.reconfigured == []


def test_provisioning_grows_partitions_and_updates_retention(kafka_settings: Settings) -> None:
    provision_topics(kafka_settings)
    wider = kafka_settings.model_copy(update={"readings_partitions": 6, "alerts_retention_hours": 12})
    report = provision_topics(wider)
    topics = Topics.from_settings(kafka_settings)
    # The meters' state follows the readings' partitions (co-partitioned by meter id).
    state = changelog(kafka_settings, "meter-state")
    assert report.grown == [topics.readings, state] and report.reconfigured == [topics.alerts]
    partitions, retention = _describe(wider)
    assert partitions[topics.readings] == 6
    assert retention[topics.alerts] == str(12 * 3_600_000)
    narrower = kafka_settings.model_copy(update={"readings_partitions": 2})
    assert provision_topics(narrower).grown == []  # never shrinks
