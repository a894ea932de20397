"""Registration checks: each refusal names its field (for a 422), and a vendor URL names its type."""

from __future__ import annotations

from typing import Any

import pytest

from alerts.channels.robots import DingTalkRobot
from alerts.channels.validation import (
    ChannelConfigError,
    allowlist_predicate,
    type_for_url,
    validate,
    validate_email_address,
)
from alerts.statuses import AttemptOutcome
from cli.fakes.dingtalk import FakeDingTalk
from tests.alerts.channels.chat_helpers import notification, send

DINGTALK = "https://oapi.dingtalk.com/robot/send?access_token=" + "a1" * 32
WECOM = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7aaa-4bc4-97a0-0ec2sifa5aaa"
FEISHU = "https://open.feishu.cn/open-apis/bot/v2/hook/2f3e1b0c-1d4e-4a5b-9c8d-7e6f5a4b3c2d"
LOOPBACK = allowlist_predicate(["127.0.0.0/8"])
APP = {"corp_id": "ww1234567890abcdef", "corp_secret": "corp-secret-Abc123", "agent_id": 1000002, "user_ids": ["zs"]}


def refused(channel_type: str, config: dict[str, Any], **options: Any) -> ChannelConfigError:
    with pytest.raises(ChannelConfigError) as raised:
        validate(channel_type, config, **options)
    return raised.value


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (DINGTALK, "dingtalk_robot"),
        (WECOM, "wecom_robot"),
        (FEISHU, "feishu_bot"),
        ("https://open.larksuite.com/open-apis/bot/v2/hook/abc", "feishu_bot"),
        ("http://127.0.0.1:8080/robot/send?access_token=x", "dingtalk_robot"),  # a fake on loopback, by its path
        ("https://hooks.example.com/robot/send", "dingtalk_robot"),
        ("https://partner.example.com/shouwang/hook", None),
        ("https://qyapi.weixin.qq.com/cgi-bin/message/send?access_token=x", "wecom_robot"),
        ("not a url", None),
    ],
)
def test_type_for_url(url: str, expected: str | None) -> None:
    assert type_for_url(url) == expected


@pytest.mark.parametrize(
    ("registered", "url", "named"),
    [
        ("wecom_robot", DINGTALK, "dingtalk_robot"),
        ("dingtalk_robot", FEISHU, "feishu_bot"),
        ("feishu_bot", WECOM, "wecom_robot"),
    ],
)
def test_a_vendor_url_under_another_type_names_the_right_type(registered: str, url: str, named: str) -> None:
    error = refused(registered, {"url": url})
    assert error.field == "url" and f"register it as type {named}" in str(error)


def test_valid_robots_give_their_constructor_arguments() -> None:
    secret = "SEC" + "ab" * 32
    assert validate("dingtalk_robot", {"url": DINGTALK, "secret": secret}) == {
        "url": DINGTALK,
        "secret": secret,
        "keyword": None,
    }
    assert validate("wecom_robot", {"url": WECOM, "msgtype": "text"}) == {"url": WECOM, "msgtype": "text"}
    assert (
        validate("feishu_bot", {"url": FEISHU, "secret": "qvmS3kMFxxxxhwYQ1aG7Ob", "keyword": "守望"})["keyword"]
        == "守望"
    )


