"""The HTTP server under every chat-vendor fake (DingTalk, WeCom, Feishu): 127.0.0.1, a free port, a thread.

A subclass implements ``answer`` for one parsed request. The server adds what every fake needs: modes
(``ok``; ``garbage``: an HTML gateway page instead of the vendor's JSON; ``hang``: no answer until the
client gives up), the messages accepted (parsed), the codes refused, a clock that tests can move forward
(timestamp windows, throttling) and per-robot rate windows.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

Mode = Literal["ok", "garbage", "hang"]
GARBAGE = b"<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>"
Answer = tuple[int, Mapping[str, Any]]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]  # decoded once, as a server decodes it
    raw_query: str  # as sent: a double-encoded signature shows here as %252B
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    def param(self, name: str) -> str | None:
        """The query parameter ``name`` when it is there exactly once."""
        values = self.query.get(name, [])
        return values[0] if len(values) == 1 else None

    def json(self) -> Any:
        """The body as JSON, or None when it is not (the vendors answer a parse error, not a crash)."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None


@dataclass(frozen=True)
class Received:
    """A message the fake accepted."""

    robot: str  # the robot's token or key, or the application's agent id
    message: Mapping[str, Any]  # the parsed JSON body
    request: Request
    at: float = field(default=0.0)  # the fake's clock


class FakeVendor:
    """Subclasses implement ``answer``; everything else is shared."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.mode: Mode = "ok"
        self.garbage_status = 200  # a gateway page served with 200 is the nastiest case: not a success
        self.hang_s = 30.0  # how long "hang" holds a request (the fake's stop ends it sooner)
        self.messages: list[Received] = []
        self.refusals: list[int] = []  # every error code answered, in order
        self.requests = 0  # every request that reached the fake, answered or not
        self._clock = clock
        self._offset = 0.0
        self._sent_at: dict[str, list[float]] = {}  # robot → accepted send times
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock (rate windows and timestamp checks) without sleeping."""
        with self._lock:
            self._offset += seconds

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, no trailing slash."""
        if self._server is None:
            raise RuntimeError("the fake is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[Received]:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.messages) >= count, timeout=timeout_s):
                raise TimeoutError(f"the fake accepted {len(self.messages)} messages, expected {count}")
            return list(self.messages)

    def answer(self, request: Request) -> Answer:
        raise NotImplementedError

    def accept(self, robot: str, message: Mapping[str, Any], request: Request) -> None:
        with self._lock:
            now = self.now()
            self.messages.append(Received(robot, message, request, now))
            self._sent_at.setdefault(robot, []).append(now)
            self._lock.notify_all()

    def refuse(self, code: int) -> None:
        with self._lock:
            self.refusals.append(code)

    def sent_within(self, robot: str, window_s: float) -> int:
        """How many messages ``robot`` had accepted in the last ``window_s`` seconds of the fake's clock."""
        now = self.now()
        with self._lock:
            return sum(1 for at in self._sent_at.get(robot, ()) if now - at < window_s)

    def start(self, port: int = 0) -> None:
        """Serve on 127.0.0.1:``port`` (0: a free one) in a background thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with fake._lock:
                    fake.requests += 1
                if fake.mode == "hang":
                    fake._stopping.wait(fake.hang_s)  # until the client gives up or the fake stops
                    return
                if fake.mode == "garbage":
                    self._write(fake.garbage_status, GARBAGE, "text/html")
                    return
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    raw_query=parts.query,
                    headers={key.lower(): value for key, value in self.headers.items()},
                    body=body,
                )
                status, answer = fake.answer(request)
                self._write(status, json.dumps(answer, ensure_ascii=False).encode(), "application/json")

            def _write(self, status: int, payload: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("content-type", f"{content_type}; charset=utf-8")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet tests

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that time out and hang up are expected here

        self._server = Server(("127.0.0.1", port), Handler)
        server = self._server
        # A short poll interval: stop() waits for one, and tests start and stop fakes often.
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.02), name=type(self).__name__, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def is_json_request(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


def utf8_len(text: object) -> int:
    return len(str(text).encode("utf-8"))
