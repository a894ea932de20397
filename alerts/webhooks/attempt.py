"""One webhook HTTP attempt, classified into what the outbox should do next.

``send_once`` never raises for anything the network or the receiver does: every failure becomes an
``AttemptResult`` so the dispatcher can persist it and schedule the next attempt. It only raises
ValueError for *our* bad inputs (malformed secret or message id, naive ``now``, non-UTF-8 body), which
retrying cannot fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import cast

import httpx

from alerts.statuses import AttemptOutcome
from alerts.webhooks.pinned import GuardedTransport
from alerts.webhooks.signing import SECRET_PREFIX, sign_headers
from alerts.webhooks.ssrf import Resolver, UnsafeURLError

USER_AGENT = "Shouwang-Webhooks/1"
MAX_RETRY_AFTER_S = 86400.0
_RETRY_STATUSES = frozenset({408, 425, 429})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_SNIPPET_BYTES = 200
_SNIPPET_WAIT_S = 1.0
_ERROR_CHARS = 300


@dataclass(frozen=True)
class AttemptResult:
    """``delivered``: done. ``retry``: transient, try again per the schedule (or ``retry_after_s`` if set).
    ``disable``: the receiver said 410 Gone, stop sending to the endpoint. ``reject``: the receiver (or the
    URL) refuses this request and retrying the same bytes will not help; dead-letter it."""

    outcome: AttemptOutcome
    status_code: int | None
    error: str | None
    duration_s: float
    retry_after_s: float | None = None


def classify_status(status: int) -> AttemptOutcome:
    if 200 <= status < 300:
        return AttemptOutcome.DELIVERED
    if status == 410:
        return AttemptOutcome.DISABLE
    if status in _RETRY_STATUSES or 500 <= status < 600:
        return AttemptOutcome.RETRY
    # 3xx: a redirect could point anywhere, including past the SSRF guard, so it is never followed.
    return AttemptOutcome.REJECT


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """``Retry-After`` (delta-seconds or HTTP-date) as seconds from ``now``, clamped to [0, 24 h]."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+", value):
        return float(min(int(value), int(MAX_RETRY_AFTER_S)))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER_S)


async def send_once(
    client: httpx.AsyncClient,
    *,
    url: str,
    secret: str,
    message_id: str,
    body: bytes,
    now: datetime,
    timeout_s: float = 10.0,
    also_signed_by: Sequence[str] = (),
) -> AttemptResult:
    """POST ``body`` to ``url`` once, signed for time ``now``, within ``timeout_s`` overall.

    The SSRF guard is the client's (``make_client``): a host it refuses is a ``reject`` with its reason.
    ``also_signed_by``: more secrets to sign with (the previous one during a rotation's overlap).
    """
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **sign_headers(secret=secret, message_id=message_id, timestamp=now, body=body, also_signed_by=also_signed_by),
    }
    started = time.perf_counter()

    def failed(outcome: AttemptOutcome, error: str) -> AttemptResult:
        return AttemptResult(outcome, None, _one_line(error, secret, *also_signed_by), time.perf_counter() - started)

    try:
        # httpx's timeout bounds each phase (connect, each read...); the outer one bounds the whole attempt,
        # so a receiver trickling bytes cannot hold a worker forever.
        async with asyncio.timeout(timeout_s):
            request = client.build_request("POST", url, content=body, headers=headers, timeout=timeout_s)
            response = await client.send(request, stream=True, follow_redirects=False)
    except (TimeoutError, httpx.TimeoutException) as exc:
        return failed(AttemptOutcome.RETRY, f"timeout: no response within {timeout_s:g} s ({type(exc).__name__})")
    except httpx.ConnectError as exc:
        return failed(AttemptOutcome.RETRY, f"connection error: {_describe_exc(exc)}")
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        return failed(AttemptOutcome.REJECT, f"invalid webhook URL: {exc}")
    except UnsafeURLError as exc:  # the guard refused the host's addresses: no retry makes them safe
        return failed(AttemptOutcome.REJECT, str(exc))
    except httpx.TransportError as exc:
        return failed(AttemptOutcome.RETRY, f"transport error: {_describe_exc(exc)}")
    except OSError as exc:
        return failed(AttemptOutcome.RETRY, f"network error: {_describe_exc(exc)}")

    try:
        status = response.status_code
        outcome = classify_status(status)
        error = None if outcome == AttemptOutcome.DELIVERED else await _describe(response)
    finally:
        await response.aclose()
    retry_after = None
    if status in _RETRY_AFTER_STATUSES:
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=now)
    return AttemptResult(
        outcome,
        status,
        None if error is None else _one_line(error, secret, *also_signed_by),
        time.perf_counter() - started,
        retry_after,
    )


