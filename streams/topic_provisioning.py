"""Topic provisioning with kafka-python's admin client: create what is missing, raise
partition counts and set each topic's configuration (retention, compaction, message size) to
what the settings say; running it twice changes nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic
from kafka.errors import TopicAlreadyExistsError

from shouwang.settings import Settings
from shouwang.topics import Topics

log = logging.getLogger(__name__)

_HOUR_MS = 3_600_000


class TopicProvisioningError(RuntimeError):
    """The broker refused a topic's settings; the message says which topic and why."""


DEAD_LETTER_MAX_BYTES = 2 * 1024 * 1024
AREA_PARTITIONS = 1  # the incident-areas topic and its table: one area watch sees every cell


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    purpose: str
    compact: bool = False  # a table's changelog: the latest value per key is kept forever
    max_message_bytes: int | None = None  # None: the broker's default (about 1 MB)

    @property
    def configs(self) -> dict[str, str]:
        configs = {"retention.ms": str(self.retention_ms), "cleanup.policy": "compact" if self.compact else "delete"}
        if self.compact:
            configs.update(CHANGELOG_COMPACTION)
        if self.max_message_bytes:
            configs["max.message.bytes"] = str(self.max_message_bytes)
        return configs


# A table's changelog gets one record per meter per upload. Kafka compacts only closed segments,
# and by default a segment closes after a week or 1 GB: a restarted worker would read up to a
# week of state writes (7 per meter for daily uploads) instead of about one per meter. Hourly
# segments, cleaned once a fifth of the log is superseded, bound recovery to about 1.25 records
# per meter plus the last hour's writes.
CHANGELOG_COMPACTION = {"segment.ms": str(_HOUR_MS), "min.cleanable.dirty.ratio": "0.2"}


def topic_specs(settings: Settings) -> list[TopicSpec]:
    names = Topics.from_settings(settings)
    return [
        TopicSpec(
            names.readings,
            settings.readings_partitions,
            settings.readings_retention_hours * _HOUR_MS,
            "meter readings and batch uploads, keyed by meter id",
        ),
        TopicSpec(
            names.incidents,
            settings.incidents_partitions,
            settings.incidents_retention_hours * _HOUR_MS,
            "snap-and-report incident reports, keyed by grid cell",
        ),
        TopicSpec(
            names.alerts,
            settings.alerts_partitions,
            settings.alerts_retention_hours * _HOUR_MS,
            "alert events (raised/resolved), keyed by meter id or grid cell",
        ),
        TopicSpec(
            names.deadletter,
            settings.deadletter_partitions,
            settings.deadletter_retention_hours * _HOUR_MS,
            "rejected messages: original bytes, reason in headers",
            # A rejected message may be as large as the broker accepts; its headers come on top.
            max_message_bytes=DEAD_LETTER_MAX_BYTES,
        ),
        TopicSpec(
            names.feedback,
            # The readings' count, never its own: the worker applies a verdict to the meter's state,
            # which it holds only for the readings partitions it owns. With the same count and key, a
            # meter's feedback lands in the partition number of its readings, and the worker assigned
            # one is assigned the other (Faust's assignor co-partitions topics of equal counts).
            settings.readings_partitions,
            settings.feedback_retention_hours * _HOUR_MS,
            "people's verdicts on alarms and enrolment's routine hints, keyed by meter id "
            "(co-partitioned with the readings)",
        ),
        TopicSpec(
            names.daily,
            # Read by the routers, as the alerts are: the same count spreads them the same way.
            settings.alerts_partitions,
            settings.daily_retention_hours * _HOUR_MS,
            "each meter's day summaries (first water use, litres) for the all-is-well message, keyed by meter id",
        ),
        TopicSpec(
            names.incident_areas,
            # One partition, one key: the area watch must see every cell's reports, and an area's cells may
            # lie in different partitions of the incidents topic. Reports are few (a community's cells send a
            # handful a day), so one agent keeps up; its table's changelog has the same single partition.
            AREA_PARTITIONS,
            settings.incidents_retention_hours * _HOUR_MS,
            "classified reports of grid cells that have neighbours, for the area hotspot watch (one key)",
        ),
        # The worker's tables, created here with their source topics' partition counts: a worker
        # that meets its first record before Faust has declared them would otherwise fail to store it.
        TopicSpec(
            changelog(settings, "meter-state"),
            settings.readings_partitions,
            -1,
            "the worker's per-meter detector state (changelog of its table)",
            compact=True,
        ),
        TopicSpec(
            changelog(settings, "incident-cells"),
            settings.incidents_partitions,
            -1,
            "the worker's per-cell incident state (changelog of its table)",
            compact=True,
        ),
        TopicSpec(
            changelog(settings, "incident-areas"),
            AREA_PARTITIONS,
            -1,
            "the worker's area hotspot state: counts per neighbouring cell, areas raised (changelog of its table)",
            compact=True,
        ),
    ]


