"""Aliyun (Alibaba Cloud) SMS: ``SendSms`` of Dysmsapi 2017-05-25, signed with the RPC "V1" scheme.

Signing follows Aliyun's "签名机制" page for SMS (https://www.alibabacloud.com/help/zh/sms/signature-method,
the same rules as https://help.aliyun.com/document_detail/28839.html):

1. every parameter except ``Signature`` (the common ones and ``SendSms``'s own), sorted by name;
2. names and values percent-encoded as UTF-8 per RFC 3986: ``A-Z a-z 0-9 - _ . ~`` stay, everything
   else becomes ``%XY`` (a space is ``%20``, never ``+``; ``*`` is ``%2A``; ``~`` stays);
3. ``name=value`` pairs joined with ``&`` → the canonicalized query string;
4. ``StringToSign = METHOD + "&" + percentEncode("/") + "&" + percentEncode(canonicalized)``;
5. ``Signature = Base64(HMAC-SHA1(key = AccessKeySecret + "&", StringToSign))``.

``tests/alerts/channels/test_sms.py`` checks ``signature`` against the worked example Aliyun publishes
for ``SendSms`` (AccessKeyId ``testId``, secret ``testSecret`` → ``zJDF+Lrzhj/ThnlvIToysFRq6t4=``).

The request is a POST with every parameter in a form body, so the phone number and the signature stay
out of URLs (and out of proxies' access logs). Aliyun answers JSON with a ``Code``: ``"OK"`` is the only
success, refusals come back as HTTP 200 (``isv.*``) or 4xx (``SignatureDoesNotMatch``) alike.

The stdlib does the signing rather than ``alibabacloud_dysmsapi20170525``: the SDK pulls in a tea/credentials
stack for one HMAC, and a hand-written signer is what lets ``cli/fakes/sms.py`` check every byte.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from alerts.channels.base import OutgoingRequest, Verdict, http_failure, vendor_answer
from alerts.statuses import AttemptOutcome

DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com"
DEFAULT_REGION = "cn-hangzhou"
API_VERSION = "2017-05-25"
# A notification template's variable may hold 1-35 characters ("单个变量的长度限制为1~35个字符",
# https://help.aliyun.com/document_detail/44357.html) unless Aliyun lifted the limit for the account.
MAX_VARIABLE_CHARS = 35

# Per-number flow control (isv.BUSINESS_LIMIT_CONTROL): Aliyun's message names the window that tripped
# ("触发分钟级流控Permits:1", "…小时级…", "…天级…"); waiting out that window is the sensible retry. The
# daily cap lifts at midnight: retrying hourly finds it lifted without hammering Aliyun meanwhile.
_LIMIT_WINDOWS_S = (("分钟", 60.0), ("小时", 3600.0), ("天", 3600.0))
_DEFAULT_LIMIT_WAIT_S = 60.0
_THROTTLING_WAIT_S = 5.0  # Throttling.* is the API's own QPS limit: seconds, not minutes
# Our account, not this message, is the problem: a top-up or a renewal fixes it, so keep the message.
_ACCOUNT_CODES = frozenset({"isv.AMOUNT_NOT_ENOUGH", "isv.OUT_OF_SERVICE", "isv.ACCOUNT_ABNORMAL"})
_ACCOUNT_WAIT_S = 3600.0
# A clock that drifted or a nonce that repeats: the next attempt is re-signed with a new time and nonce.
_RESIGN_CODES = frozenset({"InvalidTimeStamp.Expired", "SignatureNonceUsed"})


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Aliyun's canonicalization wants it (``quote`` with only ``-_.~`` safe)."""
    return quote(value, safe="-_.~")


def canonicalized_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))


def signature(params: Mapping[str, str], *, secret: str, method: str = "POST") -> str:
    """The V1 ``Signature`` of ``params`` (which must not contain ``Signature`` itself)."""
    string_to_sign = f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonicalized_query(params))}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def aliyun_phone(e164: str) -> str:
    """Aliyun wants a mainland number as its 11 digits and others as country code + number, no ``+``."""
    digits = e164.removeprefix("+")
    return digits.removeprefix("86") if digits.startswith("861") and len(digits) == 13 else digits


class AliyunSms:
    """Renders and judges ``SendSms`` for one Aliyun account (an AccessKey pair)."""

    name = "aliyun"
    max_variable_chars = MAX_VARIABLE_CHARS

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        endpoint: str | None = None,
        region: str | None = None,
        nonce: Callable[[], str] | None = None,
    ) -> None:
        if not access_key_id or not access_key_secret:
            raise ValueError("access_key_id and access_key_secret: both are required for Aliyun SMS")
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self.endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/") + "/"
        self.region = region or DEFAULT_REGION
        # SignatureNonce must differ per request (replay protection); injectable so tests can pin it.
        self._nonce = nonce or (lambda: uuid.uuid4().hex)

    def secrets(self) -> tuple[str, ...]:
        return (self._secret,)

    def request(
        self,
        *,
        phone: str,
        sign_name: str,
        template_code: str,
        variables: Sequence[tuple[str, str]],
        out_id: str,
        now: datetime,
    ) -> OutgoingRequest:
        params = {
            "AccessKeyId": self.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": out_id,
            "PhoneNumbers": aliyun_phone(phone),
            "RegionId": self.region,
            "SignName": sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self._nonce(),
            "SignatureVersion": "1.0",
            "TemplateCode": template_code,
            "Timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
        }
        if variables:  # a template without variables takes no TemplateParam at all
            params["TemplateParam"] = json.dumps(dict(variables), ensure_ascii=False, separators=(",", ":"))
        params["Signature"] = signature(params, secret=self._secret, method="POST")
        body = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items())
        return OutgoingRequest(
            url=self.endpoint,
            body=body.encode("ascii"),
            headers={"content-type": "application/x-www-form-urlencoded", "accept": "application/json"},
        )

    def judge(self, status: int, body: bytes) -> Verdict:
        answer = vendor_answer(body)
        code = answer.get("Code") if answer is not None else None
        if answer is None or not isinstance(code, str):
            return http_failure(status, body)
        if code == "OK":
            return Verdict(AttemptOutcome.DELIVERED)
        error = f"Aliyun {code}: {_message(answer)}"
        if code == "isv.BUSINESS_LIMIT_CONTROL":
            return Verdict(AttemptOutcome.RETRY, error, _limit_wait(_message(answer)))
        if code.startswith("Throttling"):
            return Verdict(AttemptOutcome.RETRY, error, _THROTTLING_WAIT_S)
        if code in _ACCOUNT_CODES:
            return Verdict(AttemptOutcome.RETRY, error, _ACCOUNT_WAIT_S)
        if code in _RESIGN_CODES or code.startswith(("isp.", "InternalError", "ServiceUnavailable")):
            return Verdict(AttemptOutcome.RETRY, error)
        # isv.MOBILE_NUMBER_ILLEGAL, isv.SMS_TEMPLATE_ILLEGAL, isv.SMS_SIGNATURE_ILLEGAL,
        # InvalidAccessKeyId.NotFound, SignatureDoesNotMatch, …: the same request would be refused again.
        return Verdict(AttemptOutcome.REJECT, error)


def _message(answer: Mapping[str, Any]) -> str:
    return str(answer.get("Message") or "")[:200]


def _limit_wait(message: str) -> float:
    for word, seconds in _LIMIT_WINDOWS_S:
        if word in message:
            return seconds
    return _DEFAULT_LIMIT_WAIT_S
