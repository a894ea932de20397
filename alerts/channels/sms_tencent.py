"""Tencent Cloud SMS: ``SendSms`` of API 2021-01-11, signed with TC3-HMAC-SHA256 (signature v3).

Signing follows Tencent Cloud's "Signature v3" (签名方法 v3) page, the same text in every product's API
docs (e.g. https://tencentcloud.com/document/product/1084/39391), and matches the official SDK
(``tencentcloud/common/abstract_client.py``, ``_get_tc3_signature``; ``tencentcloud/common/sign.py``):

    CanonicalRequest = "POST\\n/\\n\\n" + "content-type:<ct>\\nhost:<host>\\n" + "\\n"
                       + "content-type;host\\n" + hex(SHA256(body))
    StringToSign     = "TC3-HMAC-SHA256\\n" + X-TC-Timestamp + "\\n" + "<UTC date>/sms/tc3_request\\n"
                       + hex(SHA256(CanonicalRequest))
    SecretSigning    = HMAC(HMAC(HMAC("TC3" + SecretKey, date), "sms"), "tc3_request")
    Authorization    = "TC3-HMAC-SHA256 Credential=<SecretId>/<scope>, SignedHeaders=content-type;host,
                        Signature=" + hex(HMAC(SecretSigning, StringToSign))

The date is the UTC date of the timestamp (a local date breaks every request between 00:00 and 08:00
in Beijing). ``tests/alerts/channels/test_sms.py`` checks ``authorization`` against the worked example of
that page (``DescribeInstances`` at 1551113065 → signature ``72e494ea…5168``).

Tencent answers HTTP 200 with ``{"Response": {...}}``: a request it refused as a whole carries
``Response.Error`` (bad signature, unknown template); an accepted one carries ``SendStatusSet`` with one
``Code`` per number, ``"Ok"`` being the only success (per-number caps show up there).

The stdlib does the signing rather than ``tencentcloud-sdk-python``: the SDK's client is synchronous (it
would need a thread per send) and a hand-written signer is what lets ``cli/fakes/sms.py`` check every byte.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from alerts.channels.base import OutgoingRequest, Verdict, http_failure, vendor_answer
from alerts.statuses import AttemptOutcome

DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com"
DEFAULT_REGION = "ap-guangzhou"
API_VERSION = "2021-01-11"
SERVICE = "sms"
CONTENT_TYPE = "application/json; charset=utf-8"
# "非验证码短信：每个变量取值最多支持6个字符" (https://cloud.tencent.com/document/product/382/13301);
# an account whose templates were approved with longer variables raises it in the configuration.
MAX_VARIABLE_CHARS = 6

# Per-number caps (in SendStatusSet) and the window to wait out; daily caps lift at midnight, so an
# hourly retry finds them lifted without hammering Tencent meanwhile.
_LIMIT_WAITS_S: Mapping[str, float] = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
    "LimitExceeded.PhoneNumberDailyLimit": 3600.0,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": 3600.0,
    "LimitExceeded.DeliveryFrequencyLimit": 30.0,
    "LimitExceeded.AppDailyLimit": 3600.0,
    "LimitExceeded.AppGlobalDailyLimit": 3600.0,
    "LimitExceeded.AppMainlandChinaDailyLimit": 3600.0,
}
_DEFAULT_LIMIT_WAIT_S = 60.0
_REQUEST_LIMIT_WAIT_S = 5.0  # RequestLimitExceeded is the API's own rate (3000/s): seconds, not minutes


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def authorization(
    *,
    secret_id: str,
    secret_key: str,
    host: str,
    payload: bytes,
    timestamp: int,
    service: str = SERVICE,
    content_type: str = CONTENT_TYPE,
) -> str:
    """The ``Authorization`` header of a TC3-HMAC-SHA256 POST of ``payload`` to ``host`` at ``timestamp``."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical_headers = f"content-type:{content_type.strip().lower()}\nhost:{host.strip().lower()}\n"
    canonical_request = "\n".join(
        ("POST", "/", "", canonical_headers, "content-type;host", hashlib.sha256(payload).hexdigest())
    )
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        ("TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical_request.encode()).hexdigest())
    )
    signing_key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    signature = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host, Signature={signature}"


