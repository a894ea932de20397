"""Webhook delivery primitives: Standard Webhooks signing, the SSRF guard, the retry schedule and one
classified HTTP attempt. No persistence here; the outbox dispatcher composes these."""

from __future__ import annotations

from alerts.webhooks.attempt import (
    USER_AGENT,
    AttemptResult,
    EndpointLimiter,
    classify_status,
    make_client,
    parse_retry_after,
    send_once,
)
from alerts.webhooks.retry_schedule import STANDARD_SCHEDULE, next_delay, parse_schedule
from alerts.webhooks.signing import new_message_id, new_secret, secret_key, sign_headers
from alerts.webhooks.ssrf import UnsafeURLError, blocked_reason, check_url, parse_allowlist

__all__ = [
    "STANDARD_SCHEDULE",
    "USER_AGENT",
    "AttemptResult",
    "EndpointLimiter",
    "UnsafeURLError",
    "blocked_reason",
    "check_url",
    "classify_status",
    "make_client",
    "new_message_id",
    "new_secret",
    "next_delay",
    "parse_allowlist",
    "parse_retry_after",
    "parse_schedule",
    "secret_key",
    "send_once",
    "sign_headers",
]
