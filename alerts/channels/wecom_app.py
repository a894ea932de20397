"""WeCom application messages: one person (or a few named people) rather than a group.

Two calls: ``GET /cgi-bin/gettoken?corpid=…&corpsecret=…`` gives an ``access_token`` valid for
``expires_in`` seconds (7200), then ``POST /cgi-bin/message/send?access_token=…`` sends. The token is
shared by every channel of the same application, so it is cached per API base, corp and secret, and
fetched again a few minutes before it expires (WeCom limits how often ``gettoken`` may be called). A
token WeCom no longer accepts (40014 invalid, 42001 expired: another process fetched a new one, or the
secret was reset) is dropped, fetched again and the message sent once more, within the same attempt.

The audience is a person: the name and address may appear (``alerts/channels/templates.py``). ``@all``
is refused at registration (``alerts/channels/validation.py``): an elder's alert is never broadcast to a
whole company.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlencode

import httpx

from alerts.channels.base import (
    MAX_ANSWER_BYTES,
    Audience,
    Channel,
    Notification,
    Verdict,
    http_failure,
    vendor_answer,
)
from alerts.channels.limits import dump, shorten
from alerts.channels.robots import JSON_HEADERS, MAX_TITLE_CHARS, answer_code, redact_secrets
from alerts.channels.templates import Templates, default_templates
from alerts.channels.types import ChannelType
from alerts.statuses import AttemptOutcome
from alerts.webhooks.attempt import USER_AGENT, AttemptResult
from alerts.webhooks.ssrf import UnsafeURLError

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"
TOKEN_ERRORS = frozenset({40014, 42001})  # invalid / expired access_token: fetch a new one, send once more
# Our configuration, not this message: invalid corp id (40013) or secret (40001, 40091), agent (40056),
# empty or oversize content (44004, 40058), API not allowed (48002), no privilege (60011), IP not on the
# application's trusted list (60020), every recipient invalid (81013, 82001).
PERMANENT = frozenset({40001, 40013, 40091, 40056, 44004, 40058, 48002, 60011, 60020, 81013, 82001})
RATE_LIMITED_FOR_S = 60.0

TokenKey = tuple[str, str, str]


class TokenCache:
    """Access tokens per (API base, corp id, digest of the secret), each until ``margin_s`` before it
    expires. Shared by every channel of an application; use from one event loop at a time."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, margin_s: float = 300.0) -> None:
        self.clock = clock
        self.margin_s = margin_s
        self._tokens: dict[TokenKey, tuple[str, float]] = {}
        self._locks: dict[TokenKey, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = {}

    @staticmethod
    def key(api_base: str, corp_id: str, corp_secret: str) -> TokenKey:
        # The secret itself is not kept as a key: a digest tells secrets apart without holding a second copy.
        return (api_base, corp_id, hashlib.sha256(corp_secret.encode()).hexdigest())

    def get(self, key: TokenKey) -> str | None:
        entry = self._tokens.get(key)
        if entry is None or self.clock() >= entry[1]:
            return None
        return entry[0]

    def put(self, key: TokenKey, token: str, expires_in_s: float) -> None:
        # Refresh before expiry, but never keep a token for less than half its life (a short expires_in).
        margin = min(self.margin_s, expires_in_s / 2)
        self._tokens[key] = (token, self.clock() + expires_in_s - margin)

    def drop(self, key: TokenKey, token: str) -> None:
        """Forget ``token`` unless another sender has already replaced it."""
        if self._tokens.get(key, ("",))[0] == token:
            del self._tokens[key]

    def lock(self, key: TokenKey) -> asyncio.Lock:
        """One fetch per application at a time: concurrent sends wait for the token the first one gets."""
        loop = asyncio.get_running_loop()
        entry = self._locks.get(key)
        if entry is None or entry[0] is not loop:  # an asyncio.Lock belongs to the loop it was first used on
            entry = self._locks[key] = (loop, asyncio.Lock())
        return entry[1]


DEFAULT_TOKEN_CACHE = TokenCache()


class WeComApp(Channel):
    """A WeCom application message to named members (``user_ids``), markdown or plain text (≤ 2048 bytes)."""

    type: ClassVar[str] = ChannelType.WECOM_APP
    audience: ClassVar[Audience] = "person"
    MAX_CONTENT_BYTES: ClassVar[int] = 2048

    def __init__(
        self,
        *,
        corp_id: str,
        corp_secret: str,
        agent_id: int,
        user_ids: Sequence[str],
        api_base: str = DEFAULT_API_BASE,
        msgtype: Literal["markdown", "text"] = "markdown",
        templates: Templates | None = None,
        token_cache: TokenCache | None = None,
    ) -> None:
        if not user_ids:
            raise ValueError("user_ids must name at least one member")
        self.corp_id, self.corp_secret, self.agent_id = corp_id, corp_secret, agent_id
        self.user_ids = tuple(user_ids)
        self.api_base = api_base.rstrip("/")
        self.msgtype = msgtype
        self.templates = templates or default_templates()
        self.tokens = token_cache or DEFAULT_TOKEN_CACHE
        self._key = TokenCache.key(self.api_base, corp_id, corp_secret)
        self._seen: list[str] = []  # tokens this channel used, to redact from errors

    def render(self, notification: Notification) -> bytes:
        """The ``message/send`` body (the access token goes in the URL)."""
        rendered = self.templates.render(
            notification, channel_type=self.type, family=self.msgtype, audience=self.audience, buttons=False
        )
        title = rendered.title[:MAX_TITLE_CHARS]
        head = f"**{title}**\n\n" if self.msgtype == "markdown" else f"{title}\n\n"
        body: dict[str, Any] = {
            "touser": "|".join(self.user_ids),
            "msgtype": self.msgtype,
            "agentid": self.agent_id,
            self.msgtype: {"content": shorten(head + rendered.body, self.MAX_CONTENT_BYTES)},
            # A resend of the same bytes (a lease that lapsed mid-send) is dropped by WeCom within 30 minutes.
            "enable_duplicate_check": 1,
            "duplicate_check_interval": 1800,
        }
        return dump(body)

    def judge(self, status: int, body: bytes) -> Verdict:
        """What a ``message/send`` or ``gettoken`` answer means (a token error is handled by ``send``)."""
        answer = vendor_answer(body)
        code = None if answer is None else answer_code(answer, "errcode")
        if answer is None or code is None:
            return http_failure(status, body)
        error = f"WeCom errcode {code}: {answer.get('errmsg') or ''}".rstrip(": ")
        if code == 0:
            invalid = [
                str(answer.get(name)) for name in ("invaliduser", "invalidparty", "invalidtag") if answer.get(name)
            ]
            # Delivered to the others; the note tells an operator which member ids are wrong.
            return Verdict(AttemptOutcome.DELIVERED, f"not delivered to {', '.join(invalid)}" if invalid else None)
        if code == 45009:
            return Verdict(AttemptOutcome.RETRY, error + " (rate limited)", RATE_LIMITED_FOR_S)
        if code in PERMANENT:
            return Verdict(AttemptOutcome.REJECT, error)
        return Verdict(AttemptOutcome.RETRY, error)

    async def send(
        self, client: httpx.AsyncClient, notification: Notification, *, now: datetime, timeout_s: float
    ) -> AttemptResult:
        started = time.perf_counter()
        body = self.render(notification)  # before any request: a template error costs no token
        status: int | None = None
        try:
            async with asyncio.timeout(timeout_s):  # both calls (and a refresh) within one attempt's time
                verdict, status = await self._send(client, body, timeout_s)
        except (TimeoutError, httpx.TimeoutException) as exc:
            verdict = Verdict(AttemptOutcome.RETRY, f"timeout: no answer within {timeout_s:g} s ({_name(exc)})")
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            verdict = Verdict(AttemptOutcome.REJECT, f"invalid URL: {exc}")
        except UnsafeURLError as exc:  # the client's SSRF guard refused the host's addresses
            verdict = Verdict(AttemptOutcome.REJECT, str(exc))
        except (httpx.TransportError, OSError) as exc:
            verdict = Verdict(AttemptOutcome.RETRY, f"network error: {_name(exc)}")
        error = None if verdict.error is None else self.redact(" ".join(verdict.error.split()))[:300]
        return AttemptResult(verdict.outcome, status, error, time.perf_counter() - started, verdict.retry_after_s)

    async def _send(self, client: httpx.AsyncClient, body: bytes, timeout_s: float) -> tuple[Verdict, int | None]:
        for attempt in range(2):
            token, status = await self._token(client, timeout_s)
            if isinstance(token, Verdict):
                return token, status
            url = f"{self.api_base}/cgi-bin/message/send?{urlencode({'access_token': token})}"
            response = await self._request(client, "POST", url, timeout_s, content=body)
            content = response.content[:MAX_ANSWER_BYTES]
            answer = vendor_answer(content)
            if attempt == 0 and answer is not None and answer_code(answer, "errcode") in TOKEN_ERRORS:
                self.tokens.drop(self._key, token)
                continue
            return self.judge(response.status_code, content), response.status_code
        raise AssertionError("unreachable: the second pass always returns")

    async def _token(self, client: httpx.AsyncClient, timeout_s: float) -> tuple[str | Verdict, int | None]:
        """A valid access token (cached, or fetched now), or the verdict of a ``gettoken`` that failed."""
        async with self.tokens.lock(self._key):
            token = self.tokens.get(self._key)
            if token is not None:
                return token, None
            query = urlencode({"corpid": self.corp_id, "corpsecret": self.corp_secret})
            response = await self._request(client, "GET", f"{self.api_base}/cgi-bin/gettoken?{query}", timeout_s)
            content = response.content[:MAX_ANSWER_BYTES]
            answer = vendor_answer(content) or {}
            token, expires_in = answer.get("access_token"), answer_code(answer, "expires_in")
            if answer_code(answer, "errcode") not in (0, None) or not isinstance(token, str) or not token:
                verdict = self.judge(response.status_code, content)
                if verdict.outcome == AttemptOutcome.DELIVERED:  # errcode 0 without a token is not WeCom's answer
                    verdict = Verdict(AttemptOutcome.RETRY, "answered without an access_token")
                return Verdict(
                    verdict.outcome, f"gettoken: {verdict.error}", verdict.retry_after_s
                ), response.status_code
            self.tokens.put(self._key, token, float(expires_in or 7200))
            self._seen = [*self._seen[-3:], token]
            return token, response.status_code

    async def _request(
        self, client: httpx.AsyncClient, method: str, url: str, timeout_s: float, content: bytes | None = None
    ) -> httpx.Response:
        headers = {"user-agent": USER_AGENT, **(JSON_HEADERS if content is not None else {})}
        return await client.request(
            method, url, content=content, headers=headers, timeout=timeout_s, follow_redirects=False
        )

    def redact(self, text: str) -> str:
        return redact_secrets(text, self.corp_secret, *self._seen, self.tokens.get(self._key))


def _name(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
