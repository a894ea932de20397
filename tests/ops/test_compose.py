"""docker-compose.yml, which cannot run here (no Docker): valid by the compose specification's JSON schema
(tests/data/compose-spec.json), and each container's command checked against the same command here: the CLI
parses it, the settings its environment gives put the services on the ports their healthchecks probe, each
probe asks its service's /readyz, the probes pass against the running processes, the metrics-key job's
command issues the token where Prometheus reads it, and Alertmanager's config loads and routes every severity
the operator rules use."""

from __future__ import annotations

import base64
import binascii
import copy
import http.server
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
import wsgiref.util
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from alerts.health_server import health_app
from api.app import create_app
from cli.broker import free_port
from shouwang.settings import REPO_ROOT, Settings
from streams.app import create_app as create_worker_app
from tests.ops.cli_args import parse_with_the_cli
from tests.ops.conftest import PROMETHEUS_DIR, Stack, promtool

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
SCHEMA = json.loads((REPO_ROOT / "tests" / "data" / "compose-spec.json").read_text())
ALERTMANAGER_DIR = REPO_ROOT / "deploy" / "alertmanager"
# Each long-running Shouwang service: the setting of the port its healthcheck probes, and its interface's.
PROBED = {
    "worker": ("worker_web_port", "worker_web_host"),
    "router": ("router_metrics_port", "router_metrics_host"),
    "api": ("api_port", "api_host"),
}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator = Draft202012Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_the_compose_file_follows_the_compose_specification() -> None:
    assert schema_errors(compose()) == []
    # The schema does refuse what Docker Compose would: a misspelt key, an unknown condition.
    broken = compose()
    broken["services"]["api"]["healthcheck"]["intervall"] = "10s"
    broken["services"]["worker"]["depends_on"]["kafka"]["condition"] = "service_up"
    errors = schema_errors(broken)
    assert any("services/api/healthcheck" in e and "intervall" in e for e in errors), errors
    assert any("services/worker/depends_on" in e for e in errors), errors


def kafka_storage_problems(document: dict[str, Any]) -> list[str]:
    """Why the Kafka container would lose its data or its cluster when recreated (none: it keeps both)."""
    kafka = document["services"]["kafka"]
    env = kafka.get("environment", {})
    named = set(document.get("volumes") or {})
    mounts = [str(m).split(":") for m in kafka.get("volumes", [])]
    on_volume = [PurePosixPath(target) for source, target, *_ in mounts if source in named]
    problems = []
    log_dirs = [d for d in str(env.get("KAFKA_LOG_DIRS", "")).split(",") if d]
    if not log_dirs:
        problems.append("KAFKA_LOG_DIRS unset: the image keeps its data in /tmp inside the container")
    for log_dir in log_dirs:
        if not any(PurePosixPath(log_dir).is_relative_to(target) for target in on_volume):
            problems.append(f"{log_dir} is on no named volume")
    cluster_id = str(env.get("CLUSTER_ID", ""))
    try:
        raw = base64.urlsafe_b64decode(cluster_id + "==")
    except (binascii.Error, ValueError):
        raw = b""
    if len(cluster_id) != 22 or len(raw) != 16:
        problems.append(f"CLUSTER_ID {cluster_id!r} is not 16 bytes in base64url: the image's default is used")
    return problems


def test_kafka_keeps_its_data_and_cluster_on_the_volume() -> None:
    assert kafka_storage_problems(compose()) == []
    # The file as it was: the volume mounted at the image's data folder, but the log folder left at /tmp.
    before = compose()
    kafka_env = before["services"]["kafka"]["environment"]
    del kafka_env["KAFKA_LOG_DIRS"], kafka_env["CLUSTER_ID"]
    assert len(kafka_storage_problems(before)) == 2
    kafka_env.update(KAFKA_LOG_DIRS="/tmp/kraft-combined-logs", CLUSTER_ID="not-an-id")
    assert kafka_storage_problems(before) == [
        "/tmp/kraft-combined-logs is on no named volume",
        "CLUSTER_ID 'not-an-id' is not 16 bytes in base64url: the image's default is used",
    ]


