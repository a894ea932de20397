"""Prometheus metrics of the detector worker (exposed at the worker's ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RECORDS_CONSUMED = Counter(
    "shouwang_worker_records_consumed_total",
    "Kafka records consumed from the readings topic (a batch upload is one record).")
READINGS_PROCESSED = Counter(
    "shouwang_worker_readings_processed_total",
    "Meter readings that passed validation and went through the detector bank.")
READINGS_REKEYED = Counter(
    "shouwang_worker_readings_rekeyed_total",
    "Records whose Kafka key was not their meter id.")
ALERTS_EMITTED = Counter(
    "shouwang_worker_alerts_emitted_total",
    "Alert events sent to the alerts topic.", ["kind", "severity", "event"])
DEAD_LETTERS = Counter(
    "shouwang_worker_dead_letters_total",
    "Records sent to the dead-letter topic.", ["source", "error_class"])
PROCESSING_SECONDS = Histogram(
    "shouwang_worker_record_processing_seconds",
    "Time to decode, validate and run the detectors on one record.",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1))