@pytest.mark.parametrize(
    ("channel_type", "config", "field", "words"),
    [
        ("dingtalk_robot", {"url": DINGTALK, "secret": "abc123abc123abc123abc"}, "secret", "starts with SEC"),
        ("dingtalk_robot", {"url": DINGTALK.replace("https", "http")}, "url", "https"),
        ("dingtalk_robot", {"url": "https://oapi.dingtalk.com/robot/send"}, "url", "access_token"),
        (
            "dingtalk_robot",
            {"url": "https://evil.example.com/robot/send?access_token=" + "a" * 64},
            "url",
            "oapi.dingtalk.com",
        ),
        ("dingtalk_robot", {"url": DINGTALK, "secert": "SEC" + "a" * 64}, "secert", "unknown field"),
        ("dingtalk_robot", {}, "url", "required"),
        ("dingtalk_robot", {"url": DINGTALK, "keyword": "x" * 65}, "keyword", "64"),
        ("wecom_robot", {"url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"}, "url", "key"),
        ("wecom_robot", {"url": WECOM, "msgtype": "news"}, "msgtype", "markdown or text"),
        (
            "wecom_robot",
            {"url": "https://user:pw@qyapi.weixin.qq.com/cgi-bin/webhook/send?key=" + "k" * 20},
            "url",
            "credentials",
        ),
        ("feishu_bot", {"url": FEISHU, "secret": "has spaces in it"}, "secret", "letters and digits"),
        ("feishu_bot", {"url": "https://open.feishu.cn/open-apis/bot/v2/hook/"}, "url", "<token>"),
        ("wecom_app", {**APP, "user_ids": ["@all"]}, "user_ids", "@all"),
        ("wecom_app", {**APP, "user_ids": []}, "user_ids", "member ids"),
        ("wecom_app", {**APP, "agent_id": -3}, "agent_id", "positive integer"),
        ("wecom_app", {**APP, "agent_id": True}, "agent_id", "positive integer"),
        ("wecom_app", {**APP, "api_base": "https://wecom.evil.example"}, "api_base", "qyapi.weixin.qq.com"),
        ("wecom_app", {key: value for key, value in APP.items() if key != "corp_secret"}, "corp_secret", "required"),
        ("email", {"to": "王 <a@example.com>"}, "to", "not an email address"),
        ("email", {"to": "a@example.com\r\nBcc: b@example.com"}, "to", "not"),
        ("email", {"to": "a@example.com, b@example.com"}, "to", "not"),
        ("email", {"to": "a@localhost"}, "to", "mail domain"),
        ("sms_carrier_pigeon", {}, "type", "not one of"),
    ],
)
def test_each_refusal_names_its_field(channel_type: str, config: dict[str, Any], field: str, words: str) -> None:
    error = refused(channel_type, config)
    assert error.field == field and words in str(error) and str(error).startswith(f"{field}: ")
    assert isinstance(error, ValueError)  # the API turns these into 422s


def test_an_allowlisted_host_may_serve_a_fake_over_http_with_the_vendor_path() -> None:
    url = "http://127.0.0.1:8123/robot/send?access_token=" + "a" * 64
    assert refused("dingtalk_robot", {"url": url}).field == "url"  # not allowlisted: refused
    assert validate("dingtalk_robot", {"url": url}, allow_hosts=LOOPBACK)["url"] == url
    wrong_path = "http://127.0.0.1:8123/hook?access_token=" + "a" * 64
    assert "/robot/send" in str(refused("dingtalk_robot", {"url": wrong_path}, allow_hosts=LOOPBACK))
    app = validate("wecom_app", {**APP, "api_base": "http://127.0.0.1:9000/"}, allow_hosts=LOOPBACK)
    assert app["api_base"] == "http://127.0.0.1:9000" and app["user_ids"] == ["zs"]


def test_a_validated_config_builds_a_working_channel() -> None:
    with FakeDingTalk() as fake:
        secret = "SEC" + "9e" * 32
        url = fake.add_robot("c" * 64, secret=secret)
        arguments = validate("dingtalk_robot", {"url": url, "secret": secret}, allow_hosts=LOOPBACK)
        assert send(DingTalkRobot(**arguments), notification()).outcome == AttemptOutcome.DELIVERED


def test_allowlist_predicate() -> None:
    allowed = allowlist_predicate(["127.0.0.0/8", "fake.internal"])
    assert allowed("127.0.0.1") and allowed("fake.internal")
    assert not allowed("10.0.0.1") and not allowed("oapi.dingtalk.com")


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        (" Daughter@Example.COM ", "Daughter@example.com"),
        ("王@例子.中国", None),
        ("a.b+tag@mail.example.org", "a.b+tag@mail.example.org"),
    ],
)
def test_email_addresses(value: str, normalised: str | None) -> None:
    if normalised is None:  # a non-ASCII local part needs SMTPUTF8, which not every relay speaks
        with pytest.raises(ChannelConfigError):
            validate_email_address(value)
    else:
        assert validate_email_address(value) == normalised


def test_an_idn_domain_is_sent_in_its_ascii_form() -> None:
    assert validate_email_address("nainai@例子.中国") == "nainai@xn--fsqu00a.xn--fiqs8s"