def test_every_service_waits_for_what_it_needs_to_be_healthy_or_done() -> None:
    services = compose()["services"]
    one_shot = {name for name, s in services.items() if s.get("restart") == "on-failure"}
    assert one_shot == {"topics", "migrate", "metrics-key"}
    for name, service in services.items():
        if name not in one_shot:
            assert "healthcheck" in service, f"{name} has no healthcheck"
            assert service["restart"] == "unless-stopped", name
        for needed, rule in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if needed in one_shot else "service_healthy"
            assert rule == {"condition": expected}, f"{name} → {needed}"
    assert set(services["router"]["depends_on"]) == {"kafka", "postgres", "topics", "migrate"}
    assert set(services["api"]["depends_on"]) == {"kafka", "postgres", "topics", "migrate"}
    # Both open the store: the schema is migrated once before either starts. Both seal and open channel
    # credentials and action links with the key in their var folder: one volume, one key.
    assert services["router"]["volumes"] == services["api"]["volumes"] == ["shouwang-var:/app/var"]


def test_each_container_command_is_a_command_of_the_cli() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["shouwang"]' in dockerfile  # so a service's command is the CLI's arguments
    built = {name: s["command"] for name, s in compose()["services"].items() if s.get("build") == "."}
    parsed = {name: parse_with_the_cli(command) for name, command in built.items()}
    assert {name: path for name, (path, _) in parsed.items()} == {
        "topics": "shouwang topics",
        "migrate": "shouwang db-upgrade",
        "worker": "shouwang worker",
        "router": "shouwang router",
        "api": "shouwang api",
        "metrics-key": "shouwang keys issue",
    }
    assert parsed["metrics-key"][1]["name"] == "prometheus"
    with pytest.raises(Exception, match="No such option"):  # the parser does refuse what the CLI would
        parse_with_the_cli(["keys", "issue", "prometheus", "--token"])


@pytest.fixture
def no_shouwang_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from the compose file's environment alone, not this test process's."""
    for name in list(os.environ):
        if name.startswith("SHOUWANG_"):
            monkeypatch.delenv(name)


def container_settings(service: dict[str, Any]) -> Settings:
    env = service.get("environment", {})
    known = {f"SHOUWANG_{name.upper()}" for name in Settings.model_fields}
    assert set(k for k in env if k.startswith("SHOUWANG_")) <= known, "a SHOUWANG_ variable that is no setting"
    return Settings(**{k.removeprefix("SHOUWANG_").lower(): v for k, v in env.items() if k.startswith("SHOUWANG_")})


def probe_url(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"] and len(test) == 5, test
    return str(test[4])


@pytest.mark.usefixtures("no_shouwang_env")
def test_healthchecks_probe_the_ports_and_paths_the_settings_and_the_code_give() -> None:
    services = compose()["services"]
    for name, (port_setting, host_setting) in PROBED.items():
        settings = container_settings(services[name])
        url = urllib.parse.urlsplit(probe_url(services[name]))
        port = getattr(settings, port_setting)
        assert (url.hostname, url.port) == ("127.0.0.1", port), name
        # Listening on every interface, so both the probe (loopback) and the published port reach it.
        assert getattr(settings, host_setting) == "0.0.0.0", name
        assert services[name]["ports"] == [f"127.0.0.1:{port}:{port}"], name
        # Each is asked whether it is ready (a 503 names what is not), not only whether it answers.
        assert url.path == "/readyz", name
    api_paths = {getattr(route, "path", None) for route in create_app(container_settings(services["api"])).routes}
    assert {"/readyz", "/healthz", "/metrics"} <= api_paths
    worker_paths = set(create_worker_app(container_settings(services["worker"])).web.views)
    assert {"/readyz", "/healthz", "/metrics"} <= worker_paths
    router_status = {path: router_answer(path) for path in ("/readyz", "/healthz", "/metrics", "/ready")}
    assert router_status == {"/readyz": 503, "/healthz": 200, "/metrics": 200, "/ready": 404}


def router_answer(path: str) -> int:
    """The status the router's HTTP port gives ``path``, from its WSGI app, before the router is built."""
    environ: dict[str, Any] = {"PATH_INFO": path}
    wsgiref.util.setup_testing_defaults(environ)
    answered: list[str] = []
    b"".join(health_app(lambda: {"router": "starting"})(environ, lambda status, _headers: answered.append(status)))
    return int(answered[0].split()[0])


