"""Topic provisioning against the real broker."""

from __future__ import annotations

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

from shouwang.settings import Settings
from shouwang.topics import Topics
from streams import topic_provisioning as topics_module
from streams.topic_provisioning import (
    CHANGELOG_COMPACTION,
    DEAD_LETTER_MAX_BYTES,
    TopicProvisioningError,
    changelog,
    provision_topics,
)

pytestmark = pytest.mark.kafka


def _describe(settings: Settings) -> tuple[dict[str, int], dict[str, str]]:
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        names = list(vars(Topics.from_settings(settings)).values())
        partitions = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(names)}
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n, configs={"retention.ms": None}) for n in names],
            config_filter="all",
        )
        retention = {name: c["retention.ms"]["value"] for name, c in configs["topic"].items()}
        return partitions, retention
    finally:
        admin.close()


def test_provisioning_creates_then_changes_nothing(kafka_settings: Settings) -> None:
    first = provision_topics(kafka_settings)
    topics = Topics.from_settings(kafka_settings)
    changelogs = [changelog(kafka_settings, t) for t in ("meter-state", "incident-cells", "incident-areas")]
    assert sorted(first.created) == sorted([*vars(topics).values(), *changelogs])
    partitions, retention = _describe(kafka_settings)
    assert partitions[topics.readings] == kafka_settings.readings_partitions
    assert partitions[topics.alerts] == kafka_settings.alerts_partitions
    assert partitions[topics.feedback] == kafka_settings.readings_partitions  # co-partitioned with the readings
    assert retention[topics.feedback] == str(kafka_settings.feedback_retention_hours * 3_600_000)
    assert retention[topics.readings] == str(kafka_settings.readings_retention_hours * 3_600_000)
    assert partitions[topics.daily] == kafka_settings.alerts_partitions  # read by the routers, as the alerts
    assert retention[topics.daily] == str(kafka_settings.daily_retention_hours * 3_600_000)
    assert partitions[topics.incident_areas] == 1  # one key: the area watch sees every cell
    again = provision_topics(kafka_settings)
    assert again.created == again.grown == again.reconfigured == []


def test_provisioning_grows_partitions_and_updates_retention(kafka_settings: Settings) -> None:
    provision_topics(kafka_settings)
    wider = kafka_settings.model_copy(update={"readings_partitions": 6, "alerts_retention_hours": 12})
    report = provision_topics(wider)
    topics = Topics.from_settings(kafka_settings)
    # The meters' state and their feedback follow the readings' partitions (co-partitioned by meter id).
    state = changelog(kafka_settings, "meter-state")
    assert report.grown == [topics.readings, topics.feedback, state] and report.reconfigured == [topics.alerts]
    partitions, retention = _describe(wider)
    assert partitions[topics.readings] == partitions[topics.feedback] == 6
    assert retention[topics.alerts] == str(12 * 3_600_000)
    narrower = kafka_settings.model_copy(update={"readings_partitions": 2})
    assert provision_topics(narrower).grown == []  # never shrinks


def _configs(settings: Settings, names: list[str]) -> dict[str, dict[str, str]]:
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in names], config_filter="all"
        )
        return {
            name: {key: entry["value"] for key, entry in configs.items()}
            for name, configs in described["topic"].items()
        }
    finally:
        admin.close()


def test_a_retention_change_keeps_every_other_setting_of_the_topic(kafka_settings: Settings) -> None:
    provision_topics(kafka_settings)
    topics = Topics.from_settings(kafka_settings)
    longer = kafka_settings.model_copy(update={"deadletter_retention_hours": 48})
    assert provision_topics(longer).reconfigured == [topics.deadletter]
    configs = _configs(kafka_settings, [topics.deadletter])[topics.deadletter]
    assert configs["retention.ms"] == str(48 * 3_600_000)
    # The rest is untouched: the dead letters' size limit has not fallen back to the broker's 1 MB.
    assert configs["max.message.bytes"] == str(DEAD_LETTER_MAX_BYTES)


def test_changelogs_are_compacted_in_hourly_segments_even_if_created_without(kafka_settings: Settings) -> None:
    state = changelog(kafka_settings, "meter-state")
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    try:  # as an earlier version (or Faust itself) created it: compacted, with the broker's segments
        admin.create_topics(
            [NewTopic(state, kafka_settings.readings_partitions, 1, topic_configs={"cleanup.policy": "compact"})]
        )
    finally:
        admin.close()
    assert state in provision_topics(kafka_settings).reconfigured
    configs = _configs(kafka_settings, [state])[state]
    assert configs["cleanup.policy"] == "compact" and configs["retention.ms"] == "-1"
    assert (
        {key: configs[key] for key in CHANGELOG_COMPACTION}
        == CHANGELOG_COMPACTION
        == {"segment.ms": "3600000", "min.cleanable.dirty.ratio": "0.2"}
    )
    assert provision_topics(kafka_settings).reconfigured == []


def test_settings_the_broker_refuses_are_an_error_naming_the_topic(
    kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    provision_topics(kafka_settings)
    monkeypatch.setattr(topics_module, "CHANGELOG_COMPACTION", {"min.cleanable.dirty.ratio": "2"})  # over 1
    with pytest.raises(TopicProvisioningError, match=changelog(kafka_settings, "meter-state")):
        provision_topics(kafka_settings)
