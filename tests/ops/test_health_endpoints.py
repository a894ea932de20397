"""The worker's and the router's /healthz and /readyz on the session broker. As real processes: both ready
once up, the worker not ready until it has joined its group and recovered its tables, and a router whose
PostgreSQL database refuses connections answers 503 naming the database while its metrics and liveness still
answer, ready again once the database is back. A router running in this process, for what cannot be caused
from outside: its event loop blocked, and its timers' loop hung on a table another session locked."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from alerts.health_server import health_app, serve
from alerts.router import LOOP_BOUNDS_S, Router
from cli.broker import free_port
from shouwang.settings import Settings
from streams.topic_provisioning import provision_topics
from tests.conftest import settings_env
from tests.kafka_helpers import start_shouwang, stop, until, wait_http
from tests.ops.conftest import Stack

pytestmark = pytest.mark.kafka

WORKER_CHECKS = {"worker", "consumer", "recovery", "rebalance", "progress"}
ROUTER_CHECKS = {
    "router",
    "database",
    "event loop",
    "kafka",
    "loop consume",
    "loop consume-daily",
    "loop timers",
    "tasks",
}


def get(url: str) -> tuple[int, Any]:
    """Status and JSON body of a GET, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as answer:
        return answer.code, json.loads(answer.read() or b"null")


def until_ready(url: str, timeout: float = 60.0) -> dict[str, Any]:
    last: tuple[int, Any] = (0, None)

    def ready() -> bool:
        nonlocal last
        last = get(url)
        return last[0] == 200

    try:
        until(ready, timeout=timeout, what=f"{url} 200")
    except TimeoutError as exc:
        raise AssertionError(f"{url} still answers {last}") from exc
    body: dict[str, Any] = last[1]
    return body


def test_the_worker_and_the_router_are_live_and_ready_once_up(stack: Stack) -> None:
    for metrics, expected in ((stack.worker_metrics, WORKER_CHECKS), (stack.router_metrics, ROUTER_CHECKS)):
        base = metrics.removesuffix("/metrics")
        assert get(f"{base}/healthz") == (200, {"status": "ok", "checks": {}})
        body = until_ready(f"{base}/readyz")
        assert body == {"status": "ready", "checks": dict.fromkeys(expected, "ok")}, base
    # The router's port serves its three paths only (its former server answered any path with the metrics).
    router = stack.router_metrics.removesuffix("/metrics")
    for path in ("/", "/readyz/", "/health"):
        assert get(router + path) == (404, {"detail": "Not Found"}), path


