"""Fixtures of the operations tests: the worker and the router as real processes on the session
broker, and the Prometheus tools (installed by scripts/ensure-prometheus.sh; missing is a failure)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from alerts.db import upgrade
from cli.broker import free_port
from shouwang.settings import REPO_ROOT, Settings
from streams.topic_provisioning import provision_topics
from tests.conftest import settings_env
from tests.kafka_helpers import start_shouwang, stop, until, wait_http

PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"


def tool(name: str) -> str:
    """The path of a Prometheus tool; fails (never skips) when it is missing."""
    path = shutil.which(name) or shutil.which(name, path="/usr/bin")
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/ensure-prometheus.sh (make test does)")
    return path


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([tool("promtool"), *args], input=stdin, capture_output=True, timeout=60)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


API_TOKEN = "ops-test-operator-token-0123456789abcdef"  # the API's /metrics needs an operator key, as in deployment


@dataclass(frozen=True)
class Stack:
    settings: Settings
    worker_metrics: str
    router_metrics: str
    api_metrics: str
    api_token: str = API_TOKEN


def fetch(url: str, token: str | None = None, timeout: float = 60.0) -> bytes:
    """GET with an optional bearer token, retrying until the server answers 200."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return bytes(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture
def stack(kafka_settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    """``shouwang worker`` and ``shouwang router`` on this test's topics, with a SQLite store; both must
    still run at the end and stop cleanly."""
    settings = kafka_settings.model_copy(
        update={
            "database_url": f"sqlite:///{tmp_path / 'router.db'}",
            "router_metrics_port": free_port(),
            "router_id": f"router-{kafka_settings.worker_id}",
            "api_port": free_port(),
        }
    )
    provision_topics(settings)
    # Migrated once before the processes start, as the deployment's migrate job does: the router and the API
    # migrating one new SQLite store at the same time race ("table api_keys already exists").
    upgrade(str(settings.database_url))
    env = {**settings_env(settings), "SHOUWANG_ADMIN_TOKEN": API_TOKEN}
    logs = {name: tmp_path / f"{name}.log" for name in ("worker", "router", "api")}
    processes = {name: start_shouwang([name], env, log) for name, log in logs.items()}
    try:
        running = Stack(
            settings,
            f"http://127.0.0.1:{settings.worker_web_port}/metrics",
            f"http://127.0.0.1:{settings.router_metrics_port}/metrics",
            f"http://127.0.0.1:{settings.api_port}/metrics",
        )
        wait_http(running.worker_metrics)
        # The web page answers before the worker has joined its group; a worker stopped that early
        # can hang in Faust's consumer shutdown (seen once), which is not what these tests are about.
        until(lambda: "Worker ready" in logs["worker"].read_text(errors="replace"), timeout=90, what="the worker ready")
        wait_http(running.router_metrics)
        fetch(running.api_metrics, API_TOKEN)
        yield running
        for name, process in processes.items():
            assert process.poll() is None, f"the {name} died:\n{logs[name].read_text()[-3000:]}"
    finally:
        codes = {name: stop(process) for name, process in processes.items()}
    for name, code in codes.items():
        assert code == 0, f"the {name} exited with {code}:\n{logs[name].read_text()[-3000:]}"
