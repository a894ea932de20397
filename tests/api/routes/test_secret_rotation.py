"""POST /v1/recipients/{id}/rotate-secret with an overlap: a ping right after the rotation is signed with both
the new and the old secret (a receiver on either verifies it); with SHOUWANG_WEBHOOK_SECRET_OVERLAP_H=0 the
old one stops at once. The secrets are never stored in plain text."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from standardwebhooks import WebhookVerificationError

from api.app import create_app
from tests.alerts.webhooks.receiver import Receiver
from tests.api.conftest import ADMIN_TOKEN, bearer, expect, store_of
from tests.api.test_console import console_settings


@pytest.mark.parametrize("overlap_h", [24.0, 0.0])
def test_after_a_rotation_the_old_secret_signs_too_while_the_overlap_lasts(tmp_path: Path, overlap_h: float) -> None:
    settings = console_settings(tmp_path, webhook_allow_hosts="127.0.0.0/8", webhook_secret_overlap_h=overlap_h)
    with Receiver() as receiver, TestClient(create_app(settings)) as client:
        body = {"name": "Daughter", "role": "family", "webhook_url": receiver.url}
        created = expect(client.post("/v1/recipients", headers=bearer(ADMIN_TOKEN), json=body), 201)
        old = created["webhook_secret"]
        path = f"/v1/recipients/{created['id']}"
        new = expect(client.post(f"{path}/rotate-secret", headers=bearer(ADMIN_TOKEN)), 200)["webhook_secret"]
        assert new != old
        assert expect(client.post(f"{path}/ping", headers=bearer(ADMIN_TOKEN)), 200)["outcome"] == "delivered"
        (request,) = receiver.wait_for(1)
        with store_of(client).engine.connect() as connection:
            dumped = str(connection.execute(text("SELECT * FROM webhook_endpoints")).all())
    assert old not in dumped and new not in dumped
    assert receiver.verify_with(new, request)["type"] == "endpoint.ping"
    if overlap_h:
        assert receiver.verify_with(old, request)["type"] == "endpoint.ping"
    else:
        with pytest.raises(WebhookVerificationError):
            receiver.verify_with(old, request)
