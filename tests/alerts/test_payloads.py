"""Every webhook body the pipeline records matches the published schema."""

from __future__ import annotations

import json
from datetime import timedelta

import jsonschema
from sqlalchemy import select

from alerts.db import Store
from alerts.lifecycle import escalate_due, remind_due
from alerts.models import Delivery
from alerts.payloads import ping_payload
from alerts.pipeline import RouterConfig
from shouwang.settings import REPO_ROOT
from tests.alerts.conftest import T0, build_world
from tests.alerts.test_pipeline import event, route

SCHEMA = json.loads((REPO_ROOT / "docs" / "webhook-payload.schema.json").read_text())


def test_all_payload_types_match_the_schema(store: Store, config: RouterConfig) -> None:
    build_world(store)
    route(store, config, event("MA", severity="critical"), T0)
    route(store, config, event("MB", kind="continuous_flow"), T0)
    with store.transaction() as session:
        escalate_due(session, now=T0 + timedelta(minutes=20), config=config)
        remind_due(session, now=T0 + timedelta(hours=5), config=config)
    route(store, config, event("MB", kind="continuous_flow", transition="resolved"), T0 + timedelta(hours=6))
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    with store.transaction() as session:
        bodies = [json.loads(d.payload) for d in session.scalars(select(Delivery))]
    assert {b["type"] for b in bodies} == {"alert.raised", "alert.escalated", "alert.reminder", "alert.resolved"}
    bodies.append(json.loads(ping_payload(endpoint_id="ep_1", now=T0)))
    for body in bodies:
        validator.validate(body)


def test_schema_rejects_a_wrong_body() -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    assert not validator.is_valid({"type": "alert.raised", "timestamp": "x", "data": {"alert_id": "nope"}})
