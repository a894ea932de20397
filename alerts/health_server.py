"""The router's HTTP port: ``/metrics`` exactly as prometheus_client serves it (its own WSGI app: the
same text, content negotiation and compression as before), ``/healthz`` and ``/readyz`` in the API's
shape (shouwang/health.py), 404 for any other path.

A threaded WSGI server in threads of its own, as prometheus_client's server was, not a page in the
router's asyncio loop: metrics and health must answer while that loop is blocked, and say so. So
``/readyz`` never waits on the loop without a bound: it reads what the loop last recorded (a heartbeat
per loop, ``Heartbeats``), asks the loop to run a call within a timeout (``loop_answers``), and asks the
database from a thread of its own (``OneAtATime``), with a timeout too."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import make_wsgi_app

from shouwang.health import OK, alive, readiness

log = logging.getLogger(__name__)

Checks = Callable[[], Mapping[str, str]]


class Heartbeats:
    """When each of the router's loops last went round, against a bound per loop. Written by the loop
    (``beat``), read by ``/readyz`` from a server thread: a float stored in a dict is read whole."""

    def __init__(self, bounds: Mapping[str, float], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.bounds = dict(bounds)
        self.clock = clock
        # Counted from now: a loop has its bound to go round the first time (its consumer to connect).
        started = clock()
        self._beats = {name: started for name in bounds}

    def beat(self, name: str) -> None:
        self._beats[name] = self.clock()

    def checks(self) -> dict[str, str]:
        """Per loop, ``"ok"`` or how long since it last went round, beyond its bound."""
        now = self.clock()
        checks = {}
        for name, bound in self.bounds.items():
            idle = now - self._beats[name]
            checks[f"loop {name}"] = OK if idle <= bound else f"no pass for {idle:.0f} s (bound {bound:.0f} s)"
        return checks


class OneAtATime:
    """A blocking check (a database round trip) run in a thread of its own, answered within ``timeout_s``.
    A check that does not answer is not started again while it runs: the probes that follow wait on the
    same one, so a hung database holds one thread and one connection, not one per probe. The thread is a
    daemon: a check hung on a database that never answers does not hold the process at its exit."""

    def __init__(self, check: Callable[[], object], *, timeout_s: float, name: str) -> None:
        self._check = check
        self.timeout_s = timeout_s
        self.name = name
        self._running: concurrent.futures.Future[object] | None = None
        self._lock = threading.Lock()

    def _start(self) -> concurrent.futures.Future[object]:
        future: concurrent.futures.Future[object] = concurrent.futures.Future()

        def run() -> None:
            future.set_running_or_notify_cancel()
            try:
                future.set_result(self._check())
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the check
                future.set_exception(exc)

        threading.Thread(target=run, name=self.name, daemon=True).start()
        return future

    def begin(self) -> Callable[[], str]:
        """Start the check now (or join the one running); the function returned waits for its answer, at
        most ``timeout_s`` from now, so other checks can run meanwhile. ``"ok"``, or why not."""
        deadline = time.monotonic() + self.timeout_s
        with self._lock:
            if self._running is None or self._running.done():
                self._running = self._start()
            running = self._running

        def answer() -> str:
            try:
                running.result(timeout=max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                return f"no answer within {self.timeout_s:g} s"
            except Exception as exc:  # noqa: BLE001 - the check's state; the class only (no URLs, no secrets)
                return f"unreachable ({type(exc).__name__})"
            return OK

        return answer

    def __call__(self) -> str:
        return self.begin()()


def loop_answers(loop: asyncio.AbstractEventLoop, timeout_s: float) -> str:
    """Whether ``loop`` runs a call given to it within ``timeout_s``: ``"ok"``, or why not."""
    if loop.is_closed():
        return "closed"
    ran = threading.Event()
    loop.call_soon_threadsafe(ran.set)
    return OK if ran.wait(timeout_s) else f"blocked: ran no call within {timeout_s:g} s"


def on_loop(loop: asyncio.AbstractEventLoop, check: Callable[[], Coroutine[Any, Any, str]], timeout_s: float) -> str:
    """Run the coroutine ``check()`` makes on ``loop``, at most ``timeout_s``: its answer (``"ok"`` or why
    not), or why it gave none. (``loop_answers`` first tells a blocked loop from a slow check.)"""
    future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(check(), timeout_s), loop)
    try:
        return future.result(timeout=timeout_s + 0.5)
    except (TimeoutError, concurrent.futures.TimeoutError):
        future.cancel()
        return f"no answer within {timeout_s:g} s"
    except concurrent.futures.CancelledError:  # the loop is closing: the router stops
        return "cancelled"
    except Exception as exc:  # noqa: BLE001 - the check's state; the class only (no addresses, no secrets)
        return f"unreachable ({type(exc).__name__})"


def health_app(checks: Checks, metrics: WSGIApplication | None = None) -> WSGIApplication:
    """The port's WSGI app: ``checks()`` gives ``/readyz``'s named checks (called per request)."""
    metrics_app: WSGIApplication = metrics or make_wsgi_app()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics_app(environ, start_response)
        if path not in ("/healthz", "/readyz"):
            return _json(start_response, 404, {"detail": "Not Found"})
        if environ.get("REQUEST_METHOD") != "GET":
            return _json(start_response, 405, {"detail": "Method Not Allowed"}, [("Allow", "GET")])
        if path == "/healthz":
            return _json(start_response, 200, alive())
        try:
            status, body = readiness(checks())
        except Exception as exc:  # a bug in a check must answer "not ready", not drop the connection
            log.exception("readiness checks failed")
            status, body = readiness({"checks": f"failed ({type(exc).__name__})"})
        return _json(start_response, status, body)

    return app


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def _json(
    start_response: StartResponse, status: int, body: Mapping[str, Any], headers: list[tuple[str, str]] | None = None
) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        f"{status} {_REASONS[status]}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *(headers or [])],
    )
    return [data]


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a request in progress does not hold the process at exit


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Every probe and scrape would be a line otherwise."""


def serve(host: str, port: int, app: WSGIApplication) -> WSGIServer:
    """Serve ``app`` on ``host:port`` from a daemon thread; returns the server (``shutdown()`` stops it)."""
    family, *_, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]

    class Server(_Server):
        address_family = family  # IPv6 when the host is an IPv6 address

    server = make_server(str(address[0]), port, app, Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
