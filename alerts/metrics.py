"""Prometheus metrics of the alert path (router, dispatcher, lifecycle)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from alerts.statuses import AttemptOutcome

ALERT_EVENTS = Counter(
    "shouwang_router_alert_events_total",
    "Alert events consumed, by what became of them.",
    ["kind", "severity", "event", "result"],
)
NOTIFICATIONS = Counter(
    "shouwang_router_notifications_total", "Notifications recorded, per recipient.", ["event_type", "role"]
)
DELIVERIES = Counter("shouwang_webhook_deliveries_total", "Webhook delivery attempts by outcome.", ["outcome"])
DELIVERY_RETRIES = Counter("shouwang_webhook_retries_total", "Webhook attempts scheduled again after a failure.")
DELIVERIES_DEAD = Counter(
    "shouwang_webhook_dead_letters_total",
    "Deliveries given up (schedule exhausted, rejected, endpoint gone, consent withdrawn before sending).",
    ["reason"],
)
DELIVERY_LATENCY = Histogram(
    "shouwang_webhook_delivery_latency_seconds",
    "From recording a notification to its delivery.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 86400),
)
ESCALATIONS = Counter("shouwang_alert_escalations_total", "Alerts escalated to a further tier.", ["severity", "tier"])
TIME_TO_ACK = Histogram(
    "shouwang_alert_time_to_acknowledge_seconds",
    "From an alert's raise to its acknowledgement.",
    ["kind"],
    buckets=(60, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400),
)
OPEN_ALERTS = Gauge("shouwang_alerts_open", "Alerts raised and not yet resolved.", ["kind", "severity", "status"])
METERS_ENROLLED = Gauge(
    "shouwang_meters_enrolled", "Meters enrolled in the store (compare with shouwang_worker_meters_reporting)."
)
PENDING_DELIVERIES = Gauge("shouwang_webhook_pending_deliveries", "Deliveries waiting in the outbox.")
ENDPOINTS_FAILING = Gauge(
    "shouwang_router_endpoints_failing",
    "Channels whose vendor refused a delivery for good (wrong secret, unknown key) and has not accepted one since.",
    ["type"],
)

# Known label values start at 0, so that rate() and increase() see the very first event too.
DELIVERY_OUTCOMES = tuple(AttemptOutcome)
DEAD_LETTER_REASONS = ("retries_exhausted", "rejected", "endpoint_gone", "consent")
for _outcome in DELIVERY_OUTCOMES:
    DELIVERIES.labels(_outcome)
for _reason in DEAD_LETTER_REASONS:
    DELIVERIES_DEAD.labels(_reason)
