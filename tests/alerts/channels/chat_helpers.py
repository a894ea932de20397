"""What the chat, app and email channel tests share: a notification as the outbox builds it, and one send."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alerts.channels.base import ActionLink, Channel, Notification
from alerts.channels.templates import Templates
from alerts.webhooks.attempt import AttemptResult, make_client
from tests.alerts.conftest import LOOPBACK

NAME, ADDRESS = "王阿姨", "莲花路 12 号 3 栋 501"
EXPLANATION = "平时 07:20 前会用水；昨晚 21:00 起至今未用水（12 小时）"
SERIES = [0.0, 0.0, 0.3, 0.0]  # facts.usage_hourly_l: water use by the hour, never for a group
ACK = ActionLink("acknowledge", "https://sw.example/a/ack-TOKEN1", "确认收到", "Acknowledge")
RESOLVE = ActionLink("resolve", "https://sw.example/a/res-TOKEN2", "已处理", "Resolve")


def payload(event_type: str = "alert.raised", *, explanation: str = EXPLANATION, **data: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "alert_id": "al-1",
        "status": "resolved" if event_type == "alert.resolved" else "raised",
        "kind": "no_usage",
        "severity": "high",
        "since": "2026-03-01T13:00:00+00:00",
        "at": "2026-03-02T01:00:00+00:00",
        "meter_id": "SZ-FT-0001",
        "grid_cell": "FT-12-3",
        "household": {"id": "hh-1", "name": NAME, "address": ADDRESS, "timezone": "Asia/Shanghai"},
        "explanation": {"zh": explanation, "en": "Usually uses water by 07:20; none since 21:00 (12 h)"},
        "facts": {"silence_h": 12, "usage_hourly_l": SERIES},
        "tier": 0,
        "acknowledge_url": "https://sw.example/v1/alerts/al-1/ack",
    }
    if event_type == "alert.resolved":
        body["resolution"] = {
            "outcome": "resident_fine",
            "by": "gw-1",
            "at": "2026-03-02T02:00:00+00:00",
            "note": "她在家",
        }
    body.update(data)
    if event_type == "endpoint.ping":
        body = {"endpoint_id": "ep-1"}
    return {"type": event_type, "timestamp": "2026-03-02T01:00:05+00:00", "data": body}


def notification(
    event_type: str = "alert.raised",
    *,
    actions: tuple[ActionLink, ...] = (ACK, RESOLVE),
    language: str = "zh-CN",
    message_id: str = "dl-1",
    **data: Any,
) -> Notification:
    return Notification(message_id, payload(event_type, **data), "grid_worker", actions=actions, language=language)


def digest(
    events: tuple[str, ...] = ("alert.raised", "alert.resolved"), *, count: int | None = None, language: str = "zh-CN"
) -> Notification:
    """Several notifications in one message, as the outbox sends them to a busy endpoint."""
    items = [{"type": event, **payload(event)["data"]} for event in events]
    body = {
        "type": "alert.digest",
        "timestamp": "2026-03-02T01:00:05+00:00",
        "data": {"count": count or len(items), "items": items},
    }
    return Notification("dig_dl-1", body, "grid_worker", language=language)


def send(channel: Channel, note: Notification, *, now: datetime | None = None, timeout_s: float = 5.0) -> AttemptResult:
    async def main() -> AttemptResult:
        async with make_client(allow=LOOPBACK, timeout_s=timeout_s) as client:
            return await channel.send(client, note, now=now or datetime.now(UTC), timeout_s=timeout_s)

    return asyncio.run(main())


def send_times(channel: Channel, note: Notification, times: int) -> list[AttemptResult]:
    """``note`` sent ``times`` times one after the other, over one client (fast enough for rate limits)."""

    async def main() -> list[AttemptResult]:
        async with make_client(allow=LOOPBACK) as client:
            return [await channel.send(client, note, now=datetime.now(UTC), timeout_s=5.0) for _ in range(times)]

    return asyncio.run(main())


def long_templates(folder: Path, channel_type: str, *, repeat: int = 3000) -> Templates:
    """An operator's override that writes a very long body (then the links), for the size limits."""
    (folder / f"{channel_type}.zh-CN.j2").write_text(
        "{% block title %}长消息{% endblock %}{% block body %}**{{ advice }}**\n\n"
        + "{{ '很长的说明。' * "
        + str(repeat)
        + " }}\n\n{% for link in actions %}[{{ link.label }}]({{ link.url }})\n{% endfor %}{% endblock %}",
        encoding="utf-8",
    )
    return Templates(folder)
