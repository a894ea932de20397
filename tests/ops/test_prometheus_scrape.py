"""A real Prometheus server scrapes the running worker and router with deploy/prometheus/prometheus.yml
(targets moved to loopback, 1 s intervals) and loads rules.yml; the counts it then holds are exactly
what was sent: 7 readings (2 of them leaks, which the router receives as alerts) and 3 malformed
messages."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cli.broker import free_port
from shouwang.topics import Topics
from tests.kafka_helpers import produce, stop, wait_http
from tests.ops.conftest import PROMETHEUS_DIR, Stack, promtool, tool
from tests.ops.promql import dashboard_queries

pytestmark = pytest.mark.kafka
DEADLINE_S = 60.0


def _reading(meter: str, minute: int, flags: list[str]) -> bytes:
    return json.dumps(
        {"meter_id": meter, "ts": f"2026-03-01T08:{minute:02d}:00+08:00", "register_l": 100 + minute, "flags": flags}
    ).encode()


GOOD = [(f"m-{i}".encode(), _reading(f"m-{i}", i, ["leak"] if i in (2, 5) else [])) for i in range(7)]
BAD = [
    (b"m-bad", b"\x00\x01binary junk"),
    (b"m-bad", b'{"meter_id": "m-bad", "ts": "2026-03-01T08:00:00", "register_l": 1}'),
    (None, b"[]"),
]


def scrape_config(stack: Stack) -> dict:
    """The deployed config with each job's target on loopback, fast intervals and the real rules."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    targets = {
        "shouwang-worker": stack.worker_metrics,
        "shouwang-router": stack.router_metrics,
        "shouwang-api": stack.api_metrics,
    }
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == set(targets), f"start {sorted(jobs - set(targets))} in the stack fixture and map it here"
    for job in config["scrape_configs"]:
        url = urllib.parse.urlsplit(targets[job["job_name"]])
        assert job.get("metrics_path", "/metrics") == url.path
        job["static_configs"] = [{"targets": [url.netloc]}]
        if "authorization" in job:  # the deployed token file is a secret of the deployment; ours is the test key
            job["authorization"] = {"type": "Bearer", "credentials": stack.api_token}
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_DIR / name) for name in config["rule_files"]]
    return config


@pytest.fixture
def prometheus(stack: Stack, tmp_path: Path) -> Iterator[str]:
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(stack)))
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=30)
        yield f"http://127.0.0.1:{port}"
        assert server.poll() is None, log.read_text()[-3000:]
    finally:
        code = stop(server)
    assert code == 0, log.read_text()[-3000:]


def api(base: str, path: str, **params: str) -> dict:
    with urllib.request.urlopen(f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}", timeout=5) as r:
        answer = json.load(r)
    assert answer["status"] == "success", answer
    return answer["data"]


def value(base: str, query: str) -> float | None:
    """The single value of an instant query (None when it returns nothing)."""
    result = api(base, "query", query=query)["result"]
    assert len(result) <= 1, (query, result)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_exact_counts_and_loads_the_rules(stack: Stack, prometheus: str) -> None:
    sent_at = time.time()
    produce(
        stack.settings.bootstrap_servers, Topics.from_settings(stack.settings).readings, [*GOOD[:4], *BAD, *GOOD[4:]]
    )
    expected = {
        'up{job="shouwang-worker"}': 1.0,
        'up{job="shouwang-router"}': 1.0,
        'up{job="shouwang-api"}': 1.0,
        "shouwang_worker_readings_processed_total": 7.0,
        "sum(shouwang_worker_meters_reporting)": 7.0,  # seven meters, one reading each
        "max(shouwang_meters_enrolled)": 0.0,  # none enrolled in this stack's store
        "shouwang_worker_records_consumed_total": 10.0,
        "sum(shouwang_worker_dead_letters_total)": 3.0,
        'sum(shouwang_worker_alerts_emitted_total{kind="continuous_flow",event="raised"})': 2.0,
        "sum(shouwang_router_alert_events_total)": 2.0,  # the leaks, through the router
        # every partition of the readings (4), feedback (4, as the readings) and incidents (2) topics, not the
        # table's changelog …
        "count(shouwang_worker_consumer_lag_records)": 10.0,
        "sum(shouwang_worker_consumer_lag_records)": 0.0,  # … caught up
        f"shouwang_worker_last_reading_timestamp_seconds > bool {sent_at - 1:.3f}": 1.0,
        "shouwang_worker_record_processing_seconds_count": 10.0,
        "shouwang_worker_detectors_compiled": 1.0,  # `make install` compiled them
        "shouwang_worker_states_held": 0.0,  # the leaks' alerts delivered, so their states written
    }
    deadline = time.monotonic() + DEADLINE_S
    while True:
        seen = {query: value(prometheus, query) for query in expected}
        rules = [rule for group in api(prometheus, "rules")["groups"] for rule in group["rules"]]
        health = {rule["name"]: (rule["health"], rule.get("lastError")) for rule in rules}
        if seen == expected and rules and all(h == "ok" for h, _ in health.values()):
            break
        assert time.monotonic() < deadline, f"Prometheus saw {seen}, rules {health}"
        time.sleep(0.5)

    groups = yaml.safe_load((PROMETHEUS_DIR / "rules.yml").read_text())["groups"]
    assert sorted(health) == sorted(rule["alert"] for group in groups for rule in group["rules"])
    # Every dashboard query runs on the live data (Grafana's range variables fixed).
    for query in dashboard_queries().values():
        api(prometheus, "query", query=query)  # asserts success
    # rate() needs two scrapes of the counter; under load the second may still be on its way.
    rate_query = "sum(rate(shouwang_worker_readings_processed_total[1m]))"
    rate_deadline = time.monotonic() + 30
    while value(prometheus, rate_query) is None:
        assert time.monotonic() < rate_deadline, f"{rate_query} stayed empty"
        time.sleep(0.5)
    # Populated output (labelled series, observed histograms) still passes promtool's lint.
    for url in (stack.worker_metrics, stack.router_metrics):
        result = promtool("check", "metrics", stdin=wait_http(url))
        assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result
