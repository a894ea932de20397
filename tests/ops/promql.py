"""What the operations files ask of Prometheus: the PromQL of the dashboard's panels and of the alert
rules, and the metric names (with their labels) that the code really exposes."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from typing import Any

import yaml
from prometheus_client.metrics import MetricWrapperBase

from shouwang.settings import REPO_ROOT

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "shouwang.json"
RULES = REPO_ROOT / "deploy" / "prometheus" / "rules.yml"
METRIC_MODULES = ("streams.metrics", "alerts.metrics")  # the processes Prometheus scrapes
TARGET_LABELS = frozenset({"job", "instance"})  # added by Prometheus to every scraped series
OTHER_METRICS = {"up": TARGET_LABELS}  # Prometheus' own, one per target
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}
GRAFANA_RANGES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def exposed_metrics() -> dict[str, frozenset[str]]:
    """Every sample name the code's metrics produce, with the labels it may carry."""
    names: dict[str, frozenset[str]] = dict(OTHER_METRICS)
    for module in METRIC_MODULES:
        for metric in vars(importlib.import_module(module)).values():
            if not isinstance(metric, MetricWrapperBase):
                continue
            [family] = metric.describe()
            labels = frozenset(metric._labelnames) | TARGET_LABELS
            for suffix in SUFFIXES[family.type]:
                names[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def dashboard_queries() -> dict[str, str]:
    """``panel title / refId`` → PromQL, Grafana's range variables replaced by fixed ranges."""
    queries = {}
    for panel in panels(dashboard()):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_RANGES.items():
                expr = expr.replace(variable, value)
            queries[f"{panel['title']} / {target['refId']}"] = expr
    return queries


def rule_queries() -> dict[str, str]:
    return {
        rule.get("alert") or rule["record"]: rule["expr"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
    }


_SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*(?:\[[^\]]*\])?")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_LABEL_REPLACE = re.compile(
    r",\s*\"([a-zA-Z_][a-zA-Z0-9_]*)\"\s*,\s*\"[^\"]*\"\s*,\s*\"[a-zA-Z_][a-zA-Z0-9_]*\"\s*,"
    r"\s*\"[^\"]*\"\s*\)"
)


def problems(expr: str, known: dict[str, frozenset[str]]) -> list[str]:
    """Metric names that the code does not expose, and labels that the metrics named do not carry."""
    found: list[str] = []
    used: dict[str, frozenset[str]] = {}
    for name, _ in _SELECTOR.findall(re.sub(r'"[^"]*"', '""', expr)):
        if not (name.startswith("shouwang_") or name in OTHER_METRICS):
            continue  # a function, keyword or label name
        if name not in known:
            found.append(f"unknown metric {name}")
            continue
        used[name] = known[name]
    for name, matchers in _SELECTOR.findall(expr):
        if name in used and matchers:
            found += [f"{name} has no label {label}" for label in _MATCHER.findall(matchers) if label not in used[name]]
    if not used:
        found.append("no Shouwang metric")
    available = frozenset().union(*used.values(), _LABEL_REPLACE.findall(expr))
    for grouping in _GROUPING.findall(expr):
        found += [
            f"no metric here has the label {label}" for label in re.findall(r"\w+", grouping) if label not in available
        ]
    return found