def test_the_worker_is_not_ready_until_it_has_joined_its_group_and_recovered_its_tables(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    provision_topics(kafka_settings)
    log = tmp_path / "worker.log"
    worker = start_shouwang(["worker"], settings_env(kafka_settings), log)
    base = f"http://127.0.0.1:{kafka_settings.worker_web_port}"
    try:
        # Faust serves its pages before its consumer has joined the group: the first answer is a 503.
        wait_http(f"{base}/healthz", process=worker, log=log)
        status, body = get(f"{base}/readyz")
        assert status == 503, body
        failing = {name for name, state in body["checks"].items() if state != "ok"}
        assert failing and failing <= {"consumer", "recovery", "rebalance"}, body
        until_ready(f"{base}/readyz")
        assert "Worker ready" in log.read_text()
    finally:
        code = stop(worker)
    assert code == 0, log.read_text()[-3000:]


@pytest.fixture
def postgres_router(kafka_settings: Settings, postgres_db_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``shouwang router`` alone, on a PostgreSQL database of its own; yields its base URL and the database's
    name. It must still run at the end and stop cleanly."""
    provision_topics(kafka_settings)
    settings = kafka_settings.model_copy(
        update={
            "database_url": postgres_db_url,
            "router_metrics_port": free_port(),
            "router_id": f"router-{kafka_settings.worker_id}",
        }
    )
    log = tmp_path / "router.log"
    router = start_shouwang(["router"], settings_env(settings), log)
    base = f"http://127.0.0.1:{settings.router_metrics_port}"
    try:
        wait_http(f"{base}/healthz", process=router, log=log)
        yield base, str(make_url(postgres_db_url).database)
        assert router.poll() is None, log.read_text()[-3000:]
    finally:
        code = stop(router)
    assert code == 0, log.read_text()[-3000:]


def admin_connection(postgres_url: str) -> psycopg.Connection[Any]:
    url = make_url(postgres_url)
    conninfo = psycopg.conninfo.make_conninfo(host=url.host, port=url.port, user=url.username, dbname="postgres")
    return psycopg.connect(conninfo, autocommit=True)


def test_the_router_is_not_ready_while_its_database_refuses_connections(
    postgres_router: tuple[str, str], postgres_url: str
) -> None:
    base, database = postgres_router
    until_ready(f"{base}/readyz")
    with admin_connection(postgres_url) as admin:
        # The database stops taking connections and drops the router's: as a server going down looks to it.
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
        try:
            status, body = get(f"{base}/readyz")
            assert status == 503, body
            assert body["status"] == "not ready"
            assert body["checks"]["database"] == "unreachable (OperationalError)"
            assert {name for name, state in body["checks"].items() if state != "ok"} == {"database"}
            # Alive, and still measured.
            assert get(f"{base}/healthz")[0] == 200
            assert b"shouwang_router" in wait_http(f"{base}/metrics")
        finally:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    began = time.monotonic()
    until_ready(f"{base}/readyz", timeout=30)
    assert time.monotonic() - began < 30


@contextmanager
def router_in_a_thread(router: Router) -> Iterator[tuple[str, asyncio.AbstractEventLoop]]:
    """``router`` running on an asyncio loop of its own thread, as ``shouwang router`` runs it, and its
    HTTP port served beside it; yields the port's base URL and the loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(router.run(),), daemon=True)
    thread.start()
    server = None
    try:
        server = serve("127.0.0.1", free_port(), health_app(router.readiness))
        yield f"http://127.0.0.1:{server.server_address[1]}", loop
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        loop.call_soon_threadsafe(router.stop_event.set)
        thread.join(30)
        assert not thread.is_alive(), "the router did not stop"
        loop.close()


def test_a_router_whose_event_loop_is_blocked_says_so_and_still_serves_its_metrics(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    provision_topics(kafka_settings)
    settings = kafka_settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'router.db'}"})
    with router_in_a_thread(Router(settings)) as (base, loop):
        until_ready(f"{base}/readyz")
        unblocked = threading.Event()
        loop.call_soon_threadsafe(lambda: unblocked.wait(20))  # a blocking call on the loop, as a bug would make
        try:
            began = time.monotonic()
            status, body = get(f"{base}/readyz")
            assert time.monotonic() - began < 4  # within the compose probe's timeout
            assert status == 503
            assert body["checks"]["event loop"] == "blocked: ran no call within 1 s"
            assert body["checks"]["kafka"] == "not checked: the event loop does not answer"
            assert body["checks"]["database"] == "ok"
            assert b"shouwang_router" in wait_http(f"{base}/metrics")
        finally:
            unblocked.set()
        until_ready(f"{base}/readyz", timeout=10)


def test_a_router_whose_timers_hang_on_a_locked_table_names_that_loop(
    kafka_settings: Settings, postgres_db_url: str
) -> None:
    provision_topics(kafka_settings)
    settings = kafka_settings.model_copy(update={"database_url": postgres_db_url})
    bounds = {**LOOP_BOUNDS_S, "timers": 2.0}  # the bound (two minutes in service) made short for the test
    with router_in_a_thread(Router(settings, timer_tick_s=0.2, loop_bounds_s=bounds)) as (base, _):
        until_ready(f"{base}/readyz")
        url = make_url(postgres_db_url)
        conninfo = psycopg.conninfo.make_conninfo(host=url.host, port=url.port, user=url.username, dbname=url.database)
        with psycopg.connect(conninfo) as holder:
            # Another session holds the alerts table: the timers' pass waits on it; the database still answers.
            holder.execute("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE")
            try:
                until(lambda: get(f"{base}/readyz")[0] == 503, timeout=10, what="timers stale")
                status, body = get(f"{base}/readyz")
                assert status == 503
                assert {name for name, state in body["checks"].items() if state != "ok"} == {"loop timers"}
                assert re.fullmatch(r"no pass for \d+ s \(bound 2 s\)", body["checks"]["loop timers"])
            finally:
                holder.rollback()
        until_ready(f"{base}/readyz", timeout=10)
