"""Topic provisioning with kafka-python's admin client: create what is missing, raise
partition counts and set each topic's configuration (retention, compaction, message size) to
what the settings say; running it twice changes nothing.

Replication comes from the cluster itself unless set: a new topic gets one replica per live broker,
at most three (``shouwang.durability``), so the same settings give one copy on the embedded broker and
three on a cluster, and no forgotten setting leaves a cluster's topics with a single copy. Every topic
gets ``min.insync.replicas`` for the replicas it really has (2 of 3): an older topic with fewer copies
must not be asked for more in-sync replicas than it has, which would refuse every write."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from shouwang.durability import min_insync_replicas, replication_for
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
    replication: int = 1  # of the topics created now (the cluster's, or SHOUWANG_REPLICATION_FACTOR)
    # Existing topics with fewer replicas than new ones get: Kafka adds replicas only by a reassignment
    # (kafka-reassign-partitions), which an operator runs; named here and in a warning.
    under_replicated: list[str] = field(default_factory=list)


def provision_topics(settings: Settings, *, timeout_ms: int = 30_000) -> ProvisionReport:
    """Make the cluster's topics match the settings. Partitions only grow (shrinking would
    move meters between partitions and lose their order)."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, client_id="shouwang-provision", request_timeout_ms=timeout_ms
    )
    try:
        brokers = len(admin.describe_cluster()["brokers"])
        replication = settings.replication_factor or replication_for(brokers)
        return _provision(admin, topic_specs(settings), replication, brokers, timeout_ms)
    finally:
        admin.close()


def _provision(
    admin: KafkaAdminClient, specs: list[TopicSpec], replication: int, brokers: int, timeout_ms: int
) -> ProvisionReport:
    existing = set(admin.list_topics())
    missing = [spec for spec in specs if spec.name not in existing]
    if missing and replication > brokers:
        raise TopicProvisioningError(
            f"{len(missing)} topics to create with {replication} replicas (SHOUWANG_REPLICATION_FACTOR), but the "
            f"cluster has {brokers} live broker(s): start the others, or lower the setting"
        )
    created: list[str] = []
    for spec in missing:
        configs = {**spec.configs, "min.insync.replicas": str(min_insync_replicas(replication))}
        try:
            admin.create_topics(
                [NewTopic(spec.name, spec.partitions, replication, topic_configs=configs)], timeout_ms=timeout_ms
            )
            created.append(spec.name)
        except TopicAlreadyExistsError:
            pass  # another process created it between list and create: fine
    _await_leaders(admin, created, timeout_ms)
    # Only topics that existed before: a just-created topic's metadata may still be settling.
    described = _describe(admin, [s.name for s in specs if s.name not in created])
    grown = []
    for spec in specs:
        partitions = described[spec.name][0] if spec.name in described else spec.partitions
        if 0 < partitions < spec.partitions:
            admin.create_partitions({spec.name: NewPartitions(spec.partitions)}, timeout_ms=timeout_ms)
            log.warning(
                "topic %s grown from %d to %d partitions: existing meters may move partition",
                spec.name,
                partitions,
                spec.partitions,
            )
            grown.append(spec.name)
    under_replicated = sorted(name for name, (_, copies) in described.items() if 0 < copies < replication)
    for name in under_replicated:
        log.warning(
            "topic %s has %d replica(s), new topics get %d: add replicas with kafka-reassign-partitions",
            name,
            described[name][1],
            replication,
        )
    reconfigured = []
    current = _configs(admin, list(described))
    for spec in specs:
        if spec.name not in current:
            continue
        # The topic's own replicas decide its minimum in sync (those of a partition with the fewest).
        configs = {**spec.configs, "min.insync.replicas": str(min_insync_replicas(described[spec.name][1] or 1))}
        if any(current[spec.name].get(key) != value for key, value in configs.items()):
            # Every setting of the spec, not only the one that changed: on brokers without
            # IncrementalAlterConfigs (before 2.3), AlterConfigs resets whatever it leaves out.
            answers = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=configs)])
            answer = answers.get("topic", {}).get(spec.name, "no answer")
            if answer != "OK":  # kafka-python reports a refusal (a policy, an ACL) here instead of raising
                raise TopicProvisioningError(f"topic {spec.name}: the broker refused its settings ({answer})")
            reconfigured.append(spec.name)
    changed = set(created) | set(grown) | set(reconfigured)
    unchanged = [s.name for s in specs if s.name not in changed]
    return ProvisionReport(created, grown, reconfigured, unchanged, replication, under_replicated)


def _await_leaders(admin: KafkaAdminClient, names: list[str], timeout_ms: int) -> None:
    """Wait until the broker describes every topic just created with a leader for each partition: the
    controller has them when it answers, the brokers a moment later, and whoever comes next (a worker,
    a producer) must find them."""
    deadline = time.monotonic() + timeout_ms / 1000
    waiting = list(names)
    while waiting:
        try:
            described = admin.describe_topics(waiting)
        except KafkaError:
            described = []
        led = {
            t["name"]
            for t in described
            if t["error_code"] == 0 and t["partitions"] and all(p["leader_id"] >= 0 for p in t["partitions"])
        }
        waiting = [name for name in waiting if name not in led]
        if waiting and time.monotonic() > deadline:
            raise TopicProvisioningError(f"created, but without a leader within {timeout_ms} ms: {', '.join(waiting)}")
        if waiting:
            time.sleep(0.1)


def _describe(admin: KafkaAdminClient, names: list[str]) -> dict[str, tuple[int, int]]:
    """Each topic's partition count and replicas (of its partition with the fewest)."""
    if not names:
        return {}
    found = {}
    for item in admin.describe_topics(names):
        partitions = item["partitions"]
        copies = min((len(p["replica_nodes"]) for p in partitions), default=0)
        found[item["name"]] = (len(partitions), copies)
    return found


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
