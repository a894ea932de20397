"""Prometheus metrics of the API."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "shouwang_api_requests_total", "HTTP requests by route and status class.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "shouwang_api_request_duration_seconds",
    "HTTP request latency.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
READINGS_INGESTED = Counter("shouwang_api_readings_ingested_total", "Readings accepted and acknowledged by Kafka.")
READINGS_REJECTED = Counter("shouwang_api_readings_rejected_total", "Readings refused by validation.")
