"""The DingTalk robot channel against the local fake, which recomputes DingTalk's signature itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
import pytest

from alerts.channels.robots import DingTalkRobot, dingtalk_sign
from alerts.statuses import AttemptOutcome
from cli.fakes import dingtalk as fake_dingtalk
from cli.fakes.dingtalk import FakeDingTalk
from tests.alerts.channels.chat_helpers import ADDRESS, NAME, digest, long_templates, notification, send, send_times

TOKEN = "d" * 64
SECRET = "SEC" + "5f" * 32


@pytest.fixture
def fake() -> Iterator[FakeDingTalk]:
    with FakeDingTalk() as server:
        yield server


def test_a_signed_message_is_delivered_as_an_action_card_without_private_details(fake: FakeDingTalk) -> None:
    channel = DingTalkRobot(fake.add_robot(TOKEN, secret=SECRET), secret=SECRET)
    result = send(channel, notification())
    assert result.outcome == AttemptOutcome.DELIVERED, result.error
    [received] = fake.wait_for(1)
    card = received.message["actionCard"]
    assert received.message["msgtype"] == "actionCard"
    assert [(b["title"], b["actionURL"]) for b in card["btns"]] == [
        ("确认收到", "https://sw.example/a/ack-TOKEN1"),
        ("已处理", "https://sw.example/a/res-TOKEN2"),
    ]
    text = json.dumps(received.message, ensure_ascii=False)
    assert card["text"].splitlines()[2] == "**请电话或上门确认老人是否安好**"  # what to do comes first
    assert "王**" in text and "3栋" in text
    for private in (NAME, ADDRESS, "usage_hourly_l", "07:20", "SZ-FT-0001"):
        assert private not in text


def test_without_actions_a_markdown_message(fake: FakeDingTalk) -> None:
    channel = DingTalkRobot(fake.add_robot(TOKEN), templates=None)
    assert send(channel, notification(actions=())).outcome == AttemptOutcome.DELIVERED
    message = fake.wait_for(1)[0].message
    assert message["msgtype"] == "markdown"
    assert message["markdown"]["title"] == "【高】长时间未用水｜王**"


def test_a_digest_is_one_markdown_message_listing_each_alert(fake: FakeDingTalk) -> None:
    channel = DingTalkRobot(fake.add_robot(TOKEN, secret=SECRET), secret=SECRET)
    assert (
        send(channel, digest(("alert.raised", "alert.reminder", "alert.resolved"))).outcome == AttemptOutcome.DELIVERED
    )
    markdown = fake.wait_for(1)[0].message["markdown"]
    assert markdown["title"] == "【汇总】3 条告警"
    assert markdown["text"].count("\n- 【") == 3 and NAME not in markdown["text"]


def test_one_action_is_a_single_button(fake: FakeDingTalk) -> None:
    channel = DingTalkRobot(fake.add_robot(TOKEN))
    link = notification().actions[0]
    assert send(channel, notification(actions=(link,))).outcome == AttemptOutcome.DELIVERED
    card = fake.wait_for(1)[0].message["actionCard"]
    assert (card["singleTitle"], card["singleURL"]) == ("确认收到", link.url)


def test_the_signature_matches_a_published_vector_and_the_fake_agrees() -> None:
    # The vector comes from a third-party DingTalk client's test suite, not from this code.
    assert (
        quote(dingtalk_sign("secret", 1700000000000), safe="") == "OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D"
    )
    assert fake_dingtalk.expected_sign("secret", "1700000000000") == dingtalk_sign("secret", 1700000000000)


def test_the_signature_is_url_encoded_exactly_once(fake: FakeDingTalk) -> None:
    channel = DingTalkRobot(fake.add_robot(TOKEN, secret=SECRET), secret=SECRET)
    for _ in range(6):  # a base64 signature with + / = in it is all but certain within a few
        assert send(channel, notification()).outcome == AttemptOutcome.DELIVERED
    raw = [received.request.raw_query for received in fake.wait_for(6)]
    assert not any("%25" in query for query in raw)
    assert any("%2B" in query or "%2F" in query or "%3D" in query for query in raw)


def test_a_double_encoded_signature_is_refused_by_the_fake(fake: FakeDingTalk) -> None:
    url = fake.add_robot(TOKEN, secret=SECRET)
    timestamp = int(datetime.now(UTC).timestamp() * 1000)
    twice = quote(quote(dingtalk_sign(SECRET, timestamp), safe=""), safe="")
    body = {"msgtype": "text", "text": {"content": "hello"}}
    answer = httpx.post(f"{url}&timestamp={timestamp}&sign={twice}", json=body, trust_env=False).json()
    assert answer["errcode"] == 310000
    once = urlencode({"timestamp": timestamp, "sign": dingtalk_sign(SECRET, timestamp)})
    assert httpx.post(f"{url}&{once}", json=body, trust_env=False).json()["errcode"] == 0


def test_a_wrong_secret_is_rejected_and_never_delivered(fake: FakeDingTalk) -> None:
    channel = DingTalkRobot(fake.add_robot(TOKEN, secret=SECRET), secret="SEC" + "0" * 64)
    result = send(channel, notification())
    assert result.outcome == AttemptOutcome.REJECT
    assert result.error is not None and "310000" in result.error
    assert fake.messages == [] and fake.refusals == [310000]
    assert TOKEN not in result.error and "SEC" not in result.error


def test_a_stale_timestamp_is_rejected(fake: FakeDingTalk) -> None:
    channel = DingTalkRobot(fake.add_robot(TOKEN, secret=SECRET), secret=SECRET)
    result = send(channel, notification(), now=datetime.now(UTC) - timedelta(hours=2))
    assert result.outcome == AttemptOutcome.REJECT and fake.messages == []


def test_a_missing_signature_is_rejected_when_the_robot_signs(fake: FakeDingTalk) -> None:
    channel = DingTalkRobot(fake.add_robot(TOKEN, secret=SECRET))
    assert send(channel, notification()).outcome == AttemptOutcome.REJECT
    assert fake.refusals == [310000]


def test_an_unknown_robot_is_rejected(fake: FakeDingTalk) -> None:
    fake.add_robot(TOKEN)
    channel = DingTalkRobot(fake.robot_url("e" * 64))
    result = send(channel, notification())
    assert result.outcome == AttemptOutcome.REJECT and "300001" in (result.error or "")


def test_a_keyword_group_gets_the_keyword(fake: FakeDingTalk) -> None:
    url = fake.add_robot(TOKEN, keywords=("守望告警",))
    assert send(DingTalkRobot(url), notification()).outcome == AttemptOutcome.REJECT
    assert send(DingTalkRobot(url, keyword="守望告警"), notification()).outcome == AttemptOutcome.DELIVERED
    assert "守望告警" in fake.wait_for(1)[0].message["actionCard"]["title"]


def test_throttled_past_20_a_minute_for_ten_minutes(fake: FakeDingTalk) -> None:
    channel = DingTalkRobot(fake.add_robot(TOKEN, secret=SECRET), secret=SECRET)
    assert {result.outcome for result in send_times(channel, notification(), 20)} == {AttemptOutcome.DELIVERED}
    throttled = send(channel, notification())
    assert throttled.outcome == AttemptOutcome.RETRY
    assert throttled.retry_after_s is not None and 500 <= throttled.retry_after_s <= 700
    fake.advance(120)  # the minute has passed, the mute has not
    assert send(channel, notification()).outcome == AttemptOutcome.RETRY
    fake.advance(600)
    assert send(channel, notification()).outcome == AttemptOutcome.DELIVERED
    assert len(fake.messages) == 21


@pytest.mark.parametrize("status", [200, 502])
def test_garbage_html_is_retried(fake: FakeDingTalk, status: int) -> None:
    channel = DingTalkRobot(fake.add_robot(TOKEN))
    fake.mode, fake.garbage_status = "garbage", status
    result = send(channel, notification())
    assert result.outcome == AttemptOutcome.RETRY and result.status_code == status


def test_a_hanging_robot_is_retried_after_the_timeout(fake: FakeDingTalk) -> None:
    channel = DingTalkRobot(fake.add_robot(TOKEN, secret=SECRET), secret=SECRET)
    fake.mode = "hang"
    result = send(channel, notification(), timeout_s=0.3)
    assert result.outcome == AttemptOutcome.RETRY and "timeout" in (result.error or "")
    assert result.duration_s < 2


def test_a_message_too_long_is_shortened_not_refused(fake: FakeDingTalk, tmp_path: Path) -> None:
    templates = long_templates(tmp_path, "dingtalk_robot", repeat=6000)  # ~108 KB of text
    channel = DingTalkRobot(fake.add_robot(TOKEN), templates=templates)
    assert send(channel, notification(actions=())).outcome == AttemptOutcome.DELIVERED
    received = fake.wait_for(1)[0]
    assert len(received.request.body) <= fake_dingtalk.MAX_BODY_BYTES
    text = received.message["markdown"]["text"]
    assert "**请电话或上门确认老人是否安好**" in text and text.endswith("…")


def test_errors_never_show_the_token_or_the_secret() -> None:
    channel = DingTalkRobot(f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}", secret=SECRET)
    leaked = f"POST https://oapi.dingtalk.com/robot/send?access_token={TOKEN} failed with {SECRET}"
    assert TOKEN not in channel.redact(leaked) and SECRET not in channel.redact(leaked)


@pytest.mark.parametrize(
    ("status", "body", "outcome", "retry_after"),
    [
        (200, {"errcode": 0, "errmsg": "ok"}, AttemptOutcome.DELIVERED, None),
        (200, {"errcode": "0", "errmsg": "ok"}, AttemptOutcome.DELIVERED, None),
        (200, {"errcode": 130101, "errmsg": "send too fast"}, AttemptOutcome.RETRY, 600.0),
        (200, {"errcode": 310000, "errmsg": "sign not match"}, AttemptOutcome.REJECT, None),
        (200, {"errcode": 300001, "errmsg": "token is not exist"}, AttemptOutcome.REJECT, None),
        (200, {"errcode": 400102, "errmsg": "robot stopped"}, AttemptOutcome.REJECT, None),
        (200, {"errcode": 460101, "errmsg": "too long"}, AttemptOutcome.REJECT, None),
        (200, {"errcode": -1, "errmsg": "系统繁忙"}, AttemptOutcome.RETRY, None),
        (200, {"errcode": 410100, "errmsg": "send too fast"}, AttemptOutcome.RETRY, None),  # not documented: retry
        (200, {"ok": True}, AttemptOutcome.RETRY, None),  # JSON, but not DingTalk's answer
        (404, {"message": "not found"}, AttemptOutcome.REJECT, None),
    ],
)
def test_judge_reads_the_errcode(status: int, body: object, outcome: AttemptOutcome, retry_after: float | None) -> None:
    verdict = DingTalkRobot("https://oapi.dingtalk.com/robot/send?access_token=x").judge(
        status, json.dumps(body).encode()
    )
    assert (verdict.outcome, verdict.retry_after_s) == (outcome, retry_after)
