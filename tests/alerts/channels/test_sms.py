"""The SMS channel against local fakes of Aliyun and Tencent Cloud (cli/fakes/sms.py) that recompute the
signatures, check the parameters and enforce per-number caps; plus the signers against the vendors'
published worked examples, so the channel and the fakes cannot share one mistake."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from alerts.channels.base import ActionLink, Notification
from alerts.channels.sms import (
    KIND_ZH,
    OPTIONAL_TEMPLATES,
    SmsChannel,
    SmsConfig,
    SmsTemplate,
    default_params,
    parse_templates,
    template_variables,
    units,
    validate_phone,
)
from alerts.channels.sms_aliyun import AliyunSms, aliyun_phone, signature
from alerts.channels.sms_tencent import TencentSms, authorization
from alerts.statuses import AttemptOutcome
from alerts.webhooks import make_client
from alerts.webhooks.attempt import AttemptResult
from cli.fakes.sms import FakeAliyunSms, FakeTencentSms, aliyun_expected_signature, tencent_expected_signature
from shouwang.events import AlertKind
from tests.alerts.conftest import LOOPBACK

PHONE = "+8613800138000"
DELIVERY_ID = "dl_5f0c2a9e81d34b7a"
ALERT_ID = "al_0123456789abcdef01234567"
PREFIX = "https://sw.example.cn/v1/alerts/"
ACK_URL = f"{PREFIX}{ALERT_ID}/ack"
LONG_NAME = "欧阳" + "桂英" * 150  # 302 characters
TEMPLATE_CODES = {
    "raised": "100",
    "updated": "100",
    "escalated": "101",
    "reminder": "102",
    "resolved": "103",
    "ping": "104",
}
ALIYUN_VARIABLES = {
    "SMS_100": ("name", "kind", "time", "link"),
    "SMS_101": ("name", "kind", "time", "link"),
    "SMS_102": ("name", "kind", "time", "link"),
    "SMS_103": ("name", "kind", "outcome"),
    "SMS_104": ("time",),
}
TENCENT_VARIABLES = {"100": 3, "101": 3, "102": 3, "103": 3, "104": 1}


def payload(
    event_type: str = "alert.raised",
    *,
    name: str | None = "张桂英",
    timezone: str = "Asia/Shanghai",
    kind: str = "no_usage",
    resolution: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "alert_id": ALERT_ID,
        "status": "resolved" if resolution else "raised",
        "kind": kind,
        "severity": "high",
        "since": "2026-06-01T13:15:00+00:00",  # 21:15 in Shanghai
        "at": "2026-06-01T23:30:00+00:00",
        "meter_id": "m-000123",
        "grid_cell": "gc-7",
        "household": None
        if name is None
        else {"id": "hh_1", "name": name, "address": "幸福里3-201", "timezone": timezone},
        "explanation": {"zh": "自 21:15 起无用水", "en": "no water use since 21:15"},
        "facts": {},
        "tier": 1,
        "acknowledge_url": ACK_URL,
    }
    if resolution:
        data["resolution"] = resolution
    return {"type": event_type, "timestamp": "2026-06-02T00:00:00+00:00", "data": data}


def notification(body: dict[str, Any] | None = None, *, actions: tuple[ActionLink, ...] = ()) -> Notification:
    return Notification(
        message_id=DELIVERY_ID, payload=body or payload(), recipient_role="grid_worker", actions=actions
    )


def aliyun_config(fake: FakeAliyunSms, **overrides: Any) -> SmsConfig:
    options: dict[str, Any] = {
        "provider": "aliyun",
        "access_key_id": fake.access_key_id,
        "access_key_secret": fake.access_key_secret,
        "sign_name": "守望",
        "templates": {kind: SmsTemplate(f"SMS_{code}") for kind, code in TEMPLATE_CODES.items()},
        "endpoint": fake.url,
        "link_prefix": PREFIX,
    }
    return SmsConfig(**{**options, **overrides})


def tencent_config(fake: FakeTencentSms, **overrides: Any) -> SmsConfig:
    options: dict[str, Any] = {
        "provider": "tencent",
        "access_key_id": fake.secret_id,
        "access_key_secret": fake.secret_key,
        "sdk_app_id": fake.sdk_app_id,
        "sign_name": "守望",
        "templates": {kind: SmsTemplate(code) for kind, code in TEMPLATE_CODES.items()},
        "endpoint": fake.url,
    }
    return SmsConfig(**{**options, **overrides})


def send(channel: SmsChannel, note: Notification | None = None, *, timeout_s: float = 5.0) -> AttemptResult:
    async def main() -> AttemptResult:
        async with make_client(allow=LOOPBACK) as client:
            return await channel.send(client, note or notification(), now=datetime.now(UTC), timeout_s=timeout_s)

    return asyncio.run(main())


@pytest.fixture
def aliyun() -> Iterator[FakeAliyunSms]:
    with FakeAliyunSms(templates=ALIYUN_VARIABLES) as fake:
        yield fake


@pytest.fixture
def tencent() -> Iterator[FakeTencentSms]:
    with FakeTencentSms(templates=TENCENT_VARIABLES) as fake:
        yield fake


# --- the signers against the vendors' worked examples ---------------------------------------------------


def test_aliyun_signature_is_the_published_example() -> None:
    # Aliyun's SendSms signing example: AccessKeyId testId, AccessKeySecret testSecret, a GET request.
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert signature(params, secret="testSecret", method="GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert aliyun_expected_signature(params, "testSecret", "GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert signature(params, secret="testSecret", method="POST") != "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_tc3_signature_is_the_published_example() -> None:
    # Tencent Cloud's "Signature v3" example: DescribeInstances on cvm at 1551113065 with the EXAMPLE keys.
    body = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    expected = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    header = authorization(
        secret_id="AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        host="cvm.tencentcloudapi.com",
        payload=body,
        timestamp=1551113065,
        service="cvm",
    )
    assert header == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={expected}"
    )
    fake = tencent_expected_signature(
        secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        date="2019-02-25",
        service="cvm",
        timestamp="1551113065",
        canonical_headers="content-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n",
        signed="content-type;host",
        body=body,
    )
    assert fake == expected


# --- success: the fakes verified the signature and the variables ------------------------------------------


@pytest.mark.parametrize("mask", [True, False])
def test_aliyun_delivers_with_the_delivery_id_and_short_variables(aliyun: FakeAliyunSms, mask: bool) -> None:
    channel = SmsChannel(phone=PHONE, config=aliyun_config(aliyun, mask_names=mask))
    long_link = ActionLink("acknowledge", "https://sw.example.cn/a/" + "t" * 80, "确认收到", "Acknowledge")
    result = send(channel, notification(payload(name=LONG_NAME), actions=(long_link,)))

    assert result.outcome == AttemptOutcome.DELIVERED, result.error
    [message] = aliyun.wait_for(1)
    assert (message.phone, message.template, message.context) == ("13800138000", "SMS_100", DELIVERY_ID)
    assert message.params["name"] == ("欧**" if mask else LONG_NAME[:34] + "…")
    assert message.params["kind"] == "无用水"
    assert message.params["time"] == "2026-06-01 21:15"  # the household's time zone
    assert message.params["link"] == f"{ALERT_ID}/ack"  # the action link is too long: acknowledge_url
    assert all(1 <= units(value) <= 35 for value in message.params.values())
    assert aliyun.refusals == []


@pytest.mark.parametrize("mask", [True, False])
def test_tencent_delivers_with_the_delivery_id_and_short_variables(tencent: FakeTencentSms, mask: bool) -> None:
    channel = SmsChannel(phone=PHONE, config=tencent_config(tencent, mask_names=mask))
    result = send(channel, notification(payload(name=LONG_NAME, timezone="Asia/Urumqi")))

    assert result.outcome == AttemptOutcome.DELIVERED, result.error
    [message] = tencent.wait_for(1)
    assert (message.phone, message.template, message.context) == ("13800138000", "100", DELIVERY_ID)
    assert message.params == {"1": "欧**" if mask else "欧阳桂英桂…", "2": "无用水", "3": "19:15"}  # UTC+6
    assert all(1 <= units(value) <= 6 for value in message.params.values())


def test_resolved_ping_and_updated_use_their_templates(aliyun: FakeAliyunSms) -> None:
    channel = SmsChannel(phone=PHONE, config=aliyun_config(aliyun))
    resolution = {"outcome": "resident_fine", "by": "grid", "at": "2026-06-02T01:00:00+00:00", "note": None}
    assert send(channel, notification(payload("alert.resolved", resolution=resolution))).outcome == "delivered"
    ping = {"type": "endpoint.ping", "timestamp": "2026-06-02T01:00:00+00:00", "data": {"endpoint_id": "ep_1"}}
    assert send(channel, notification(ping)).outcome == "delivered", aliyun.refusals
    assert send(channel, notification(payload("alert.updated", kind="spike"))).outcome == "delivered"
    resolved, pinged, updated = aliyun.wait_for(3)
    assert (updated.template, updated.params["kind"]) == ("SMS_100", "用水突增")  # shares the raise's template
    assert (resolved.template, dict(resolved.params)) == (
        "SMS_103",
        {"name": "张**", "kind": "无用水", "outcome": "老人平安"},
    )
    assert (pinged.template, dict(pinged.params)) == ("SMS_104", {"time": "2026-06-02 09:00"})


# --- refusals, throttling, garbage, timeouts --------------------------------------------------------------


def test_a_wrong_secret_is_rejected_never_delivered(aliyun: FakeAliyunSms, tencent: FakeTencentSms) -> None:
    wrong_aliyun = SmsChannel(phone=PHONE, config=aliyun_config(aliyun, access_key_secret="not-the-secret"))
    wrong_tencent = SmsChannel(phone=PHONE, config=tencent_config(tencent, access_key_secret="not-the-secret"))

    for channel, fake, code in (
        (wrong_aliyun, aliyun, "SignatureDoesNotMatch"),
        (wrong_tencent, tencent, "AuthFailure.SignatureFailure"),
    ):
        result = send(channel)
        assert result.outcome == AttemptOutcome.REJECT
        assert result.error is not None and code in result.error and "not-the-secret" not in result.error
        assert fake.messages == [] and fake.refusals == [code]


def test_an_unknown_template_or_sign_name_is_rejected(aliyun: FakeAliyunSms, tencent: FakeTencentSms) -> None:
    templates = {kind: SmsTemplate("999") for kind in TEMPLATE_CODES}
    assert send(SmsChannel(phone=PHONE, config=tencent_config(tencent, templates=templates))).outcome == "reject"
    assert send(SmsChannel(phone=PHONE, config=aliyun_config(aliyun, sign_name="别人的签名"))).outcome == "reject"
    assert tencent.refusals == ["FailedOperation.TemplateIncorrectOrUnapproved"]
    assert aliyun.refusals == ["isv.SMS_SIGNATURE_ILLEGAL"]


def test_aliyun_per_number_cap_is_a_retry_after_its_window() -> None:
    with FakeAliyunSms(templates=ALIYUN_VARIABLES, per_number_cap=1, cap_window_s=60) as fake:
        channel = SmsChannel(phone=PHONE, config=aliyun_config(fake))
        assert send(channel).outcome == AttemptOutcome.DELIVERED
        throttled = send(channel)
        assert throttled.outcome == AttemptOutcome.RETRY
        assert throttled.retry_after_s == 60.0
        assert throttled.error is not None and "isv.BUSINESS_LIMIT_CONTROL" in throttled.error
        fake.advance(61)
        assert send(channel).outcome == AttemptOutcome.DELIVERED
        assert len(fake.messages) == 2


def test_tencent_thirty_second_rule_is_a_retry_after_thirty_seconds(tencent: FakeTencentSms) -> None:
    channel = SmsChannel(phone=PHONE, config=tencent_config(tencent))
    assert send(channel).outcome == AttemptOutcome.DELIVERED
    throttled = send(channel)
    assert (throttled.outcome, throttled.retry_after_s) == (AttemptOutcome.RETRY, 30.0)
    assert throttled.error is not None and "PhoneNumberThirtySecondLimit" in throttled.error
    tencent.advance(31)
    assert send(channel).outcome == AttemptOutcome.DELIVERED


def test_a_drifted_clock_is_retried_not_rejected(tencent: FakeTencentSms) -> None:
    tencent.advance(600)  # our requests now look ten minutes old to Tencent
    result = send(SmsChannel(phone=PHONE, config=tencent_config(tencent)))
    assert result.outcome == AttemptOutcome.RETRY and tencent.refusals == ["AuthFailure.SignatureExpire"]


@pytest.mark.parametrize("status", [200, 502])
def test_garbage_html_is_a_retry(aliyun: FakeAliyunSms, tencent: FakeTencentSms, status: int) -> None:
    for fake, config in ((aliyun, aliyun_config(aliyun)), (tencent, tencent_config(tencent))):
        fake.mode, fake.garbage_status = "garbage", status
        result = send(SmsChannel(phone=PHONE, config=config))
        assert result.outcome == AttemptOutcome.RETRY
        assert result.status_code == status and result.error is not None and result.error.startswith(f"HTTP {status}")


def test_a_hanging_provider_is_a_retry(aliyun: FakeAliyunSms, tencent: FakeTencentSms) -> None:
    for fake, config in ((aliyun, aliyun_config(aliyun)), (tencent, tencent_config(tencent))):
        fake.mode = "hang"
        result = send(SmsChannel(phone=PHONE, config=config), timeout_s=0.3)
        assert result.outcome == AttemptOutcome.RETRY
        assert result.error is not None and result.error.startswith("timeout")


# --- configuration and registration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    ["13800138000", "+86138001380", "+8612800138000", "+86 138 0013 8000", "", "+0123456789", "+861380013800x"],
)
def test_the_validator_refuses_a_bad_phone_number_naming_the_field(number: str) -> None:
    with pytest.raises(ValueError, match=r"^family_phone: "):
        validate_phone(number, field="family_phone")
    with pytest.raises(ValueError, match=r"^phone: "):
        SmsChannel(
            phone=number,
            config=SmsConfig("aliyun", "id", "secret", "守望", parse_templates(json.dumps(TEMPLATE_CODES))),
        )


def test_the_validator_accepts_e164() -> None:
    assert validate_phone("+8613800138000") == "+8613800138000"
    assert validate_phone("+14155550123") == "+14155550123"
    assert (aliyun_phone("+8613800138000"), aliyun_phone("+14155550123")) == ("13800138000", "14155550123")


def test_a_missing_template_mapping_is_a_configuration_error() -> None:
    templates = {kind: SmsTemplate(code) for kind, code in TEMPLATE_CODES.items() if kind != "ping"}
    with pytest.raises(ValueError, match=r"^templates: no approved template configured for ping"):
        SmsConfig("aliyun", "id", "secret", "守望", templates)
    with pytest.raises(ValueError, match=r"^templates: unknown message types"):
        SmsConfig("aliyun", "id", "secret", "守望", {**templates, "ping": SmsTemplate("1"), "hello": SmsTemplate("2")})
    with pytest.raises(ValueError, match=r"^sdk_app_id: "):
        SmsConfig("tencent", "id", "secret", "守望", parse_templates(json.dumps(TEMPLATE_CODES)))
    with pytest.raises(ValueError, match=r"^templates: "):
        parse_templates('{"raised": {"code": "1", "params": "name"}}')
    with_link = {**parse_templates(json.dumps(TEMPLATE_CODES)), "raised": SmsTemplate("100", ("kind", "link"))}
    with pytest.raises(ValueError, match=r"^templates: Tencent Cloud refuses links"):
        SmsConfig("tencent", "id", "secret", "守望", with_link, sdk_app_id="14")
    assert SmsConfig("aliyun", "id", "secret", "守望", with_link).params_of("raised") == ("kind", "link")
    parsed = parse_templates('{"raised": {"code": "SMS_1", "params": ["kind"]}, "ping": "SMS_2"}')
    assert parsed == {"raised": SmsTemplate("SMS_1", ("kind",)), "ping": SmsTemplate("SMS_2")}


def test_a_message_type_without_a_template_is_rejected_without_a_request(aliyun: FakeAliyunSms) -> None:
    result = send(SmsChannel(phone=PHONE, config=aliyun_config(aliyun)), notification(payload("alert.snoozed")))
    assert result.outcome == AttemptOutcome.REJECT and result.error == "no approved SMS template for alert.snoozed"
    assert aliyun.messages == [] and aliyun.refusals == []


def test_the_secret_never_shows_in_errors_or_repr() -> None:
    config = SmsConfig("tencent", "AKID1", "s3cr3t-key", "守望", parse_templates(json.dumps(TEMPLATE_CODES)), "14")
    channel = SmsChannel(phone=PHONE, config=config)
    assert "s3cr3t-key" not in repr(config)
    assert channel.redact("signing with s3cr3t-key failed") == "signing with [redacted] failed"


# --- judging the vendors' answers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "answer", "outcome", "retry_after"),
    [
        (200, {"Code": "OK", "BizId": "1^0"}, "delivered", None),
        (200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发小时级流控Permits:5"}, "retry", 3600.0),
        (200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发天级流控Permits:10"}, "retry", 3600.0),
        (400, {"Code": "Throttling.User", "Message": "Request was denied due to user flow control."}, "retry", 5.0),
        (200, {"Code": "isv.AMOUNT_NOT_ENOUGH", "Message": "账户余额不足"}, "retry", 3600.0),
        (500, {"Code": "isp.SYSTEM_ERROR"}, "retry", None),
        (200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL"}, "reject", None),
        (200, {"Code": "isv.SMS_TEMPLATE_ILLEGAL"}, "reject", None),
        (200, {"Code": "isv.SMS_SIGNATURE_ILLEGAL"}, "reject", None),
        (404, {"Code": "InvalidAccessKeyId.NotFound"}, "reject", None),
        (400, {"Code": "SignatureDoesNotMatch"}, "reject", None),
        (200, {"Message": "no code"}, "retry", None),  # JSON, but not Aliyun's answer
        (404, {"error": "not found"}, "reject", None),
    ],
)
def test_aliyun_judge(status: int, answer: dict[str, Any], outcome: str, retry_after: float | None) -> None:
    verdict = AliyunSms(access_key_id="id", access_key_secret="secret").judge(status, json.dumps(answer).encode())
    assert (verdict.outcome, verdict.retry_after_s) == (outcome, retry_after)


def _tencent_status(code: str) -> dict[str, Any]:
    return {"Response": {"SendStatusSet": [{"Code": code, "Message": "…", "SessionContext": DELIVERY_ID}]}}


@pytest.mark.parametrize(
    ("answer", "outcome", "retry_after"),
    [
        (_tencent_status("Ok"), "delivered", None),
        (_tencent_status("LimitExceeded.PhoneNumberThirtySecondLimit"), "retry", 30.0),
        (_tencent_status("LimitExceeded.PhoneNumberDailyLimit"), "retry", 3600.0),
        (_tencent_status("InvalidParameterValue.IncorrectPhoneNumber"), "reject", None),
        ({"Response": {"Error": {"Code": "AuthFailure.SecretIdNotFound"}}}, "reject", None),
        ({"Response": {"Error": {"Code": "AuthFailure.SignatureFailure"}}}, "reject", None),
        ({"Response": {"Error": {"Code": "FailedOperation.TemplateIncorrectOrUnapproved"}}}, "reject", None),
        ({"Response": {"Error": {"Code": "RequestLimitExceeded"}}}, "retry", 5.0),
        ({"Response": {"Error": {"Code": "InternalError.Timeout"}}}, "retry", None),
        ({"Response": {"SendStatusSet": []}}, "retry", None),
        ({"Code": "OK"}, "retry", None),  # an Aliyun-shaped answer is not Tencent's
    ],
)
def test_tencent_judge(answer: dict[str, Any], outcome: str, retry_after: float | None) -> None:
    verdict = TencentSms(secret_id="id", secret_key="key", sdk_app_id="1").judge(200, json.dumps(answer).encode())
    assert (verdict.outcome, verdict.retry_after_s) == (outcome, retry_after)


# --- the variables --------------------------------------------------------------------------------------


def variables(
    note: Notification, *, params: tuple[str, ...] = ("name", "kind", "time", "link"), **options: Any
) -> dict[str, str]:
    return dict(template_variables(note, params=params, max_chars=options.pop("max_chars", 35), **options))


def test_names_and_labels_are_cleaned_and_cut_by_utf16_units() -> None:
    emoji_name = "【王】" + "😀" * 40
    values = variables(notification(payload(name=emoji_name)), mask_names=False)
    assert "【" not in values["name"] and units(values["name"]) <= 35 and values["name"].endswith("…")
    assert variables(notification(payload(name=None)))["name"] == "网格gc-7"
    assert variables(notification(payload(name="  ")))["name"] == "网格gc-7"


def test_the_link_is_never_cut() -> None:
    short = ActionLink("acknowledge", f"{PREFIX}a/Xy12", "确认收到", "Acknowledge")
    assert variables(notification(actions=(short,)), link_prefix=PREFIX)["link"] == "a/Xy12"
    assert variables(notification(), link_prefix=PREFIX)["link"] == f"{ALERT_ID}/ack"
    # Without the prefix neither URL fits 35 characters: the fallback, never half a URL.
    assert variables(notification(), link_fallback="console")["link"] == "console"
    assert variables(notification(actions=(short,)), link_prefix="https://other.example.cn/")["link"] == "-"


def test_time_falls_back_to_the_default_zone_and_every_kind_has_words() -> None:
    assert variables(notification(payload(timezone="Mars/Olympus")))["time"] == "2026-06-01 21:15"
    assert variables(notification(payload(timezone="UTC")), max_chars=6)["time"] == "13:15"
    assert variables(notification(payload(kind="something_new")))["kind"] == "用水异常"
    resolution = {"outcome": "emergency", "by": "grid", "at": "2026-06-02T01:00:00+00:00", "note": None}
    resolved = variables(notification(payload("alert.resolved", resolution=resolution)), params=("time", "outcome"))
    assert resolved == {"time": "2026-06-02 09:00", "outcome": "已紧急处置"}  # when it ended, not began
    assert all(1 <= units(words) <= 6 for words in KIND_ZH.values())
    assert set(KIND_ZH) == {kind.value for kind in AlertKind}


def test_the_away_notice_takes_the_masked_name_and_the_end_of_away_mode() -> None:
    data = {
        "household": {"id": "hh-1", "name": "王阿姨", "address": "莲花路 12 号 3 栋 501", "timezone": "Asia/Shanghai"},
        "grid_cell": "gc-7",
        "away_until": "2026-03-10T18:00:00+08:00",
        "set_by": "family:key_1",
        "note": "住院",
        "message": {"zh": "王阿姨的家属设置了外出模式", "en": "The family of 王阿姨 set away mode"},
    }
    note = Notification(
        "dl-away", {"type": "household.away", "timestamp": "2026-03-02T01:00:00+00:00", "data": data}, "grid_worker"
    )
    assert variables(note, params=default_params("aliyun", "away")) == {"name": "王**", "time": "2026-03-10 18:00"}
    assert variables(note, params=("name", "time"), max_chars=6)["time"] == "18:00"
    assert "away" in OPTIONAL_TEMPLATES  # a deployment without an approved template still starts
