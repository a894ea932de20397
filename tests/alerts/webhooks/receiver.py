"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 in a background thread.

Tests of the sender and of the alert router use it instead of mocks, so what is verified is what goes over
a socket. Per-request behaviour is configurable while it runs::

    with Receiver() as receiver:
        receiver.respond_with([500, 200])        # first request 500, then 200 (the default) for the rest
        ... send to receiver.url ...
        receiver.wait_for(2)
        payload = receiver.verify_with(secret)   # standardwebhooks verification of the last request
"""

from __future__ import annotations

import ssl
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from standardwebhooks import Webhook


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    status: int  # what the receiver answered (or was about to, if the client gave up)
    received_at: float  # time.monotonic() when the request was read
    responded_at: float | None = field(default=None)  # time.monotonic() just before the response is written


class Receiver:
    """Context manager running the server; ``url`` accepts POSTs on any path."""

    def __init__(
        self,
        *,
        delay_s: float = 0.0,
        default_status: int = 200,
        port: int = 0,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.port = port  # 0: any free port; a fixed port lets a test take a receiver down and up
        self.host = host  # another loopback address (127.0.0.2) stands for a second machine
        self.tls = tls  # a server context: the receiver speaks https
        self.delay_s = delay_s  # sleep before answering each request (interrupted when the receiver stops)
        self.default_status = default_status
        self.response_headers: dict[str, str] = {}  # extra headers on every response, e.g. Retry-After
        self.response_body = b'{"ok": true}'
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0  # requests being answered now
        self.max_in_flight = 0  # the most at once, over the receiver's life
        self._statuses: deque[int] = deque()
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the receiver is not running")
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}/hook"

    def respond_with(self, statuses: Iterable[int], *, headers: Mapping[str, str] | None = None) -> Receiver:
        """Answer the next requests with ``statuses`` in order, then ``default_status``."""
        with self._lock:
            self._statuses = deque(statuses)
            if headers is not None:
                self.response_headers = dict(headers)
        return self

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests arrived; return them all."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.requests) >= count, timeout=timeout_s):
                raise TimeoutError(f"receiver got {len(self.requests)} requests, expected {count}")
            return list(self.requests)

    def verify_with(self, secret: str, request: RecordedRequest | None = None) -> Any:
        """Verify a request (the last by default) as a Standard Webhooks receiver would; return the parsed
        JSON body or raise ``standardwebhooks.webhooks.WebhookVerificationError``."""
        request = request or self.requests[-1]
        return Webhook(secret).verify(request.body, request.headers)

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                record = receiver._record(self, body)
                if receiver.delay_s:
                    receiver._stopping.wait(receiver.delay_s)
                record.responded_at = time.monotonic()
                with receiver._lock:
                    receiver.in_flight -= 1
                self.send_response(record.status)
                for name, value in receiver.response_headers.items():
                    self.send_header(name, value)
                named = {name.lower() for name in receiver.response_headers}
                if 300 <= record.status < 400 and "location" not in named:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(receiver.response_body)))
                self.end_headers()
                self.wfile.write(receiver.response_body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that time out and hang up are expected here

        self._server = Server((self.host, self.port), Handler)
        if self.tls is not None:  # the handshake happens as a connection is accepted
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        # A short poll interval: shutdown() waits up to one interval, and tests start many receivers.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="test-receiver", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _record(self, handler: BaseHTTPRequestHandler, body: bytes) -> RecordedRequest:
        with self._lock:
            status = self._statuses.popleft() if self._statuses else self.default_status
            record = RecordedRequest(
                method=handler.command,
                path=handler.path,
                headers={k.lower(): v for k, v in handler.headers.items()},
                body=body,
                status=status,
                received_at=time.monotonic(),
            )
            self.requests.append(record)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._lock.notify_all()
            return record