class _Answers(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ok" else 503)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_probe(service: dict[str, Any], url: str) -> subprocess.CompletedProcess[bytes]:
    """The service's healthcheck command as Docker runs it, with this interpreter and ``url`` for its own."""
    test = list(service["healthcheck"]["test"][1:])
    test[0], test[-1] = sys.executable, url
    return subprocess.run(test, capture_output=True, timeout=30)


def test_the_probe_fails_on_an_error_answer_and_on_no_answer(answering: str) -> None:
    api = compose()["services"]["api"]
    assert run_probe(api, f"{answering}/ok").returncode == 0
    assert run_probe(api, f"{answering}/readyz").returncode == 1  # a 503: not ready
    assert run_probe(api, f"http://127.0.0.1:{free_port()}/readyz").returncode == 1  # nothing listening


def test_the_probes_pass_against_the_running_worker_router_and_api(stack: Stack) -> None:
    services = compose()["services"]
    for name, (port_setting, _) in PROBED.items():
        url = urllib.parse.urlsplit(probe_url(services[name]))
        here = url._replace(netloc=f"127.0.0.1:{getattr(stack.settings, port_setting)}").geturl()
        # Probed until it passes, as Docker does within a start period: ready may follow running by seconds.
        deadline = time.monotonic() + 60
        while (result := run_probe(services[name], here)).returncode != 0 and time.monotonic() < deadline:
            time.sleep(1)
        assert result.returncode == 0, f"{name}: {here}\n{result.stderr.decode()[-2000:]}"


def token_paths() -> tuple[PurePosixPath, PurePosixPath, str]:
    """Where the metrics-key job writes the token, where Prometheus reads it (both inside their containers),
    and the volume between them."""
    services = compose()["services"]
    job, prometheus = services["metrics-key"], services["prometheus"]
    written = PurePosixPath(job["command"][job["command"].index("--token-file") + 1])
    [(volume, job_target)] = [str(m).split(":")[:2] for m in job["volumes"]]
    [prom_target] = [str(m).split(":")[1] for m in prometheus["volumes"] if str(m).startswith(f"{volume}:")]
    seen_by_prometheus = PurePosixPath(prom_target) / written.relative_to(job_target)
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    [api_job] = [j for j in config["scrape_configs"] if "authorization" in j]
    config_dir = PurePosixPath(prometheus["command"][0].removeprefix("--config.file=")).parent
    return seen_by_prometheus, config_dir / api_job["authorization"]["credentials_file"], volume


def test_prometheus_reads_the_token_where_the_metrics_key_job_writes_it() -> None:
    seen_by_prometheus, read_by_prometheus, volume = token_paths()
    assert seen_by_prometheus == read_by_prometheus
    services = compose()["services"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    # The token volume is mounted inside that read-only folder: its mount point must already be there.
    inside = read_by_prometheus.parent.relative_to("/etc/prometheus")
    assert (PROMETHEUS_DIR / inside).is_dir() and volume in compose()["volumes"]
    # The job writes the token owner-only as the user Prometheus's image runs as, into a folder the image
    # made theirs (a new volume takes its mount point's owner).
    job = services["metrics-key"]
    assert job["user"] == "65534:65534"
    job_target = str(job["volumes"][0]).split(":")[1]
    assert f"install -d -o 65534 -g 65534 -m 0700 {job_target}" in (REPO_ROOT / "Dockerfile").read_text()


@pytest.mark.tools
@pytest.mark.usefixtures("no_shouwang_env")
def test_the_metrics_key_job_writes_a_token_prometheus_accepts(tmp_path: Path) -> None:
    job = compose()["services"]["metrics-key"]
    command = list(job["command"])
    at = command.index("--token-file") + 1
    deployed = tmp_path / "prometheus"  # deploy/prometheus as Prometheus's container sees it
    shutil.copytree(PROMETHEUS_DIR, deployed, ignore=shutil.ignore_patterns("api-token"))
    command[at] = str(deployed / "secrets" / PurePosixPath(command[at]).name)
    env = {
        **os.environ,
        "SHOUWANG_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "SHOUWANG_VAR_DIR": str(tmp_path),
    }
    shouwang = [sys.executable, "-m", "cli"]
    issued = subprocess.run([*shouwang, *command], env=env, capture_output=True, text=True, timeout=120)
    assert issued.returncode == 0, issued.stderr  # (a second run keeps it: tests/cli/test_keys.py)
    token_file = deployed / "secrets" / "api-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and re.fullmatch(r"swk_\S+\n", token_file.read_text())
    checked = promtool("check", "config", str(deployed / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("amtool")
    if path is None:
        pytest.fail("amtool is not installed: run scripts/ensure-test-tools.sh (make test does)")
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=60)


def test_prometheus_sends_its_alerts_to_the_alertmanager_service() -> None:
    services = compose()["services"]
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    [target] = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    host, port = target.split(":")
    alertmanager = services[host]
    assert alertmanager["image"].startswith("prom/alertmanager:")
    assert f"127.0.0.1:{port}:{port}" in alertmanager["ports"]
    assert "./deploy/alertmanager:/etc/alertmanager:ro" in alertmanager["volumes"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in alertmanager["command"]
    assert services["prometheus"]["depends_on"]["alertmanager"] == {"condition": "service_healthy"}


@pytest.mark.tools
def test_alertmanager_config_loads_and_routes_every_severity_of_the_rules_to_operators() -> None:
    config_file = ALERTMANAGER_DIR / "alertmanager.yml"
    checked = amtool("check-config", str(config_file))
    assert checked.returncode == 0 and "1 templates" in checked.stdout, checked.stdout + checked.stderr
    rules = yaml.safe_load((PROMETHEUS_DIR / "rules.yml").read_text())
    severities = {rule["labels"]["severity"] for group in rules["groups"] for rule in group["rules"]}
    expected = {"critical": "operators-wecom-and-mail", "warning": "operators-mail"}
    assert severities == set(expected)
    for severity, receiver in expected.items():
        routed = amtool("config", "routes", "test", f"--config.file={config_file}", f"severity={severity}")
        assert routed.stdout.split() == [receiver], routed.stdout + routed.stderr
    receivers = {r["name"]: r for r in yaml.safe_load(config_file.read_text())["receivers"]}
    # WeCom application messages and email: channels Shouwang itself reaches people on (wecom_app, email).
    assert set(receivers["operators-wecom-and-mail"]) == {"name", "wechat_configs", "email_configs"}
    assert set(receivers["operators-mail"]) == {"name", "email_configs"}


@pytest.mark.tools
def test_the_wecom_message_carries_each_alerts_summary_and_description(tmp_path: Path) -> None:
    alerts = [
        {
            "status": "firing",
            "labels": {"alertname": "ShouwangRouterDown", "severity": "critical", "instance": f"router-{n}:6067"},
            "annotations": {"summary": f"Alert router router-{n}:6067 is down", "description": f"Check router {n}."},
        }
        for n in (1, 2)
    ]
    data = tmp_path / "data.json"
    common = {"alertname": "ShouwangRouterDown", "severity": "critical"}
    data.write_text(json.dumps({"status": "firing", "alerts": alerts, "commonLabels": common, "groupLabels": {}}))
    rendered = amtool(
        "template",
        "render",
        f"--template.glob={ALERTMANAGER_DIR / 'shouwang.tmpl'}",
        '--template.text={{ template "shouwang.message" . }}',
        f"--template.data={data}",
    )
    assert rendered.returncode == 0, rendered.stderr
    lines = rendered.stdout.strip().splitlines()
    assert lines == [
        "[守望 critical] ShouwangRouterDown",
        "- Alert router router-1:6067 is down",
        "  Check router 1.",
        "- Alert router router-2:6067 is down",
        "  Check router 2.",
    ]
    resolved = copy.deepcopy(json.loads(data.read_text()))
    resolved["status"] = "resolved"
    data.write_text(json.dumps(resolved))
    again = amtool(
        "template",
        "render",
        f"--template.glob={ALERTMANAGER_DIR / 'shouwang.tmpl'}",
        '--template.text={{ template "shouwang.message" . }}',
        f"--template.data={data}",
    )
    assert again.stdout.strip().splitlines()[0] == "[守望 resolved] ShouwangRouterDown" and "Check" not in again.stdout
