"""The alert rules and the scrape config pass promtool, and the rules' unit tests
(deploy/prometheus/rules_test.yml) see every rule both firing and not firing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from shouwang.settings import REPO_ROOT
from tests.ops.conftest import PROMETHEUS_DIR, promtool


@pytest.mark.tools
def test_rules_are_valid_and_each_has_severity_and_annotations() -> None:
    result = promtool("check", "rules", str(PROMETHEUS_DIR / "rules.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    for group in yaml.safe_load((PROMETHEUS_DIR / "rules.yml").read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["alert"].startswith("Shouwang"), rule
            assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


@pytest.mark.tools
def test_rule_unit_tests_pass_and_cover_every_rule_firing_and_not() -> None:
    result = promtool("test", "rules", str(PROMETHEUS_DIR / "rules_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    rules = {
        rule["alert"]
        for group in yaml.safe_load((PROMETHEUS_DIR / "rules.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    firing: set[str] = set()
    quiet: set[str] = set()
    for test in yaml.safe_load((PROMETHEUS_DIR / "rules_test.yml").read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert firing == rules, f"never seen firing: {sorted(rules - firing)}"
    assert quiet == rules, f"never seen quiet: {sorted(rules - quiet)}"


@pytest.mark.tools
def test_scrape_config_is_valid_and_loads_the_rules(tmp_path: Path) -> None:
    deployed = tmp_path / "prometheus"  # as mounted in the container, with the operator's token file beside it
    shutil.copytree(PROMETHEUS_DIR, deployed)
    (deployed / "secrets" / "api-token").write_text("swk_key_0123456789abcdef_example-token-for-the-check\n")
    result = promtool("check", "config", str(deployed / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert jobs["shouwang-worker"] == ["worker:6066"] and jobs["shouwang-router"] == ["router:6067"]


def test_compose_runs_prometheus_on_that_config_and_its_targets_exist() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    prometheus = compose["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:")
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "127.0.0.1:9090:9090" in prometheus["ports"]
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        for target in job["static_configs"][0]["targets"]:
            service, port = target.split(":")
            assert service in compose, f"{job['job_name']}: no service {service}"
            assert any(str(p).endswith(f":{port}") for p in compose[service].get("ports", [])), target
