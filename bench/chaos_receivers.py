"""The fault run's webhook receivers (bench/chaos.py): loopback HTTP servers that record every POST with
its ``webhook-id``, verify its Standard Webhooks signature with the recipient's secret, and can be told to
answer 503 for a while or to hold requests open (so that a router can be killed while it sends).

A recipient's URL is ``http://127.0.0.1:<port>/hook/<recipient>``: the path names whose secret signs it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass(frozen=True)
class Post:
    """One POST as a receiver saw it, and what it answered."""

    recipient: str
    webhook_id: str
    type: str
    alert_id: str | None
    status: int
    received: float  # time.monotonic()
    signed: bool  # the signature verified with the recipient's secret


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a router killed mid-request hangs up: expected here


class Receivers:
    """``count`` servers on 127.0.0.1; ``posts`` is every POST any of them got, in arrival order."""

    def __init__(self, count: int) -> None:
        self.posts: list[Post] = []
        self.secrets: dict[str, str] = {}  # recipient -> its whsec_ secret (set once enrolled)
        self._verifiers: dict[str, Webhook] = {}
        self._lock = threading.Lock()
        self._failing_until = [0.0] * count  # answer 503 until then (time.monotonic())
        self._hold_s = [0.0] * count  # hold each request this long before answering
        self.in_flight: list[dict[int, str]] = [{} for _ in range(count)]  # client port -> recipient, being held
        self._servers = [self._server(index) for index in range(count)]
        self._threads = [
            threading.Thread(target=server.serve_forever, args=(0.1,), name=f"chaos-receiver-{i}", daemon=True)
            for i, server in enumerate(self._servers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def count(self) -> int:
        return len(self._servers)

    def port(self, index: int) -> int:
        return int(self._servers[index].server_address[1])

    def url(self, index: int, recipient: str) -> str:
        return f"http://127.0.0.1:{self.port(index)}/hook/{recipient}"

    def fail(self, index: int, seconds: float) -> None:
        """Answer every POST with 503 for ``seconds`` from now."""
        self._failing_until[index] = time.monotonic() + seconds

    def hold(self, index: int, seconds: float) -> None:
        """Hold each POST ``seconds`` before answering it (0: answer at once again)."""
        self._hold_s[index] = seconds

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def _verify(self, recipient: str, body: bytes, headers: dict[str, str]) -> bool:
        secret = self.secrets.get(recipient)
        if secret is None:
            return False
        verifier = self._verifiers.get(recipient) or self._verifiers.setdefault(recipient, Webhook(secret))
        try:
            verifier.verify(body, headers)
        except WebhookVerificationError:
            return False
        return True

    def _record(self, index: int, handler: BaseHTTPRequestHandler, body: bytes) -> int:
        recipient = handler.path.rsplit("/", 1)[-1]
        headers = {name.lower(): value for name, value in handler.headers.items()}
        status = 503 if time.monotonic() < self._failing_until[index] else 200
        try:
            payload = json.loads(body)
            kind, alert_id = str(payload.get("type")), payload.get("data", {}).get("alert_id")
        except (ValueError, AttributeError):
            kind, alert_id = "unreadable", None
        post = Post(
            recipient,
            headers.get("webhook-id", ""),
            kind,
            alert_id,
            status,
            time.monotonic(),
            self._verify(recipient, body, headers),
        )
        with self._lock:
            self.posts.append(post)
        return status

    def _server(self, index: int) -> _Server:
        receivers = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the sender went away mid-request (a router killed mid-send): no POST
                    self.close_connection = True
                    return
                status = receivers._record(index, self, body)
                held = receivers._hold_s[index]
                if held:
                    port = int(self.client_address[1])
                    receivers.in_flight[index][port] = self.path
                    time.sleep(held)
                    receivers.in_flight[index].pop(port, None)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return _Server(("127.0.0.1", 0), Handler)