def changelog(settings: Settings, table: str) -> str:
    """Faust's name for a table's changelog topic: ``<app id>-<table>-changelog``."""
    return f"{settings.worker_id}-{table}-changelog"


@dataclass(frozen=True)
class ProvisionReport:
    created: list[str]
    grown: list[str]
    reconfigured: list[str]
    unchanged: list[str]


def provision_topics(settings: Settings, *, timeout_ms: int = 30_000) -> ProvisionReport:
    """Make the cluster's topics match the settings. Partitions only grow (shrinking would
    move meters between partitions and lose their order)."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, client_id="shouwang-provision", request_timeout_ms=timeout_ms
    )
    try:
        return _provision(admin, topic_specs(settings), settings.replication_factor, timeout_ms)
    finally:
        admin.close()


def _provision(admin: KafkaAdminClient, specs: list[TopicSpec], replication: int, timeout_ms: int) -> ProvisionReport:
    existing = set(admin.list_topics())
    created: list[str] = []
    for spec in specs:
        if spec.name in existing:
            continue
        try:
            admin.create_topics(
                [NewTopic(spec.name, spec.partitions, replication, topic_configs=spec.configs)], timeout_ms=timeout_ms
            )
            created.append(spec.name)
        except TopicAlreadyExistsError:
            pass  # another process created it between list and create: fine
    # Only topics that existed before: a just-created topic's metadata may still be settling.
    partitions = _partition_counts(admin, [s.name for s in specs if s.name not in created])
    grown = []
    for spec in specs:
        if 0 < partitions.get(spec.name, spec.partitions) < spec.partitions:
            admin.create_partitions({spec.name: NewPartitions(spec.partitions)}, timeout_ms=timeout_ms)
            log.warning(
                "topic %s grown from %d to %d partitions: existing meters may move partition",
                spec.name,
                partitions[spec.name],
                spec.partitions,
            )
            grown.append(spec.name)
    reconfigured = []
    current = _configs(admin, [s.name for s in specs if s.name not in created])
    for spec in specs:
        if spec.name in current and any(current[spec.name].get(key) != value for key, value in spec.configs.items()):
            # Every setting of the spec, not only the one that changed: on brokers without
            # IncrementalAlterConfigs (before 2.3), AlterConfigs resets whatever it leaves out.
            answers = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=spec.configs)])
            answer = answers.get("topic", {}).get(spec.name, "no answer")
            if answer != "OK":  # kafka-python reports a refusal (a policy, an ACL) here instead of raising
                raise TopicProvisioningError(f"topic {spec.name}: the broker refused its settings ({answer})")
            reconfigured.append(spec.name)
    changed = set(created) | set(grown) | set(reconfigured)
    return ProvisionReport(created, grown, reconfigured, [s.name for s in specs if s.name not in changed])


def _partition_counts(admin: KafkaAdminClient, names: list[str]) -> dict[str, int]:
    return {item["name"]: len(item["partitions"]) for item in admin.describe_topics(names)}


def _configs(admin: KafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    """Each topic's current configuration, as strings."""
    if not names:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    result = admin.describe_configs(resources, config_filter="all")
    found: dict[str, dict[str, str]] = {}
    for by_name in result.values():
        for name, configs in by_name.items():
            found[name] = {
                key: str(entry.get("value") if isinstance(entry, dict) else entry) for key, entry in configs.items()
            }
    return found
