"""Prometheus metrics of the detector worker (exposed at the worker's ``/metrics``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Protocol

from faust.types import TP
from prometheus_client import Counter, Gauge, Histogram

from streams.faust_compat.offsets import committed_offsets

log = logging.getLogger(__name__)

RECORDS_CONSUMED = Counter(
    "shouwang_worker_records_consumed_total",
    "Kafka records consumed from the readings topic (a batch upload is one record).",
)
READINGS_PROCESSED = Counter(
    "shouwang_worker_readings_processed_total",
    "Meter readings that passed validation and went through the detector bank.",
)
READINGS_REKEYED = Counter(
    "shouwang_worker_readings_rekeyed_total",
    "Readings whose Kafka key was not their meter id, sent again under the right key.",
)
READINGS_DROPPED_NO_CONSENT = Counter(
    "shouwang_worker_readings_dropped_no_consent_total",
    "Readings dropped because their household withdrew consent (its meters' learned state deleted).",
)
STATE_RESETS = Counter(
    "shouwang_worker_state_resets_total",
    "Meters whose stored detector state could not be read (another version) and started afresh.",
)
INCIDENTS_PROCESSED = Counter(
    "shouwang_worker_incidents_processed_total",
    "Incident reports consumed from the incidents topic (merged, classified or dead-lettered).",
)
FEEDBACK_PROCESSED = Counter(
    "shouwang_worker_feedback_processed_total",
    "Records consumed from the feedback topic: verdicts on alarms and routine hints (learned or dead-lettered).",
)
ALERTS_EMITTED = Counter(
    "shouwang_worker_alerts_emitted_total", "Alert events sent to the alerts topic.", ["kind", "severity", "event"]
)
DEAD_LETTERS = Counter(
    "shouwang_worker_dead_letters_total", "Records sent to the dead-letter topic.", ["source", "error_class"]
)
DEAD_LETTER_CLASSES = ("invalid", "internal")
PROCESSING_SECONDS = Histogram(
    "shouwang_worker_record_processing_seconds",
    "Time to decode, validate and run the detectors on one record.",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1),
)
DETECTORS_COMPILED = Gauge(
    "shouwang_worker_detectors_compiled",
    "1 if the household detectors run compiled (mypyc), 0 if as plain Python (slower, same findings).",
)
STATES_HELD = Gauge(
    "shouwang_worker_states_held",
    "Meter states held in memory until their records' alerts are delivered (streams/state_writes.py).",
)
LAST_READING = Gauge(
    "shouwang_worker_last_reading_timestamp_seconds",
    "Unix time at which this worker last processed a reading (its start time until the first one).",
)
CONSUMER_LAG = Gauge(
    "shouwang_worker_consumer_lag_records",
    "Records of an assigned partition not yet processed: log end offset minus committed offset.",
    ["topic", "partition"],
)
LAG_INTERVAL_S = 5.0
METERS_REPORTING = Gauge(
    "shouwang_worker_meters_reporting",
    "Distinct meters this worker processed a reading from within the reporting window (wall clock).",
)


class ReportingMeters:
    """Which meters reported recently, for "meters reporting vs enrolled". One float per meter
    seen within the window; pruned on every refresh, so memory follows the live fleet."""

    def __init__(self, window_s: float = 2 * 3600.0) -> None:
        self.window_s = window_s
        self.last_seen: dict[str, float] = {}

    def saw(self, meter_id: str, now: float) -> None:
        self.last_seen[meter_id] = now

    def refresh(self, now: float) -> int:
        cutoff = now - self.window_s
        self.last_seen = {meter: seen for meter, seen in self.last_seen.items() if seen >= cutoff}
        METERS_REPORTING.set(len(self.last_seen))
        return len(self.last_seen)


class LagSource(Protocol):
    """What the lag reporter reads of the Faust app's consumer (``app.consumer``)."""

    def assignment(self) -> set[TP]: ...

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]: ...

    async def position(self, tp: TP) -> int | None: ...


class LagReporter:
    """Keeps ``CONSUMER_LAG`` current for the partitions assigned to this worker (called from a Faust
    timer). One ListOffsets request per update; any failure (consumer not started, a rebalance, a
    slow broker) leaves the gauges as they were and is logged, because a metric must never take
    the worker down."""

    timeout_s = 5.0
    warn_after = 12  # consecutive failures (a minute at the default interval) before a warning

    def __init__(self, topics: frozenset[str] | None = None) -> None:
        # Only the source topics: a table's changelog partitions are assigned too, but they are read
        # for recovery, never committed, so their "lag" would be the whole changelog.
        self.topics = topics
        self.labels: set[tuple[str, str]] = set()
        self.failures = 0

    async def update(self, consumer: LagSource) -> None:
        """``consumer`` is the Faust app's consumer (``app.consumer``)."""
        try:
            seen = await self._measure(consumer)
        except Exception:
            self.failures += 1
            level = logging.WARNING if self.failures == self.warn_after else logging.DEBUG
            log.log(level, "consumer lag not updated (%d failures in a row)", self.failures, exc_info=True)
            return
        self.failures = 0
        for labels in self.labels - seen:
            CONSUMER_LAG.remove(*labels)
        self.labels = seen

    async def _measure(self, consumer: LagSource) -> set[tuple[str, str]]:
        assigned = sorted(tp for tp in consumer.assignment() if self.topics is None or tp.topic in self.topics)
        ends = await asyncio.wait_for(consumer.highwaters(*assigned), self.timeout_s) if assigned else {}
        # Faust's own record of the offsets it committed (None before the group's first commit).
        committed = committed_offsets(consumer)
        seen: set[tuple[str, str]] = set()
        for tp in assigned:
            end, done = ends.get(tp), committed.get(tp)
            if done is None:  # nothing committed yet: measure from where the consumer stands
                done = await asyncio.wait_for(consumer.position(tp), self.timeout_s)
            if end is None or done is None:
                continue
            labels = (tp.topic, str(tp.partition))
            CONSUMER_LAG.labels(*labels).set(max(0, end - done))
            seen.add(labels)
        return seen
