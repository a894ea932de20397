"""WeCom: the group robot and application messages (gettoken, the token cache), against the local fakes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.channels.robots import WeComRobot
from alerts.channels.wecom_app import TokenCache, WeComApp
from alerts.statuses import AttemptOutcome
from cli.fakes.wecom import FakeWeComApp, FakeWeComRobot
from tests.alerts.channels.chat_helpers import (
    ADDRESS,
    EXPLANATION,
    NAME,
    long_templates,
    notification,
    send,
    send_times,
)

KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
CORP, SECRET, AGENT = "ww1234567890abcdef", "corp-secret-Abc123_xyz", 1000002


@pytest.fixture
def robot() -> Iterator[FakeWeComRobot]:
    with FakeWeComRobot() as server:
        yield server


@pytest.fixture
def app() -> Iterator[FakeWeComApp]:
    with FakeWeComApp(token_ttl_s=7200) as server:
        server.add_app(CORP, SECRET, AGENT, users=("zhangsan", "lisi"))
        yield server


def app_channel(fake: FakeWeComApp, cache: TokenCache | None = None, **options: object) -> WeComApp:
    settings: dict[str, object] = {"corp_id": CORP, "corp_secret": SECRET, "agent_id": AGENT, "user_ids": ["zhangsan"]}
    settings.update(options)
    return WeComApp(api_base=fake.url, token_cache=cache or TokenCache(clock=fake.now), **settings)  # type: ignore[arg-type]


def test_robot_markdown_leads_with_what_to_do_and_links_without_private_details(robot: FakeWeComRobot) -> None:
    result = send(WeComRobot(robot.add_robot(KEY)), notification())
    assert result.outcome == AttemptOutcome.DELIVERED, result.error
    message = robot.wait_for(1)[0].message
    content = message["markdown"]["content"]
    assert message["msgtype"] == "markdown"
    assert content.startswith("**【高】长时间未用水｜王**")
    assert "[确认收到](https://sw.example/a/ack-TOKEN1)" in content
    for private in (NAME, ADDRESS, "usage_hourly_l", EXPLANATION):
        assert private not in json.dumps(message, ensure_ascii=False)


def test_robot_plain_text_in_english(robot: FakeWeComRobot) -> None:
    channel = WeComRobot(robot.add_robot(KEY), msgtype="text")
    assert send(channel, notification("alert.reminder", language="en")).outcome == AttemptOutcome.DELIVERED
    content = robot.wait_for(1)[0].message["text"]["content"]
    assert content.startswith("[Reminder, still unacknowledged] No water use for a long time | 王**")
    assert "Acknowledge: https://sw.example/a/ack-TOKEN1" in content


def test_robot_with_an_unknown_key_is_rejected_and_the_key_never_shows(robot: FakeWeComRobot) -> None:
    robot.add_robot(KEY)
    url = robot.add_robot("other-key-0000000000").replace("other-key-0000000000", "removed-key-000000000")
    result = send(WeComRobot(url), notification())
    assert result.outcome == AttemptOutcome.REJECT and "93000" in (result.error or "")
    assert robot.messages == []
    assert "removed-key" not in WeComRobot(url).redact(f"error sending to {url}")


def test_robot_rate_limit_is_retried_after_a_minute(robot: FakeWeComRobot) -> None:
    channel = WeComRobot(robot.add_robot(KEY))
    assert {result.outcome for result in send_times(channel, notification(), 20)} == {AttemptOutcome.DELIVERED}
    limited = send(channel, notification())
    assert limited.outcome == AttemptOutcome.RETRY and limited.retry_after_s == 60.0
    robot.advance(61)
    assert send(channel, notification()).outcome == AttemptOutcome.DELIVERED


@pytest.mark.parametrize(("msgtype", "limit"), [("markdown", 4096), ("text", 2048)])
def test_robot_message_too_long_is_shortened_keeping_the_links(
    robot: FakeWeComRobot, tmp_path: Path, msgtype: str, limit: int
) -> None:
    channel = WeComRobot(robot.add_robot(KEY), msgtype=msgtype, templates=long_templates(tmp_path, "wecom_robot"))  # type: ignore[arg-type]
    result = send(channel, notification())
    assert result.outcome == AttemptOutcome.DELIVERED, result.error
    content = robot.wait_for(1)[0].message[msgtype]["content"]
    assert len(content.encode()) <= limit
    assert "…" in content and content.rstrip().endswith("(https://sw.example/a/res-TOKEN2)")


def test_robot_garbage_and_hang_are_retried(robot: FakeWeComRobot) -> None:
    channel = WeComRobot(robot.add_robot(KEY))
    robot.mode = "garbage"
    assert send(channel, notification()).outcome == AttemptOutcome.RETRY
    robot.mode = "hang"
    result = send(channel, notification(), timeout_s=0.3)
    assert result.outcome == AttemptOutcome.RETRY and "timeout" in (result.error or "")


def test_app_message_reaches_the_person_with_name_address_and_explanation(app: FakeWeComApp) -> None:
    result = send(app_channel(app), notification())
    assert result.outcome == AttemptOutcome.DELIVERED, result.error
    message = app.wait_for(1)[0].message
    assert (message["touser"], message["agentid"], message["msgtype"]) == ("zhangsan", AGENT, "markdown")
    content = message["markdown"]["content"]
    assert NAME in content and ADDRESS in content and EXPLANATION in content
    assert "usage_hourly_l" not in content


def test_app_token_is_cached_and_refreshed_before_it_expires(app: FakeWeComApp) -> None:
    cache = TokenCache(clock=app.now, margin_s=300)
    channel = app_channel(app, cache)
    for _ in range(3):
        assert send(channel, notification()).outcome == AttemptOutcome.DELIVERED
    assert app.token_requests == 1
    app.advance(7200 - 299)  # inside the margin: still valid at WeCom, fetched anew here
    assert send(channel, notification()).outcome == AttemptOutcome.DELIVERED
    assert app.token_requests == 2 and app.refusals == []


@pytest.mark.parametrize(("lapse", "code"), [("expire_tokens", 42001), ("revoke_tokens", 40014)])
def test_app_token_refused_is_fetched_again_once_and_the_message_sent(app: FakeWeComApp, lapse: str, code: int) -> None:
    channel = app_channel(app)
    assert send(channel, notification()).outcome == AttemptOutcome.DELIVERED
    getattr(app, lapse)()
    result = send(channel, notification())
    assert result.outcome == AttemptOutcome.DELIVERED, result.error
    assert app.refusals == [code] and app.token_requests == 2 and len(app.messages) == 2


def test_app_wrong_secret_is_rejected_without_showing_it(app: FakeWeComApp) -> None:
    result = send(app_channel(app, corp_secret="wrong-secret-123456"), notification())
    assert result.outcome == AttemptOutcome.REJECT
    assert result.error is not None and "gettoken" in result.error and "40001" in result.error
    assert "wrong-secret-123456" not in app_channel(app, corp_secret="wrong-secret-123456").redact(
        "GET /cgi-bin/gettoken?corpsecret=wrong-secret-123456"
    )
    assert app.messages == []


def test_app_unknown_members_are_rejected_and_partly_unknown_delivered(app: FakeWeComApp) -> None:
    assert send(app_channel(app, user_ids=["nobody"]), notification()).outcome == AttemptOutcome.REJECT
    partly = send(app_channel(app, user_ids=["lisi", "nobody"]), notification())
    assert partly.outcome == AttemptOutcome.DELIVERED and "nobody" in (partly.error or "")


def test_app_message_too_long_is_shortened(app: FakeWeComApp) -> None:
    result = send(app_channel(app), notification(explanation="非常长的说明。" * 800))
    assert result.outcome == AttemptOutcome.DELIVERED, result.error
    content = app.wait_for(1)[0].message["markdown"]["content"]
    assert len(content.encode()) <= 2048 and NAME in content
    assert content.rstrip().endswith("(https://sw.example/a/res-TOKEN2)")


def test_app_garbage_and_hang_are_retried(app: FakeWeComApp) -> None:
    channel = app_channel(app)
    app.mode = "garbage"
    assert send(channel, notification()).outcome == AttemptOutcome.RETRY
    app.mode = "hang"
    result = send(channel, notification(), timeout_s=0.3)
    assert result.outcome == AttemptOutcome.RETRY and "timeout" in (result.error or "")


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        ({"errcode": 0, "errmsg": "ok"}, AttemptOutcome.DELIVERED),
        ({"errcode": 45009, "errmsg": "api freq out of limit"}, AttemptOutcome.RETRY),
        ({"errcode": 93000, "errmsg": "invalid webhook url"}, AttemptOutcome.REJECT),
        ({"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}, AttemptOutcome.REJECT),
        ({"errcode": 12345, "errmsg": "something new"}, AttemptOutcome.RETRY),
    ],
)
def test_robot_judge_reads_the_errcode(body: object, outcome: AttemptOutcome) -> None:
    assert (
        WeComRobot("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")
        .judge(200, json.dumps(body).encode())
        .outcome
        == outcome
    )
