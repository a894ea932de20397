"""The router's HTTP port (alerts/health_server.py), served for real on loopback: /metrics exactly as
prometheus_client's own server answers it, /healthz and /readyz, 404 elsewhere; answers while an asyncio
loop is blocked; the loops' heartbeats against their bounds on an injected clock; a hung database check
that is waited on with a bound and never started twice."""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import pytest
from prometheus_client import CollectorRegistry, Counter, make_wsgi_app, start_http_server

from alerts.health_server import Heartbeats, OneAtATime, health_app, loop_answers, on_loop, serve
from cli.broker import free_port


@contextmanager
def served(checks: Callable[[], Mapping[str, str]], registry: CollectorRegistry | None = None) -> Iterator[str]:
    server = serve("127.0.0.1", free_port(), health_app(checks, make_wsgi_app(registry) if registry else None))
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def get(url: str, headers: Mapping[str, str] | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=dict(headers or {}), method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as answer:
        return answer.code, dict(answer.headers), answer.read()


def test_metrics_are_what_prometheus_clients_own_server_answered() -> None:
    registry = CollectorRegistry()
    Counter("shouwang_router_test_events", "Events.", ["kind"], registry=registry).labels("a").inc(3)
    before, thread = start_http_server(free_port(), addr="127.0.0.1", registry=registry)  # the router's former
    try:
        with served(lambda: {}, registry) as ours:
            for headers in ({}, {"Accept-Encoding": "gzip"}, {"Accept": "application/openmetrics-text; version=1.0.0"}):
                status, got_headers, body = get(f"{ours}/metrics", headers)
                _, want_headers, want_body = get(f"http://127.0.0.1:{before.server_port}/metrics", headers)
                assert status == 200 and body == want_body, headers
                for name in ("Content-Type", "Content-Encoding"):
                    assert got_headers.get(name) == want_headers.get(name), (headers, name)
            assert b'shouwang_router_test_events_total{kind="a"} 3.0' in gzip.decompress(
                get(f"{ours}/metrics", {"Accept-Encoding": "gzip"})[2]
            )
    finally:
        before.shutdown()
        thread.join(5)


def test_health_answers_in_the_apis_shape_and_other_paths_are_not_found() -> None:
    checks = {"database": "ok", "kafka": "ok"}
    with served(lambda: checks) as base:
        assert get(f"{base}/healthz")[::2] == (200, b'{"status": "ok", "checks": {}}')
        status, headers, body = get(f"{base}/readyz")
        assert (status, headers["Content-Type"]) == (200, "application/json")
        assert body == b'{"status": "ready", "checks": {"database": "ok", "kafka": "ok"}}'
        checks["database"] = "unreachable (OperationalError)"
        assert get(f"{base}/readyz")[::2] == (
            503,
            b'{"status": "not ready", "checks": {"database": "unreachable (OperationalError)", "kafka": "ok"}}',
        )
        for path in ("/", "/metrics/x", "/readyz/", "/favicon.ico"):
            assert get(base + path)[::2] == (404, b'{"detail": "Not Found"}'), path
        assert get(f"{base}/readyz", method="POST")[0] == 405


def test_a_check_that_raises_answers_not_ready_rather_than_dropping_the_probe() -> None:
    def broken() -> dict[str, str]:
        raise KeyError("bug")

    with served(broken) as base:
        assert get(f"{base}/readyz")[::2] == (
            503,
            b'{"status": "not ready", "checks": {"checks": "failed (KeyError)"}}',
        )


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An asyncio loop running in a thread of its own, as the router's runs beside the server's threads."""
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.call_soon_threadsafe(running.stop)
        thread.join(10)
        running.close()


def test_a_blocked_loop_is_named_while_metrics_and_health_still_answer(loop: asyncio.AbstractEventLoop) -> None:
    async def answers() -> str:
        return "ok"

    async def hangs() -> str:
        await asyncio.sleep(30)
        return "ok"

    def checks() -> dict[str, str]:
        state = loop_answers(loop, 0.5)
        return {"event loop": state, "kafka": on_loop(loop, answers, 0.5) if state == "ok" else "not checked"}

    assert on_loop(loop, hangs, 0.3) == "no answer within 0.3 s"
    with served(checks) as base:
        assert get(f"{base}/readyz")[0] == 200
        unblocked = threading.Event()
        loop.call_soon_threadsafe(lambda: unblocked.wait(10))  # a blocking call on the loop, as a bug would make
        try:
            began = time.monotonic()
            status, _, body = get(f"{base}/readyz")
            assert status == 503 and b'"event loop": "blocked: ran no call within 0.5 s"' in body
            assert time.monotonic() - began < 2
            assert get(f"{base}/metrics")[0] == 200 and get(f"{base}/healthz")[0] == 200
        finally:
            unblocked.set()
        assert get(f"{base}/readyz")[0] == 200


def test_a_loop_is_named_once_it_has_gone_longer_than_its_bound_without_a_pass() -> None:
    now = [100.0]
    beats = Heartbeats({"consume": 60.0, "timers": 120.0}, clock=lambda: now[0])
    assert beats.checks() == {"loop consume": "ok", "loop timers": "ok"}
    now[0] += 60.0  # at the bound: still ok
    beats.beat("timers")
    assert beats.checks() == {"loop consume": "ok", "loop timers": "ok"}
    now[0] += 1.0
    assert beats.checks() == {"loop consume": "no pass for 61 s (bound 60 s)", "loop timers": "ok"}
    beats.beat("consume")
    now[0] += 121.0  # the timers last went round at 160, 122 s ago
    assert beats.checks() == {
        "loop consume": "no pass for 121 s (bound 60 s)",
        "loop timers": "no pass for 122 s (bound 120 s)",
    }


def test_a_hung_check_is_waited_on_with_a_bound_and_never_started_twice() -> None:
    release = threading.Event()
    started: list[float] = []

    def ping() -> None:
        started.append(time.monotonic())
        release.wait(10)

    check = OneAtATime(ping, timeout_s=0.2, name="test-ping")
    try:
        assert check() == "no answer within 0.2 s"
        pending = check.begin()  # the next probe joins the check still running
        assert pending() == "no answer within 0.2 s" and len(started) == 1
        [thread] = [t for t in threading.enumerate() if t.name == "test-ping"]
        assert thread.daemon  # a hung check does not hold the process at its exit
    finally:
        release.set()
    time.sleep(0.1)
    assert check() == "ok" and len(started) == 2  # done: the next probe asks again

    def refused() -> None:
        raise ConnectionRefusedError("postgresql://user:secret@db/shouwang refused")

    failing = OneAtATime(refused, timeout_s=1.0, name="test-ping")
    assert failing() == "unreachable (ConnectionRefusedError)"  # the class only: no address, no secret