async def _describe(response: httpx.Response) -> str:
    status = response.status_code
    if 300 <= status < 400:
        location = response.headers.get("location", "")
        return f"HTTP {status}: redirects are not followed" + (f" (Location: {location})" if location else "")
    buffer = bytearray()
    # The start of the receiver's error body helps the operator; the rest could be huge or never end.
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout(_SNIPPET_WAIT_S), contextlib.aclosing(_chunks(response)) as chunks:
            async for chunk in chunks:
                buffer += chunk
                if len(buffer) >= _SNIPPET_BYTES:
                    break
    snippet = bytes(buffer[:_SNIPPET_BYTES]).decode("utf-8", "replace").strip()
    phrase = response.reason_phrase or ""
    return f"HTTP {status} {phrase}".rstrip() + (f": {snippet}" if snippet else "")


def _describe_exc(exc: BaseException) -> str:
    # httpx often raises with an empty message (a reset connection is just "ReadError").
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _one_line(text: str, *secrets: str) -> str:
    text = " ".join(text.split())
    for secret in secrets:
        for sensitive in (secret, secret.removeprefix(SECRET_PREFIX)):
            if sensitive:
                text = text.replace(sensitive, "[redacted]")
    return text[:_ERROR_CHARS]


class EndpointLimiter:
    """At most ``limit`` concurrent attempts per endpoint, so one slow receiver ties up only its own
    slots, never the dispatcher's whole concurrency. Semaphores are created on first use and dropped when
    no task holds or awaits them, so the map stays as small as the set of busy endpoints. Use from one
    event loop."""

    def __init__(self, limit: int = 2) -> None:
        if limit < 1:
            raise ValueError(f"per-endpoint limit must be at least 1, got {limit}")
        self.limit = limit
        self._slots: dict[Hashable, tuple[asyncio.Semaphore, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def slot(self, endpoint: Hashable) -> AsyncIterator[None]:
        entry = self._slots.get(endpoint)
        if entry is None:
            entry = self._slots[endpoint] = (asyncio.Semaphore(self.limit), [0])
        semaphore, users = entry
        users[0] += 1
        try:
            async with semaphore:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0 and self._slots.get(endpoint) is entry:
                del self._slots[endpoint]


def make_client(
    *,
    allow: Sequence[str] = (),
    require_https: bool = True,
    resolve: Resolver | None = None,
    verify: ssl.SSLContext | bool = True,
    max_connections: int = 50,
    timeout_s: float = 10.0,
) -> httpx.AsyncClient:
    """The shared client of the dispatcher, the channels and pings: every request passes the SSRF guard
    (``allow``: SHOUWANG_WEBHOOK_ALLOW_HOSTS; ``require_https``) and connects only to the addresses that passed
    it (``alerts/webhooks/pinned.py``). ``trust_env=False``: an HTTP(S)_PROXY in the service's environment must
    not silently route (or MITM) webhook traffic; redirects are never followed. ``resolve`` and ``verify``
    (the CAs trusted) are for tests."""
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=min(20, max_connections), keepalive_expiry=30.0
    )
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        transport=GuardedTransport(
            allow=allow, require_https=require_https, resolve=resolve, verify=verify, limits=limits
        ),
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": USER_AGENT},
    )


def _chunks(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    # httpx declares aiter_bytes() an AsyncIterator; it is an async generator, which aclosing needs.
    return cast(AsyncGenerator[bytes, None], response.aiter_bytes())
