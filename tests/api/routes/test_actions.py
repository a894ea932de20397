"""One-tap action links (``/a/{token}``, alerts/action_links.py): a GET shows the alert and a button and
changes nothing; the button acknowledges or resolves, once, as the recipient; an invalid, expired,
reused or not-allowed link gets a clear page and changes nothing. Real app, real SQLite store; no Kafka."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from alerts.action_links import ActionLinkSigner
from alerts.db import Store
from alerts.models import Delivery, Endpoint, Recipient
from api.app import create_app
from tests.api.conftest import ADMIN_TOKEN, bearer, expect, household_body
from tests.api.test_console import check_security_headers, console_settings, seed_alert

EXPLANATION_ZH_PART = "持续流水"  # from the seeded alert's explanation
AT = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)  # links expire from the notification


@pytest.fixture
def client(tmp_path: Any) -> Iterator[TestClient]:
    settings = console_settings(tmp_path, webhook_allow_hosts="127.0.0.0/8", webhook_require_https=False)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _store(client: TestClient) -> Store:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    return store


def _signer(client: TestClient) -> ActionLinkSigner:
    signer: ActionLinkSigner = client.app.state.link_signer  # type: ignore[attr-defined]
    return signer


def _alert_with_deliveries(
    client: TestClient, meter: str = "SZ-FT-LINK-1", address: str | None = None
) -> tuple[str, dict[str, str]]:
    """An alert told to a family member and a grid worker: its id and each role's delivery id."""
    admin = bearer(ADMIN_TOKEN)
    body = {**household_body("王阿姨", "FT-12-3", "LH"), **({"address": address} if address else {})}
    home = expect(client.post("/v1/households", headers=admin, json=body), 201)
    expect(client.post(f"/v1/households/{home['id']}/meters", headers=admin, json={"meter_id": meter}), 201)
    for name, role, scope in (
        ("女儿", "family", {"household_id": home["id"]}),
        ("网格员", "grid_worker", {"grid_cell": "FT-12-3"}),
    ):
        recipient = expect(
            client.post(
                "/v1/recipients",
                headers=admin,
                json={"name": name, "role": role, "webhook_url": "http://127.0.0.1:9/hook"},
            ),
            201,
        )
        expect(client.post("/v1/subscriptions", headers=admin, json={"recipient_id": recipient["id"], **scope}), 201)
    alert_id = seed_alert(
        _store(client),
        client.app.state.settings,
        meter,
        kind="no_usage",
        since=AT - timedelta(hours=18),
        at=AT,  # type: ignore[attr-defined]
    )
    with _store(client).transaction() as session:
        rows = session.execute(
            select(Recipient.role, Delivery.id)
            .join(Recipient, Delivery.recipient_id == Recipient.id)
            .where(Delivery.alert_id == alert_id)
        ).all()
    return alert_id, {role: delivery_id for role, delivery_id in rows}


def _alert(client: TestClient, alert_id: str) -> Any:
    return expect(client.get(f"/v1/alerts/{alert_id}", headers=bearer(ADMIN_TOKEN)), 200)


def _form_action(html: str) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', html)
    assert match, "the page has no confirm form"
    return match.group(1)


def test_opening_a_link_changes_nothing_and_its_button_acknowledges_once(client: TestClient) -> None:
    alert_id, deliveries = _alert_with_deliveries(client)
    token = _signer(client).token(delivery_id=deliveries["family"], action="acknowledge")
    for _ in range(3):  # chat apps open links to preview them
        page = client.get(f"/a/{token}")
        assert page.status_code == 200
        check_security_headers(page.headers)
        assert "长时间未用水" in page.text and 'id="confirm"' in page.text
    assert _alert(client, alert_id)["status"] == "raised"

    done = client.post(_form_action(page.text))
    assert done.status_code == 200 and 'class="result result-done"' in done.text
    alert = _alert(client, alert_id)
    # A family member's tap says "family has seen it": the staff tiers go on (the alert stays raised).
    assert alert["status"] == "raised" and alert["acknowledged_by"] is None
    assert "女儿" in alert["family_seen_by"] and "via link" in alert["family_seen_by"]

    again = client.post(f"/a/{token}")
    assert again.status_code == 410 and "result-used" in again.text
    assert _alert(client, alert_id)["family_seen_by"] == alert["family_seen_by"]

    staff = _signer(client).token(delivery_id=deliveries["grid_worker"], action="acknowledge")
    assert client.post(f"/a/{staff}").status_code == 200
    alert = _alert(client, alert_id)
    assert alert["status"] == "acknowledged" and "网格员" in alert["acknowledged_by"]


