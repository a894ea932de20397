"""The Feishu bot channel against the local fake, which recomputes Feishu's signature itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.channels.robots import FeishuBot, feishu_sign
from alerts.statuses import AttemptOutcome
from cli.fakes import feishu as fake_feishu
from cli.fakes.feishu import FakeFeishu
from tests.alerts.channels.chat_helpers import ADDRESS, NAME, long_templates, notification, send, send_times

TOKEN = "2f3e1b0c-1d4e-4a5b-9c8d-7e6f5a4b3c2d"
SECRET = "qvmS3kMFxxxxhwYQ1aG7Ob"


@pytest.fixture
def fake() -> Iterator[FakeFeishu]:
    with FakeFeishu() as server:
        yield server


def test_a_signed_card_with_buttons_is_delivered_without_private_details(fake: FakeFeishu) -> None:
    result = send(FeishuBot(fake.add_bot(TOKEN, secret=SECRET), secret=SECRET), notification())
    assert result.outcome == AttemptOutcome.DELIVERED, result.error
    message = fake.wait_for(1)[0].message
    assert message["msg_type"] == "interactive"
    card = message["card"]
    assert card["header"]["title"]["content"] == "【高】长时间未用水｜王**"
    assert card["header"]["template"] == "red"
    buttons = card["elements"][-1]["actions"]
    assert [(b["text"]["content"], b["url"]) for b in buttons] == [
        ("确认收到", "https://sw.example/a/ack-TOKEN1"),
        ("已处理", "https://sw.example/a/res-TOKEN2"),
    ]
    body = card["elements"][0]["text"]["content"]
    assert body.startswith("**请电话或上门确认老人是否安好**")
    assert "https://" not in body  # the links are buttons, not repeated in the text
    text = json.dumps(message, ensure_ascii=False)
    for private in (NAME, ADDRESS, "usage_hourly_l", "07:20"):
        assert private not in text


def test_a_resolved_card_is_green_in_english(fake: FakeFeishu) -> None:
    bot = FeishuBot(fake.add_bot(TOKEN))
    assert send(bot, notification("alert.resolved", language="en", actions=())).outcome == AttemptOutcome.DELIVERED
    card = fake.wait_for(1)[0].message["card"]
    assert card["header"]["template"] == "green"
    assert "Outcome: the resident is fine" in card["elements"][0]["text"]["content"]
    assert "她在家" not in json.dumps(card, ensure_ascii=False)  # a resolver's note is not for a group


def test_the_signature_is_keyed_by_timestamp_and_secret_over_an_empty_message() -> None:
    by_hand = base64.b64encode(hmac.new(b"1599360473\nsecret", b"", hashlib.sha256).digest()).decode()
    assert feishu_sign("secret", 1599360473) == by_hand == fake_feishu.expected_sign("secret", "1599360473")
    # DingTalk's arrangement (key = secret, message = timestamp + secret) gives another signature.
    assert hmac.new(b"secret", b"1599360473\nsecret", hashlib.sha256).digest() != base64.b64decode(by_hand)


def test_the_timestamp_is_in_seconds_in_the_body(fake: FakeFeishu) -> None:
    now = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    request = FeishuBot(fake.add_bot(TOKEN, secret=SECRET), secret=SECRET).render(notification(), now=now)
    body = json.loads(request.body)
    assert body["timestamp"] == str(int(now.timestamp())) and body["sign"] == feishu_sign(SECRET, int(now.timestamp()))


def test_a_wrong_secret_is_rejected_and_never_delivered(fake: FakeFeishu) -> None:
    result = send(FeishuBot(fake.add_bot(TOKEN, secret=SECRET), secret="wrongSecret123"), notification())
    assert result.outcome == AttemptOutcome.REJECT and "19021" in (result.error or "")
    assert fake.messages == [] and fake.refusals == [19021]
    assert "wrongSecret123" not in (result.error or "") and TOKEN not in (result.error or "")


def test_a_stale_timestamp_is_rejected(fake: FakeFeishu) -> None:
    bot = FeishuBot(fake.add_bot(TOKEN, secret=SECRET), secret=SECRET)
    result = send(bot, notification(), now=datetime.now(UTC) - timedelta(hours=1, minutes=5))
    assert result.outcome == AttemptOutcome.REJECT and fake.messages == []


def test_a_keyword_mismatch_is_rejected(fake: FakeFeishu) -> None:
    url = fake.add_bot(TOKEN, keywords=("守望告警",))
    result = send(FeishuBot(url), notification())
    assert result.outcome == AttemptOutcome.REJECT and "19024" in (result.error or "")
    assert send(FeishuBot(url, keyword="守望告警"), notification()).outcome == AttemptOutcome.DELIVERED


def test_an_unknown_bot_is_rejected(fake: FakeFeishu) -> None:
    fake.add_bot(TOKEN)
    result = send(FeishuBot(f"{fake.url}{fake_feishu.PREFIX}{'0' * 36}"), notification())
    assert result.outcome == AttemptOutcome.REJECT and "19001" in (result.error or "")


def test_more_than_five_a_second_then_a_hundred_a_minute_is_retried() -> None:
    started = time.time()
    with FakeFeishu(clock=lambda: started) as fake:  # a still clock: every send falls in the same second
        bot = FeishuBot(fake.add_bot(TOKEN, secret=SECRET), secret=SECRET)
        outcomes = [result.outcome for result in send_times(bot, notification(), 6)]
        assert outcomes == [AttemptOutcome.DELIVERED] * 5 + [AttemptOutcome.RETRY]
        assert fake.refusals == [11232]
        for _ in range(19):  # 5 a second for 19 more seconds: 100 within the minute
            fake.advance(1.0)
            assert [r.outcome for r in send_times(bot, notification(), 5)] == [AttemptOutcome.DELIVERED] * 5
        fake.advance(1.0)
        limited = send(bot, notification())
        assert limited.outcome == AttemptOutcome.RETRY and limited.retry_after_s == 60.0
        assert len(fake.messages) == 100


def test_the_rate_limit_answer_is_retried_with_a_delay() -> None:
    verdict = FeishuBot("https://open.feishu.cn/open-apis/bot/v2/hook/x").judge(
        200, b'{"code":11232,"data":{},"msg":"frequency limited"}'
    )
    assert verdict.outcome == AttemptOutcome.RETRY and verdict.retry_after_s == 60.0


def test_the_older_answer_shape_counts_as_success(fake: FakeFeishu) -> None:
    fake.legacy_answers = True
    assert send(FeishuBot(fake.add_bot(TOKEN)), notification()).outcome == AttemptOutcome.DELIVERED


@pytest.mark.parametrize("status", [200, 502])
def test_garbage_html_is_retried(fake: FakeFeishu, status: int) -> None:
    bot = FeishuBot(fake.add_bot(TOKEN))
    fake.mode, fake.garbage_status = "garbage", status
    assert send(bot, notification()).outcome == AttemptOutcome.RETRY


def test_a_hanging_bot_is_retried_after_the_timeout(fake: FakeFeishu) -> None:
    bot = FeishuBot(fake.add_bot(TOKEN))
    fake.mode = "hang"
    result = send(bot, notification(), timeout_s=0.3)
    assert result.outcome == AttemptOutcome.RETRY and "timeout" in (result.error or "")


def test_a_message_too_long_is_shortened_not_refused(fake: FakeFeishu, tmp_path: Path) -> None:
    bot = FeishuBot(fake.add_bot(TOKEN, secret=SECRET), secret=SECRET, templates=long_templates(tmp_path, "feishu_bot"))
    result = send(bot, notification())
    assert result.outcome == AttemptOutcome.DELIVERED, result.error
    received = fake.wait_for(1)[0]
    assert len(received.request.body) <= fake_feishu.MAX_BODY_BYTES
    assert received.message["card"]["elements"][0]["text"]["content"].startswith("**请电话或上门确认老人是否安好**")
    assert len(received.message["card"]["elements"][-1]["actions"]) == 2


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        ({"code": 0, "data": {}, "msg": "success"}, AttemptOutcome.DELIVERED),
        ({"Extra": None, "StatusCode": 0, "StatusMessage": "success"}, AttemptOutcome.DELIVERED),
        ({"code": 19021, "msg": "sign match fail"}, AttemptOutcome.REJECT),
        ({"code": 19024, "msg": "Key Words Not Found"}, AttemptOutcome.REJECT),
        ({"code": 9499, "msg": "Bad Request"}, AttemptOutcome.REJECT),
        ({"code": 2200, "msg": "internal error"}, AttemptOutcome.RETRY),
        ({"StatusCode": 19021, "StatusMessage": "sign match fail"}, AttemptOutcome.REJECT),
    ],
)
def test_judge_reads_the_code(body: object, outcome: AttemptOutcome) -> None:
    bot = FeishuBot("https://open.feishu.cn/open-apis/bot/v2/hook/x")
    assert bot.judge(200, json.dumps(body).encode()).outcome == outcome
