"""The one small interface every notification channel implements: render → send → judge.

A channel turns one stored notification (the alert payload the outbox recorded) into the vendor's
request, sends it, and judges the vendor's answer into an ``AttemptOutcome``. Judging reads the
vendor's body (``errcode``, ``code``, ``Code``), never the HTTP status alone: DingTalk, WeCom and
Feishu answer HTTP 200 to a message they refused.

HTTP channels implement two pure methods (``render`` and ``judge``) and inherit ``send``; a channel
that is not HTTP (email) implements ``send`` itself. Rendering happens at send time, not when the
delivery is recorded, because signatures carry a timestamp the vendor checks (DingTalk: an hour).
"""

from __future__ import annotations

import asyncio
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

import httpx

from alerts.statuses import AttemptOutcome
from alerts.webhooks.attempt import USER_AGENT, AttemptResult
from alerts.webhooks.ssrf import UnsafeURLError

# Who reads what a channel delivers: a group chat (never an elder's full name, address or water use),
# one person (as much as their role may see), or a machine (the whole documented payload).
Audience = Literal["group", "person", "machine"]


@dataclass(frozen=True)
class ActionLink:
    """A signed one-tap link for one recipient, one alert, one action (e.g. acknowledge)."""

    action: str  # "acknowledge", "resolve"
    url: str
    label_zh: str
    label_en: str


@dataclass(frozen=True)
class Notification:
    """What one delivery says: the stored payload (``{"type", "timestamp", "data"}``), who it is for,
    and the action links their role allows."""

    message_id: str  # the delivery id: the webhook-id, the SMS OutId / SessionContext, …
    payload: Mapping[str, Any]
    recipient_role: str
    actions: tuple[ActionLink, ...] = ()
    language: str = "zh-CN"

    @property
    def event_type(self) -> str:
        return str(self.payload.get("type", ""))

    @property
    def data(self) -> Mapping[str, Any]:
        data = self.payload.get("data")
        return data if isinstance(data, Mapping) else {}


@dataclass(frozen=True)
class OutgoingRequest:
    """An HTTP request, fully rendered and signed, ready to send."""

    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"


@dataclass(frozen=True)
class Verdict:
    """What the vendor's answer means for the delivery."""

    outcome: AttemptOutcome
    error: str | None = None  # one line, no secret in it
    retry_after_s: float | None = None


class Channel(ABC):
    """A configured destination of one type (one robot, one phone number, one mailbox)."""

    type: ClassVar[str]
    audience: ClassVar[Audience]

    @abstractmethod
    async def send(
        self, client: httpx.AsyncClient, notification: Notification, *, now: datetime, timeout_s: float
    ) -> AttemptResult:
        """Send once; never raises for what the network or the vendor does (every failure is a result)."""

    def redact(self, text: str) -> str:
        """``text`` with this channel's credentials removed (for errors that are stored and logged)."""
        return text


MAX_ANSWER_BYTES = 64 * 1024  # vendors answer a few hundred bytes; anything longer is not their answer


class HttpChannel(Channel):
    """A channel that is one HTTP request: subclasses render it and judge the answer (both pure)."""

    @abstractmethod
    def render(self, notification: Notification, *, now: datetime) -> OutgoingRequest:
        """The vendor's request for this notification, signed for ``now``."""

    @abstractmethod
    def judge(self, status: int, body: bytes) -> Verdict:
        """What the vendor's answer means. Only the vendor's success code in the body is success."""

    async def send(
        self, client: httpx.AsyncClient, notification: Notification, *, now: datetime, timeout_s: float
    ) -> AttemptResult:
        started = time.perf_counter()

        def result(verdict: Verdict, status: int | None) -> AttemptResult:
            error = None if verdict.error is None else self.redact(" ".join(verdict.error.split()))[:300]
            return AttemptResult(verdict.outcome, status, error, time.perf_counter() - started, verdict.retry_after_s)

        request = self.render(notification, now=now)
        try:
            async with asyncio.timeout(timeout_s):
                response = await client.request(
                    request.method,
                    request.url,
                    content=request.body,
                    headers={"user-agent": USER_AGENT, **request.headers},
                    timeout=timeout_s,
                    follow_redirects=False,
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            return result(
                Verdict(AttemptOutcome.RETRY, f"timeout: no answer within {timeout_s:g} s ({_name(exc)})"), None
            )
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            return result(Verdict(AttemptOutcome.REJECT, f"invalid URL: {exc}"), None)
        except UnsafeURLError as exc:  # the client's SSRF guard refused the host's addresses
            return result(Verdict(AttemptOutcome.REJECT, str(exc)), None)
        except (httpx.TransportError, OSError) as exc:
            return result(Verdict(AttemptOutcome.RETRY, f"network error: {_name(exc)}"), None)
        return result(self.judge(response.status_code, response.content[:MAX_ANSWER_BYTES]), response.status_code)


def _name(exc: BaseException) -> str:
    # httpx often raises with an empty message (a reset connection is just "ReadError").
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def vendor_answer(body: bytes) -> dict[str, Any] | None:
    """The vendor's JSON answer, or None when it is not a JSON object (an HTML error page, garbage)."""
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return answer if isinstance(answer, dict) else None


def http_failure(status: int, body: bytes) -> Verdict:
    """A verdict for an answer that is not the vendor's JSON: 5xx, 429 and gateway pages are worth a retry,
    other 4xx are not (a wrong URL stays wrong)."""
    snippet = body[:200].decode("utf-8", "replace").strip()
    error = f"HTTP {status}" + (f": {snippet}" if snippet else "")
    if status >= 500 or status in {408, 425, 429}:
        return Verdict(AttemptOutcome.RETRY, error)
    if 200 <= status < 300:
        return Verdict(AttemptOutcome.RETRY, f"{error} (not the vendor's answer)")
    return Verdict(AttemptOutcome.REJECT, error)
