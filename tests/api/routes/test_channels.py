"""Recipients on typed channels through the API: a DingTalk robot registered, masked, pinged against a
local fake of DingTalk that recomputes the signature; a wrong secret is never delivered and shows as
failing; a vendor URL given as a webhook or a channel that is not set up is refused, naming why."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from cli.fakes.dingtalk import FakeDingTalk
from tests.api.conftest import ADMIN_TOKEN, bearer, expect
from tests.api.test_console import console_settings

TOKEN = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
SECRET = "SEC0123456789abcdef0123456789abcdef"
ROBOT_URL = "https://oapi.dingtalk.com/robot/send?access_token=" + TOKEN


@pytest.fixture
def dingtalk() -> Iterator[FakeDingTalk]:
    with FakeDingTalk() as fake:
        yield fake


@pytest.fixture
def client(tmp_path: Any) -> Iterator[TestClient]:
    settings = console_settings(tmp_path, webhook_allow_hosts="127.0.0.0/8")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _recipient(client: TestClient, channel: dict[str, Any], status: int = 201) -> Any:
    body = {"name": "网格员 12-3 群", "role": "grid_worker", "channel": channel}
    return expect(client.post("/v1/recipients", headers=bearer(ADMIN_TOKEN), json=body), status)


def test_a_dingtalk_robot_is_registered_masked_and_pinged_with_a_signature_dingtalk_accepts(
    client: TestClient, dingtalk: FakeDingTalk
) -> None:
    url = dingtalk.add_robot(TOKEN, secret=SECRET)
    created = _recipient(client, {"type": "dingtalk_robot", "url": url, "secret": SECRET})
    shown = str(created) + str(expect(client.get(f"/v1/recipients/{created['id']}", headers=bearer(ADMIN_TOKEN)), 200))
    assert created["channel"]["type"] == "dingtalk_robot" and created["channel"]["status"] == "active"
    assert TOKEN not in shown and SECRET not in shown, "credentials are never shown after creation"
    assert created["webhook_url"] is None and created["webhook_secret"] is None

    ping = expect(client.post(f"/v1/recipients/{created['id']}/ping", headers=bearer(ADMIN_TOKEN)), 200)
    assert ping["outcome"] == "delivered", ping
    (message,) = dingtalk.wait_for(1)
    assert "测试" in str(message.message)


def test_a_wrong_secret_is_never_delivered_and_the_channel_shows_as_failing(
    client: TestClient, dingtalk: FakeDingTalk
) -> None:
    url = dingtalk.add_robot(TOKEN, secret=SECRET)
    created = _recipient(client, {"type": "dingtalk_robot", "url": url, "secret": "SEC" + "f" * 32})
    ping = expect(client.post(f"/v1/recipients/{created['id']}/ping", headers=bearer(ADMIN_TOKEN)), 200)
    assert ping["outcome"] == "reject" and "310000" in ping["error"]
    assert not dingtalk.messages and dingtalk.refusals == [310000]
    channel = expect(client.get(f"/v1/recipients/{created['id']}", headers=bearer(ADMIN_TOKEN)), 200)["channel"]
    assert channel["failing_since"] is not None and "310000" in channel["last_error"]
    assert "f" * 32 not in str(channel)


def test_a_robot_url_given_as_a_webhook_names_the_type_to_use(client: TestClient, dingtalk: FakeDingTalk) -> None:
    url = ROBOT_URL
    refused = _recipient(client, {"type": "webhook", "url": url}, 422)
    assert "dingtalk_robot" in refused["error"]["message"]
    shorthand = {"name": "n", "role": "family", "webhook_url": url}
    refused = expect(client.post("/v1/recipients", headers=bearer(ADMIN_TOKEN), json=shorthand), 422)
    assert "dingtalk_robot" in refused["error"]["message"]
    as_wecom = _recipient(client, {"type": "wecom_robot", "url": url}, 422)
    assert "dingtalk_robot" in as_wecom["error"]["message"]


@pytest.mark.parametrize(
    ("channel", "field"),
    [
        ({"type": "dingtalk_robot", "url": "https://oapi.dingtalk.com/robot/send"}, "channel.url"),
        (
            {
                "type": "dingtalk_robot",
                "url": "https://oapi.dingtalk.com/robot/send?access_token=" + TOKEN,
                "secret": "not-a-SEC-secret",
            },
            "channel.secret",
        ),
        (
            {
                "type": "dingtalk_robot",
                "url": "https://oapi.dingtalk.com/robot/send?access_token=" + TOKEN,
                "secert": SECRET,
            },
            "channel.secert",
        ),
        ({"type": "sms", "phone": "13800138000"}, "channel.type"),  # SMS is not set up in this deployment
        ({"type": "email", "address": "daughter@example.com"}, "channel.type"),  # nor email
        ({"type": "pager"}, "channel.type"),
    ],
)
def test_a_bad_channel_is_refused_with_the_field_named(client: TestClient, channel: dict[str, Any], field: str) -> None:
    refused = _recipient(client, channel, 422)
    named = refused["error"]["message"] + str(refused["error"].get("details"))
    assert field in named or field.removeprefix("channel.") in named, refused
