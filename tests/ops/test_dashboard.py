"""The Grafana dashboard and the alert rules ask only for metrics the code exposes, with labels
those metrics carry; the dashboard is importable and its queries parse."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.ops.conftest import promtool
from tests.ops.promql import dashboard, dashboard_queries, exposed_metrics, panels, problems, rule_queries

DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
REQUIRED_PANELS = (
    "Readings processed",
    "Records consumed",
    "Consumer lag per partition",
    "Processing latency",
    "Dead letters by reason",
    "Alert events by kind and result",
    "Open alerts by severity",
    "Notifications by role",
    "Webhook deliveries by outcome",
    "Delivery latency (p90)",
    "Retries",
    "Webhook dead letters",
    "Escalations",
    "Time to acknowledge (p50)",
    "Pending outbox",
)


def test_the_known_names_are_what_the_code_exposes() -> None:
    known = exposed_metrics()
    assert known["shouwang_worker_readings_processed_total"] >= {"job", "instance"}
    assert "le" in known["shouwang_webhook_delivery_latency_seconds_bucket"]
    assert "shouwang_worker_readings_processed" not in known  # a counter is exposed with _total only
    assert "topic" in known["shouwang_worker_consumer_lag_records"]
    assert problems('sum by (outcome) (rate(shouwang_webhook_deliveries_total{outcome="retry"}[5m]))', known) == []
    assert problems("rate(shouwang_webhook_deliveries[5m])", known) == [
        "unknown metric shouwang_webhook_deliveries",
        "no Shouwang metric",
    ]
    assert problems('shouwang_alerts_open{role="x"}', known) == ["shouwang_alerts_open has no label role"]
    assert problems("sum by (role) (shouwang_alerts_open)", known) == ["no metric here has the label role"]


@pytest.mark.parametrize(("source", "queries"), [("dashboard", dashboard_queries()), ("rules", rule_queries())])
def test_queries_use_only_exposed_metrics_and_labels(source: str, queries: dict[str, str]) -> None:
    known = exposed_metrics()
    assert queries
    wrong = {where: found for where, expr in queries.items() if (found := problems(expr, known))}
    assert not wrong, f"{source}: {wrong}"


def test_dashboard_is_importable_with_a_datasource_variable() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 39 and board["uid"] and board["title"]
    [variable] = [v for v in board["templating"]["list"] if v["name"] == "DS_PROMETHEUS"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    shown = [p for p in panels(board) if p["type"] != "row"]
    assert {p["title"] for p in shown} >= set(REQUIRED_PANELS)
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in panels(board):
        pos = panel["gridPos"]
        area = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert pos["x"] + pos["w"] <= 24 and not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        if panel["type"] != "row":
            assert panel["datasource"] == DATASOURCE and panel["targets"], panel["title"]
            assert all(t["datasource"] == DATASOURCE and t["expr"] for t in panel["targets"]), panel["title"]


@pytest.mark.tools
def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """Prometheus' own parser, through promtool: each query as a recording rule."""
    rules = [{"record": f"shouwang:panel_{i}", "expr": expr} for i, expr in enumerate(dashboard_queries().values())]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