def test_a_grid_worker_resolves_with_an_outcome_from_the_link(client: TestClient) -> None:
    alert_id, deliveries = _alert_with_deliveries(client)
    token = _signer(client).token(delivery_id=deliveries["grid_worker"], action="resolve")
    page = client.get(f"/a/{token}")
    assert '<select id="outcome" name="outcome"' in page.text
    done = client.post(
        _form_action(page.text),
        content=b"outcome=resident_fine&note=%E8%80%81%E4%BA%BA%E5%9C%A8%E5%AE%B6",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200, done.text
    alert = _alert(client, alert_id)
    assert (alert["status"], alert["outcome"], alert["resolution_note"]) == ("resolved", "resident_fine", "老人在家")
    assert "网格员" in alert["resolved_by"]


def test_a_family_member_cannot_resolve_even_with_a_correctly_signed_link(client: TestClient) -> None:
    alert_id, deliveries = _alert_with_deliveries(client)
    token = _signer(client).token(delivery_id=deliveries["family"], action="resolve")
    assert client.get(f"/a/{token}").status_code == 404
    assert client.post(f"/a/{token}", content=b"outcome=false_alarm").status_code == 404
    assert _alert(client, alert_id)["status"] == "raised"


@pytest.mark.parametrize("damage", ["cut", "other_delivery", "flipped", "another_key"])
def test_a_changed_link_is_refused_with_a_clear_page(client: TestClient, damage: str) -> None:
    alert_id, deliveries = _alert_with_deliveries(client)
    token = _signer(client).token(delivery_id=deliveries["family"], action="acknowledge")
    changed = {
        "cut": token[:-5],
        "other_delivery": token.replace(deliveries["family"][4:], deliveries["grid_worker"][4:]),
        "flipped": token[:-1] + ("A" if token[-1] != "A" else "B"),
        "another_key": ActionLinkSigner(["x" * 44]).token(delivery_id=deliveries["family"], action="acknowledge"),
    }[damage]
    page = client.get(f"/a/{changed}")
    assert page.status_code == 404 and "result-invalid" in page.text
    assert client.post(f"/a/{changed}").status_code == 404
    assert _alert(client, alert_id)["status"] == "raised"


def test_an_expired_link_changes_nothing(client: TestClient) -> None:
    alert_id, deliveries = _alert_with_deliveries(client)
    token = _signer(client).token(delivery_id=deliveries["family"], action="acknowledge")
    ttl_h = client.app.state.settings.action_link_ttl_h  # type: ignore[attr-defined]
    with _store(client).transaction() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == deliveries["family"])
            .values(created_at=datetime.now(UTC) - timedelta(hours=ttl_h, minutes=1))
        )
    assert client.get(f"/a/{token}").status_code == 410
    assert "result-expired" in client.post(f"/a/{token}").text
    assert _alert(client, alert_id)["status"] == "raised"


def test_a_link_to_an_alert_someone_else_handled_says_so(client: TestClient) -> None:
    alert_id, deliveries = _alert_with_deliveries(client)
    expect(client.post(f"/v1/alerts/{alert_id}/ack", headers=bearer(ADMIN_TOKEN)), 200)
    token = _signer(client).token(delivery_id=deliveries["family"], action="acknowledge")
    page = client.get(f"/a/{token}")
    assert page.status_code == 200 and "result-closed" in page.text and 'id="confirm"' not in page.text


def test_a_link_from_a_group_chat_shows_no_more_than_the_group_message(client: TestClient) -> None:
    _, deliveries = _alert_with_deliveries(client)
    with _store(client).transaction() as session:  # the grid worker's channel is a DingTalk group robot
        endpoint_id = session.get(Delivery, deliveries["grid_worker"]).endpoint_id  # type: ignore[union-attr]
        session.execute(update(Endpoint).where(Endpoint.id == endpoint_id).values(type="dingtalk_robot"))
    group = client.get(f"/a/{_signer(client).token(delivery_id=deliveries['grid_worker'], action='acknowledge')}")
    assert group.status_code == 200 and "王**" in group.text
    for private in ("王阿姨", EXPLANATION_ZH_PART):
        assert private not in group.text
    person = client.get(f"/a/{_signer(client).token(delivery_id=deliveries['family'], action='acknowledge')}")
    assert "王阿姨" in person.text  # the daughter's own channel: she knows her mother


def test_a_family_members_link_page_names_the_elder_as_their_message_does_without_the_address(
    client: TestClient,
) -> None:
    _, deliveries = _alert_with_deliveries(client, address="莲花路 12 号 3 栋 501")
    family = client.get(f"/a/{_signer(client).token(delivery_id=deliveries['family'], action='acknowledge')}")
    assert family.status_code == 200
    # The family's message has no address (alerts/payloads.py, family view): neither has the page it links to.
    assert "莲花路" not in family.text and "王阿姨" in family.text
    staff = client.get(f"/a/{_signer(client).token(delivery_id=deliveries['grid_worker'], action='acknowledge')}")
    assert "王阿姨 · 莲花路 12 号 3 栋 501" in staff.text, "the grid worker's page keeps where to go"
