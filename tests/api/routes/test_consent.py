"""Consent through the API: only an operator records a withdrawal or a grant, with who and on what
evidence, kept as history; from the withdrawal on, the household's readings are refused at ingest."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.api.conftest import ADMIN_TOKEN, World, bearer, expect


def test_withdrawal_is_an_operators_with_evidence_and_stops_readings(world: World) -> None:
    home, meter = world.fresh_home("C1", "CM1")
    family = world.call("family", "POST", f"/v1/households/{home}/consent/withdraw", json={"by": "x", "evidence": "y"})
    assert family.status_code in {403, 404}  # never the family's to record
    no_evidence = world.call("operator", "POST", f"/v1/households/{home}/consent/withdraw", json={"by": "the elder"})
    assert expect(no_evidence, 422)["error"]["message"].startswith("evidence")
    body = {"by": "the elder", "evidence": "signed form 2026-12-06"}
    done = expect(world.call("operator", "POST", f"/v1/households/{home}/consent/withdraw", json=body), 200)
    assert done["consent"]["withdrawn_by"] == "the elder"
    again = world.call("operator", "POST", f"/v1/households/{home}/consent/withdraw", json=body)
    assert expect(again, 409)["error"]["code"] == "conflict"

    reading = {"meter_id": meter, "ts": datetime.now(UTC).isoformat(), "register_l": 1.0}
    refused = expect(world.client.post("/v1/readings", json=[reading], headers=bearer(ADMIN_TOKEN)), 422)
    assert "consent for its household was withdrawn" in refused["error"]["message"]

    grant = {"by": "the elder", "evidence": "new form", "scope": "用水异常提醒家属和网格员"}
    expect(world.call("operator", "POST", f"/v1/households/{home}/consent/grant", json=grant), 200)
    shown = world.op("GET", f"/v1/households/{home}", 200)
    assert [(e["action"], e["evidence"]) for e in shown["consent"]["history"]] == [
        ("withdrawn", "signed form 2026-12-06"),
        ("granted", "new form"),
    ]
    assert expect(world.client.post("/v1/readings", json=[reading], headers=bearer(ADMIN_TOKEN)), 202)["accepted"] == 1