class TencentSms:
    """Renders and judges ``SendSms`` for one Tencent Cloud account and SMS application (SdkAppId)."""

    name = "tencent"
    max_variable_chars = MAX_VARIABLE_CHARS

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        endpoint: str | None = None,
        region: str | None = None,
    ) -> None:
        if not secret_id or not secret_key:
            raise ValueError("access_key_id and access_key_secret: both are required for Tencent Cloud SMS")
        if not sdk_app_id:
            raise ValueError("sdk_app_id: the SMS application's SdkAppId is required for Tencent Cloud SMS")
        self.secret_id = secret_id
        self._secret = secret_key
        self.sdk_app_id = sdk_app_id
        self.endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/") + "/"
        # What httpx sends as Host (with the port when one is given) is what must be signed.
        self.host = urlsplit(self.endpoint).netloc
        self.region = region or DEFAULT_REGION

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
        payload = json.dumps(
            {
                "PhoneNumberSet": [phone],  # E.164 as Tencent documents it
                "SmsSdkAppId": self.sdk_app_id,
                "TemplateId": template_code,
                "SignName": sign_name,
                "TemplateParamSet": [value for _, value in variables],  # positional: {1}, {2}, …
                "SessionContext": out_id,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        timestamp = int(now.timestamp())
        return OutgoingRequest(
            url=self.endpoint,
            body=payload,
            headers={
                "content-type": CONTENT_TYPE,
                "host": self.host,
                "x-tc-action": "SendSms",
                "x-tc-version": API_VERSION,
                "x-tc-timestamp": str(timestamp),
                "x-tc-region": self.region,
                "authorization": authorization(
                    secret_id=self.secret_id,
                    secret_key=self._secret,
                    host=self.host,
                    payload=payload,
                    timestamp=timestamp,
                ),
            },
        )

    def judge(self, status: int, body: bytes) -> Verdict:
        answer = vendor_answer(body)
        response = answer.get("Response") if answer is not None else None
        if not isinstance(response, dict):
            return http_failure(status, body)
        error = response.get("Error")
        if isinstance(error, dict):
            return _judge_code(str(error.get("Code") or "Error"), _message(error))
        statuses = response.get("SendStatusSet")
        if not isinstance(statuses, list) or not statuses or not isinstance(statuses[0], dict):
            return http_failure(status, body)
        first = statuses[0]  # one number per request: its status is the answer
        code = str(first.get("Code") or "")
        if code == "Ok":
            return Verdict(AttemptOutcome.DELIVERED)
        return _judge_code(code or "no Code", _message(first))


def _judge_code(code: str, message: str) -> Verdict:
    """The same codes mean the same whether in ``Response.Error`` or in a number's ``SendStatusSet``."""
    error = f"Tencent {code}: {message}"
    if code.startswith("LimitExceeded"):
        return Verdict(AttemptOutcome.RETRY, error, _LIMIT_WAITS_S.get(code, _DEFAULT_LIMIT_WAIT_S))
    if code.startswith("RequestLimitExceeded"):
        return Verdict(AttemptOutcome.RETRY, error, _REQUEST_LIMIT_WAIT_S)
    # Our clock drifted past Tencent's five minutes: the next attempt is signed afresh, and fixing the
    # clock (NTP) should not cost the message.
    if code == "AuthFailure.SignatureExpire" or code.startswith(("InternalError", "ResourceUnavailable")):
        return Verdict(AttemptOutcome.RETRY, error)
    # AuthFailure.* (wrong SecretId/SecretKey), FailedOperation.TemplateIncorrectOrUnapproved,
    # FailedOperation.SignatureIncorrectOrUnapproved, InvalidParameterValue.IncorrectPhoneNumber, …
    return Verdict(AttemptOutcome.REJECT, error)


def _message(part: Mapping[str, Any]) -> str:
    return str(part.get("Message") or "")[:200]
