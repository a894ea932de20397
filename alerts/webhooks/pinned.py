"""The outbound HTTP transport: every request is checked by the SSRF guard and connects only to the
addresses that passed the check.

Checking a host's addresses and then letting the HTTP client resolve the name again leaves a window: a DNS
answer that changes in between (rebinding: a public address for the check, 127.0.0.1 a moment later)
reaches internal services. Here the name is resolved once per request, by the guard, and the connection is
made to those addresses; the client never resolves it itself.

How: the transport checks the request's host (``check_host``), hands the checked addresses to the network
backend through a context variable (set for this request only, in its own task), and the backend's
``connect_tcp`` connects to them instead of to the name. Everything above the TCP connection is httpx and
httpcore as usual: TLS still sends the host name as SNI and verifies the certificate against the host name
(httpcore's ``start_tls`` gets the URL's host, not the address), and the Host header is the URL's.

A pooled keep-alive connection may be reused by a later request to the same host: it was opened to an
address that passed the check then, and the later request's own check must pass first too.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

import httpcore
import httpx

from alerts.webhooks.ssrf import Resolver, UnresolvedHostError, check_host, parse_allowlist


@dataclass(frozen=True)
class _Pin:
    host: str
    port: int
    addresses: tuple[str, ...]


# The addresses the current request's host passed the guard with. A context variable, because httpcore's
# backend is told only (host, port); each request runs in its caller's task, so concurrent requests never
# see each other's pins.
_PIN: ContextVar[_Pin | None] = ContextVar("shouwang_outbound_pin", default=None)


def _normal(host: str) -> str:
    return host.rstrip(".").lower()


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the addresses pinned for the host, in the order the guard returned them; refuses a
    connection nothing was pinned for (it would have to resolve the name itself)."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pin = _PIN.get()
        if pin is None or (pin.host, pin.port) != (_normal(host), port):
            raise httpcore.ConnectError(f"no address of {host}:{port} passed the SSRF guard for this request")
        failure: Exception | None = None
        for address in pin.addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # the host's next address may answer
        assert failure is not None  # the guard never returns an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not an outbound destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport (its request, response and error handling) over a connection pool whose backend
    connects only to checked addresses.

    Raises ``UnsafeURLError`` (a ValueError, never retried) for a host the guard refuses, and
    ``httpx.ConnectError`` (retried) for a host that does not resolve now.
    """

    def __init__(
        self,
        *,
        allow: Sequence[str],
        require_https: bool,
        resolve: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits,
    ) -> None:
        self._allow = parse_allowlist(allow)  # a typo in the allowlist fails now, not at the first alert
        self._require_https = require_https
        self._resolve = resolve
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        # httpx takes no network backend, so its pool is replaced by one with the same settings and ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinnedBackend(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        scheme = request.url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"scheme {scheme!r} is not allowed", request=request)
        host = _normal(request.url.raw_host.decode("ascii"))
        port = request.url.port or (443 if scheme == "https" else 80)
        try:
            # The default resolver blocks: off the event loop.
            addresses = await asyncio.to_thread(
                check_host,
                host,
                port,
                scheme=scheme,
                allow=self._allow,
                require_https=self._require_https,
                resolve=self._resolve,
            )
        except UnresolvedHostError as exc:
            raise httpx.ConnectError(str(exc), request=request) from None
        token = _PIN.set(_Pin(host, port, tuple(addresses)))
        try:
            return await super().handle_async_request(request)
        finally:
            _PIN.reset(token)
