"""Local fakes of Aliyun's and Tencent Cloud's SMS APIs: real HTTP servers on 127.0.0.1 for tests and demos.

Each fake checks a request the way its provider does, with its own copy of the provider's signing
algorithm (not the channel's code, so a mistake in one is caught by the other): Aliyun's RPC V1
HMAC-SHA1 signature and Tencent's TC3-HMAC-SHA256. Then it checks the parameters (phone format, a known
signature and template, the template's variables present and within their length), enforces per-number
caps and answers with the provider's JSON, success or error code. It can also answer garbage HTML or
hang, and it records every message it accepted::

    with FakeAliyunSms(templates={"SMS_1": ("name", "kind")}, per_number_cap=1) as fake:
        config = SmsConfig(provider="aliyun", endpoint=fake.url, access_key_id=fake.access_key_id, …)
        … send …
        fake.wait_for(1)
        assert fake.messages[0].context == delivery_id    # OutId / SessionContext
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, quote, urlsplit

Mode = Literal["ok", "garbage", "hang"]
Answer = dict[str, Any] | bytes  # the provider's JSON, or raw bytes (Aliyun's XML)
GARBAGE = b"<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>"
_MAINLAND = re.compile(r"(?:\+86|0086|86)?(1[3-9][0-9]{9})")
_TC3 = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/]+)/tc3_request, "
    r"SignedHeaders=(?P<headers>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)


@dataclass(frozen=True)
class SentSms:
    """A message the fake accepted."""

    phone: str  # as the provider normalises it: 11 digits (mainland) for both
    sign_name: str
    template: str
    params: Mapping[str, str]  # Aliyun: by name; Tencent: "1", "2", … by position
    context: str  # Aliyun OutId / Tencent SessionContext
    message_id: str  # Aliyun BizId / Tencent SerialNo
    at: float  # the fake's clock


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2  # as carriers count: an emoji is two


class _FakeSms:
    """The HTTP server, the modes and the records both fakes share; subclasses implement ``answer``."""

    def __init__(self, *, sign_names: Iterable[str], max_variable_chars: int, clock: Callable[[], float]) -> None:
        self.sign_names = frozenset(sign_names)
        self.max_variable_chars = max_variable_chars
        self.mode: Mode = "ok"
        self.garbage_status = 200  # a gateway page served with 200 is the nastiest case: not success
        self.messages: list[SentSms] = []
        self.refusals: list[str] = []  # every error code answered, in order
        self._clock = clock
        self._offset = 0.0
        self._sent_at: dict[str, list[float]] = {}  # phone → accepted send times
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (per-number windows pass without sleeping)."""
        with self._lock:
            self._offset += seconds

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[SentSms]:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.messages) >= count, timeout=timeout_s):
                raise TimeoutError(f"the fake accepted {len(self.messages)} messages, expected {count}")
            return list(self.messages)

    def answer(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, Answer]:
        raise NotImplementedError

    def _accept(self, message: SentSms) -> None:
        with self._lock:
            self.messages.append(message)
            self._sent_at.setdefault(message.phone, []).append(message.at)
            self._lock.notify_all()

    def _sends_within(self, phone: str, window_s: float) -> int:
        now = self.now()
        return sum(1 for at in self._sent_at.get(phone, ()) if now - at < window_s)

    def _refuse(self, code: str) -> None:
        with self._lock:
            self.refusals.append(code)

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if fake.mode == "hang":
                    fake._stopping.wait(60.0)  # until the client gives up or the fake stops
                    return
                if fake.mode == "garbage":
                    self._write(fake.garbage_status, GARBAGE, "text/html")
                    return
                headers = {key.lower(): value for key, value in self.headers.items()}
                status, answer = fake.answer(self.command, self.path, headers, body)
                if isinstance(answer, bytes):
                    self._write(status, answer, "application/xml")
                else:
                    self._write(status, json.dumps(answer, ensure_ascii=False).encode(), "application/json")

            def _write(self, status: int, payload: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("content-type", f"{content_type}; charset=utf-8")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet tests

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        server = self._server
        # A short poll interval: stop() waits for one, and tests start and stop fakes often.
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.02), name=type(self).__name__, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def aliyun_expected_signature(params: Mapping[str, str], secret: str, method: str) -> str:
    """Aliyun's V1 signature as its server computes it (RFC 3986 encoding, sorted, HMAC-SHA1 with "secret&")."""

    def encode(text: str) -> str:
        return quote(text, safe="")  # leaves only A-Z a-z 0-9 _ . - ~, as Aliyun's percentEncode does

    canonical = "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(params.items()) if k != "Signature")
    string_to_sign = method.upper() + "&" + encode("/") + "&" + encode(canonical)
    mac = hmac.new((secret + "&").encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


class FakeAliyunSms(_FakeSms):
    """Dysmsapi 2017-05-25 ``SendSms``: form or query parameters, V1 signature, ``{"Code": …}`` answers.

    ``templates`` maps each known TemplateCode to the variable names it takes. ``per_number_cap`` accepted
    messages per number within ``cap_window_s`` trigger ``isv.BUSINESS_LIMIT_CONTROL``.
    """

    _REQUIRED = (
        "AccessKeyId",
        "Action",
        "Signature",
        "SignatureMethod",
        "SignatureNonce",
        "SignatureVersion",
        "Timestamp",
        "Version",
    )

    def __init__(
        self,
        *,
        access_key_id: str = "LTAI-fake-id",
        access_key_secret: str = "fake-aliyun-secret",
        sign_names: Iterable[str] = ("守望",),
        templates: Mapping[str, Iterable[str]] | None = None,
        max_variable_chars: int = 35,
        per_number_cap: int | None = None,
        cap_window_s: float = 60.0,
        max_skew_s: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(sign_names=sign_names, max_variable_chars=max_variable_chars, clock=clock)
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.templates = {code: tuple(names) for code, names in (templates or {}).items()}
        self.per_number_cap = per_number_cap
        self.cap_window_s = cap_window_s
        self.max_skew_s = max_skew_s
        self._nonces: set[str] = set()

    def _error(self, status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
        self._refuse(code)
        return status, {"RequestId": str(uuid.uuid4()).upper(), "Code": code, "Message": message}

    def answer(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, Answer]:
        params = dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))
        if method == "POST":
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        status, answer = self._answer(method, params)
        if params.get("Format", "XML").upper() != "JSON":  # Aliyun answers XML unless asked for JSON
            code = f"<Code>{answer['Code']}</Code>"
            return status, f'<?xml version="1.0" encoding="UTF-8"?><SendSmsResponse>{code}</SendSmsResponse>'.encode()
        return status, answer

    def _answer(self, method: str, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        missing = [name for name in self._REQUIRED if not params.get(name)]
        if missing:
            return self._error(400, f"Missing{missing[0]}", f"{missing[0]} is mandatory for this action.")
        if params["Action"] != "SendSms" or params["Version"] != "2017-05-25":
            return self._error(404, "InvalidAction.NotFound", "Specified api is not found, please check your url.")
        if params["AccessKeyId"] != self.access_key_id:
            return self._error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            return self._error(400, "InvalidSignatureMethod", "Specified signature method is not supported.")
        try:
            stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return self._error(400, "InvalidTimeStamp.Format", "Specified time stamp does not match the format.")
        if abs(self.now() - stamp) > self.max_skew_s:
            return self._error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        expected = aliyun_expected_signature(params, self.access_key_secret, method)
        if not hmac.compare_digest(expected.encode(), params["Signature"].encode()):
            return self._error(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
        with self._lock:
            if params["SignatureNonce"] in self._nonces:
                return self._error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            self._nonces.add(params["SignatureNonce"])
        return self._send(params)

    def _send(self, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(name):
                return self._error(400, f"Missing{name}", f"{name} is mandatory for this action.")
        number = _MAINLAND.fullmatch(params["PhoneNumbers"])
        if number is None:
            return self._error(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        if params["SignName"] not in self.sign_names:
            return self._error(200, "isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        names = self.templates.get(params["TemplateCode"])
        if names is None:
            return self._error(200, "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        try:
            values = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return self._error(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            return self._error(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if set(names) - set(values):
            return self._error(200, "isv.TEMPLATE_MISSING_PARAMETERS", "模板缺少变量")
        for name in names:
            if not 1 <= _units(values[name]) <= self.max_variable_chars:
                return self._error(200, "isv.PARAM_LENGTH_LIMIT", "参数超出长度限制")
            if re.search(r"https?://|www\.", values[name], re.IGNORECASE):
                return self._error(200, "isv.PARAM_NOT_SUPPORT_URL", "不支持URL")
        phone = number.group(1)
        with self._lock:
            if self.per_number_cap is not None and self._sends_within(phone, self.cap_window_s) >= self.per_number_cap:
                window = "分钟级" if self.cap_window_s <= 60 else "小时级" if self.cap_window_s <= 3600 else "天级"
                return self._error(200, "isv.BUSINESS_LIMIT_CONTROL", f"触发{window}流控Permits:{self.per_number_cap}")
            biz_id = f"{len(self.messages) + 1:06d}^0"
            self._accept(
                SentSms(
                    phone,
                    params["SignName"],
                    params["TemplateCode"],
                    values,
                    params.get("OutId", ""),
                    biz_id,
                    self.now(),
                )
            )
        return 200, {"RequestId": str(uuid.uuid4()).upper(), "Code": "OK", "Message": "OK", "BizId": biz_id}


def tencent_expected_signature(
    *, secret_key: str, date: str, service: str, timestamp: str, canonical_headers: str, signed: str, body: bytes
) -> str:
    """TC3-HMAC-SHA256 as Tencent's server computes it for a POST to "/"."""
    canonical_request = f"POST\n/\n\n{canonical_headers}\n{signed}\n{hashlib.sha256(body).hexdigest()}"
    string_to_sign = (
        f"TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n"
        f"{hashlib.sha256(canonical_request.encode('utf-8')).hexdigest()}"
    )
    key = ("TC3" + secret_key).encode("utf-8")
    for part in (date, service, "tc3_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


class FakeTencentSms(_FakeSms):
    """SMS API 2021-01-11 ``SendSms``: JSON body, TC3-HMAC-SHA256, ``{"Response": …}`` answers.

    ``templates`` maps each known TemplateId to how many variables it takes. One number gets at most one
    message per 30 s (Tencent's default frequency rule) and at most ``daily_cap`` a day when set.
    """

    def __init__(
        self,
        *,
        secret_id: str = "AKID-fake-id",
        secret_key: str = "fake-tencent-secret",
        sdk_app_id: str = "1400000001",
        sign_names: Iterable[str] = ("守望",),
        templates: Mapping[str, int] | None = None,
        max_variable_chars: int = 6,
        daily_cap: int | None = None,
        max_skew_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(sign_names=sign_names, max_variable_chars=max_variable_chars, clock=clock)
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.sdk_app_id = sdk_app_id
        self.templates = dict(templates or {})
        self.daily_cap = daily_cap
        self.max_skew_s = max_skew_s

    def _error(self, code: str, message: str) -> tuple[int, dict[str, Any]]:
        self._refuse(code)  # Tencent answers HTTP 200 to refusals, the error is in the body
        return 200, {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}}

    def answer(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        if method != "POST":
            return self._error("InvalidParameter", "this fake only takes POST with a JSON body")
        if headers.get("x-tc-action") != "SendSms":
            return self._error("InvalidAction", "The requested action does not exist.")
        if headers.get("x-tc-version") != "2021-01-11":
            return self._error("NoSuchVersion", "The requested version does not exist.")
        if not headers.get("x-tc-region"):
            return self._error("MissingParameter", "The request is missing a required parameter `Region`.")
        timestamp = headers.get("x-tc-timestamp", "")
        if not timestamp.isdigit() or abs(self.now() - int(timestamp)) > self.max_skew_s:
            return self._error("AuthFailure.SignatureExpire", "Signature expired. Timestamp and server time differ.")
        auth = _TC3.fullmatch(headers.get("authorization", ""))
        if auth is None:
            return self._error("AuthFailure.InvalidAuthorization", "Authorization is invalid.")
        if auth["id"] != self.secret_id:
            return self._error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        signed = auth["headers"].split(";")
        if "content-type" not in signed or "host" not in signed or signed != sorted(signed):
            return self._error("AuthFailure.InvalidAuthorization", "SignedHeaders must sort and hold content-type;host")
        utc_date = datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d")
        # Tencent signs the host it serves, not whatever the client put in Host: so does the fake.
        received = {**headers, "host": urlsplit(self.url).netloc}
        canonical_headers = "".join(f"{name}:{received.get(name, '').strip().lower()}\n" for name in signed)
        expected = tencent_expected_signature(
            secret_key=self.secret_key,
            date=utc_date,
            service="sms",
            timestamp=timestamp,
            canonical_headers=canonical_headers,
            signed=auth["headers"],
            body=body,
        )
        if auth["date"] != utc_date or auth["service"] != "sms" or not hmac.compare_digest(expected, auth["signature"]):
            return self._error(
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. Please check your signature is correct.",
            )
        try:
            request = json.loads(body)
        except ValueError:
            return self._error("FailedOperation.FailResolvePacket", "Request package parsing failed.")
        return self._send(request if isinstance(request, dict) else {})

    def _send(self, request: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        phones, values = request.get("PhoneNumberSet"), request.get("TemplateParamSet", [])
        if not isinstance(phones, list) or not 1 <= len(phones) <= 200 or not request.get("TemplateId"):
            return self._error("MissingParameter", "PhoneNumberSet (1-200 numbers) and TemplateId are required.")
        if request.get("SmsSdkAppId") != self.sdk_app_id:
            return self._error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId does not exist.")
        if request.get("SignName") not in self.sign_names:
            return self._error("FailedOperation.SignatureIncorrectOrUnapproved", "签名未审批或格式错误")
        count = self.templates.get(str(request["TemplateId"]))
        if count is None:
            return self._error("FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批或内容不匹配")
        if not isinstance(values, list) or len(values) != count or not all(isinstance(v, str) for v in values):
            return self._error("FailedOperation.TemplateParamSetNotMatchApprovedTemplate", "参数个数与模板不匹配")
        if any(not 1 <= _units(value) <= self.max_variable_chars for value in values):
            return self._error("InvalidParameterValue.TemplateParameterLengthLimit", "单个模板变量字符数超过限制")
        context = str(request.get("SessionContext") or "")
        if len(context.encode()) >= 512:
            return self._error("InvalidParameterValue.InvalidParameters", "SessionContext must be under 512 bytes")
        statuses = [self._one(str(phone), request, values, context) for phone in phones]
        return 200, {"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}}

    def _one(self, raw: str, request: Mapping[str, Any], values: list[str], context: str) -> dict[str, Any]:
        status: dict[str, Any] = {"PhoneNumber": raw, "SessionContext": context, "Fee": 0, "IsoCode": "CN"}
        number = _MAINLAND.fullmatch(raw)
        with self._lock:
            if number is None:
                code, message = "InvalidParameterValue.IncorrectPhoneNumber", "手机号格式错误"
            elif self._sends_within(number.group(1), 30.0):
                code, message = (
                    "LimitExceeded.PhoneNumberThirtySecondLimit",
                    "单个手机号30秒内下发短信条数超过设定的上限",
                )
            elif self.daily_cap is not None and self._sends_within(number.group(1), 86400.0) >= self.daily_cap:
                code, message = "LimitExceeded.PhoneNumberDailyLimit", "单个手机号日下发短信条数超过设定的上限"
            else:
                serial = f"2645:{len(self.messages) + 1:012d}"
                self._accept(
                    SentSms(
                        number.group(1),
                        str(request["SignName"]),
                        str(request["TemplateId"]),
                        {str(i): v for i, v in enumerate(values, 1)},
                        context,
                        serial,
                        self.now(),
                    )
                )
                return {**status, "SerialNo": serial, "Fee": 1, "Code": "Ok", "Message": "send success"}
        self._refuse(code)
        return {**status, "SerialNo": "", "Code": code, "Message": message}
