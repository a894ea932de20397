"""`shouwang up` from nothing: its own embedded broker, topics and worker; a reading sent with
the CLI yields an alert; Ctrl-C (SIGINT) leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.auth import FIRST_KEY_FILE
from cli.broker import free_port, port_answers
from shouwang.settings import Settings
from tests.conftest import LIB_DIR, settings_env
from tests.kafka_helpers import start_shouwang, stop, wait_http

pytestmark = pytest.mark.kafka


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def test_up_runs_everything_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    settings = Settings(
        var_dir=tmp_path / "var",
        broker_lib_dir=LIB_DIR,
        broker_port=free_port(),
        broker_controller_port=free_port(),
        worker_web_port=free_port(),
        router_metrics_port=free_port(),
        api_port=free_port(),
        broker_heap="512m",
        readings_partitions=2,
    )
    env = settings_env(settings)
    log = tmp_path / "up.log"
    up = start_shouwang(["up"], env, log)
    try:
        wait_http(f"http://127.0.0.1:{settings.worker_web_port}/metrics", timeout=120, process=up, log=log)
        wait_http(f"http://127.0.0.1:{settings.router_metrics_port}/metrics", timeout=60, process=up, log=log)
        wait_http(f"http://127.0.0.1:{settings.api_port}/healthz", timeout=60, process=up, log=log)
        broker_pid = int((settings.broker_dir / "broker.pid").read_text())
        children = {name: int(pid) for name, pid in re.findall(r"started (\w+) \(pid (\d+)\)", log.read_text())}
        assert set(children) == {"worker", "router", "api"}
        # The generated first operator key goes to a file only its owner reads; the log says where, never the key.
        key_file = settings.var_dir / FIRST_KEY_FILE
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert f"first operator API key written to {key_file}" in log.read_text()
        assert key_file.read_text().strip() not in log.read_text()
        cli = [sys.executable, "-m", "cli"]
        sent = subprocess.run(
            [*cli, "send-reading", "SZ-FT-0001", "812.5", "--flag", "leak", "--ts", "2026-03-01T09:30:00+08:00"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "sent to" in sent.stdout
        tailed = subprocess.run(
            [*cli, "tail", "alerts", "--max", "1", "--timeout", "60"],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=True,
        )
        alert = json.loads(tailed.stdout.splitlines()[0])["value"]
        assert (alert["meter_id"], alert["kind"], alert["event"]) == ("SZ-FT-0001", "continuous_flow", "raised")
    finally:
        os.killpg(up.pid, signal.SIGINT)  # what Ctrl-C in a terminal delivers …
        time.sleep(0.5)
        code = stop(up, sig=signal.SIGINT, timeout=60)  # … and an impatient second Ctrl-C
    text = log.read_text()
    assert code == 0, text[-3000:]
    deadline = time.monotonic() + 10
    pids = {"broker": broker_pid, **children}
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids.values()):
        time.sleep(0.2)
    for name, pid in pids.items():
        assert not _alive(pid), f"the {name} outlived `shouwang up`"
    assert not port_answers("127.0.0.1", settings.broker_port)
    assert "stopped the local broker" in text
