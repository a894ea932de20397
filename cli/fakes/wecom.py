"""Local fakes of WeCom (企业微信): the group robot and application messages.

``FakeWeComRobot``: ``POST /cgi-bin/webhook/send?key=…``. An unknown key → 93000; the body must be JSON
with ``msgtype`` text or markdown (else 40008), a non-empty ``content`` (else 44004) of at most 2048
(text) or 4096 (markdown) bytes of UTF-8 (else 40058, as WeCom names the field and its limit); 20
messages a minute per robot, the 21st → 45009. Answers HTTP 200 with ``{"errcode", "errmsg"}``.

``FakeWeComApp``: ``GET /cgi-bin/gettoken?corpid=…&corpsecret=…`` issues an access token with
``expires_in`` (unknown corp → 40013, wrong secret → 40001) and ``POST /cgi-bin/message/send?access_token=…``
sends: an unknown token → 40014, an expired one → 42001; ``agentid`` must be the application's (40056),
``touser`` names members (``|``-separated; none valid → 81013, some invalid → sent, listed in
``invaliduser``); content ≤ 2048 bytes (40058). ``expire_tokens`` and ``revoke_tokens`` make the tokens
already handed out fail as WeCom's do when they lapse or another caller fetched a new one.

Both record every accepted message, can answer garbage HTML or hang (``mode``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cli.fakes.vendor_server import Answer, FakeVendor, Request, is_json_request, utf8_len

ROBOT_PATH = "/cgi-bin/webhook/send"
ROBOT_LIMITS = {"text": 2048, "markdown": 4096}
APP_LIMITS = {"text": 2048, "markdown": 2048}
PER_MINUTE = 20


def _content_error(message: Mapping[str, Any], limits: Mapping[str, int]) -> tuple[int, str] | None:
    kind = message.get("msgtype")
    if kind not in limits:
        return 40008, f"invalid message type {kind!r}"
    part = message.get(str(kind))
    content = part.get("content") if isinstance(part, Mapping) else None
    if not isinstance(content, str) or not content.strip():
        return 44004, "empty content"
    if utf8_len(content) > limits[str(kind)]:
        return 40058, f"{kind}.content exceed max length {limits[str(kind)]}. invalid Request Parameter"
    return None


class FakeWeComRobot(FakeVendor):
    def __init__(self, *, clock: Callable[[], float] | None = None) -> None:
        super().__init__(**({"clock": clock} if clock else {}))
        self.keys: set[str] = set()

    def add_robot(self, key: str) -> str:
        """Create a robot; returns its webhook URL."""
        self.keys.add(key)
        return f"{self.url}{ROBOT_PATH}?key={key}"

    def _error(self, code: int, message: str) -> Answer:
        self.refuse(code)
        return 200, {"errcode": code, "errmsg": message}

    def answer(self, request: Request) -> Answer:
        if request.path != ROBOT_PATH or request.method != "POST":
            return 404, {"errcode": 404, "errmsg": "not found"}
        key = request.param("key") or ""
        if key not in self.keys:
            return self._error(93000, "invalid webhook url")
        message = request.json()
        if not is_json_request(request) or not isinstance(message, Mapping):
            return self._error(40035, "invalid parameter: body is not JSON")
        refused = _content_error(message, ROBOT_LIMITS)
        if refused is not None:
            return self._error(*refused)
        if self.sent_within(key, 60.0) >= PER_MINUTE:
            return self._error(45009, "api freq out of limit")
        self.accept(key, message, request)
        return 200, {"errcode": 0, "errmsg": "ok"}


@dataclass
class App:
    corp_id: str
    corp_secret: str
    agent_id: int
    users: frozenset[str]
    tokens: dict[str, float] = field(default_factory=dict)  # token → expiry on the fake's clock


class FakeWeComApp(FakeVendor):
    def __init__(self, *, token_ttl_s: int = 7200, clock: Callable[[], float] | None = None) -> None:
        super().__init__(**({"clock": clock} if clock else {}))
        self.token_ttl_s = token_ttl_s
        self.apps: dict[str, App] = {}  # corp id → its one application (enough for tests)
        self.token_requests = 0

    def add_app(self, corp_id: str, corp_secret: str, agent_id: int, users: Iterable[str]) -> str:
        """Create an application; returns the API base to configure (``http://127.0.0.1:PORT``)."""
        self.apps[corp_id] = App(corp_id, corp_secret, agent_id, frozenset(users))
        return self.url

    def expire_tokens(self) -> None:
        """Every token handed out lapses now (42001 on its next use)."""
        for app in self.apps.values():
            app.tokens = {token: min(expiry, self.now() - 1) for token, expiry in app.tokens.items()}

    def revoke_tokens(self) -> None:
        """Every token handed out becomes unknown (40014), as after the secret was reset."""
        for app in self.apps.values():
            app.tokens.clear()

    def _error(self, code: int, message: str) -> Answer:
        self.refuse(code)
        return 200, {"errcode": code, "errmsg": message}

    def answer(self, request: Request) -> Answer:
        if request.path == "/cgi-bin/gettoken" and request.method == "GET":
            return self._token(request)
        if request.path == "/cgi-bin/message/send" and request.method == "POST":
            return self._send(request)
        return 404, {"errcode": 404, "errmsg": "not found"}

    def _token(self, request: Request) -> Answer:
        with self._lock:
            self.token_requests += 1
        app = self.apps.get(request.param("corpid") or "")
        if app is None:
            return self._error(40013, "invalid corpid")
        if request.param("corpsecret") != app.corp_secret:
            return self._error(40001, "invalid credential")
        token = secrets.token_urlsafe(48)
        app.tokens[token] = self.now() + self.token_ttl_s
        return 200, {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.token_ttl_s}

    def _send(self, request: Request) -> Answer:
        token = request.param("access_token") or ""
        app = next((app for app in self.apps.values() if token in app.tokens), None)
        if app is None:
            return self._error(40014, "invalid access_token")
        if self.now() >= app.tokens[token]:
            return self._error(42001, "access_token expired")
        message = request.json()
        if not is_json_request(request) or not isinstance(message, Mapping):
            return self._error(40035, "invalid parameter: body is not JSON")
        if message.get("agentid") != app.agent_id:
            return self._error(40056, "invalid agentid")
        refused = _content_error(message, APP_LIMITS)
        if refused is not None:
            return self._error(*refused)
        named = [user for user in str(message.get("touser") or "").split("|") if user]
        valid = [user for user in named if user in app.users]
        if not valid:
            return self._error(81013, "user & party & tag all invalid")
        if self.sent_within(str(app.agent_id), 60.0) >= 30 * 60:  # generous: per-app limits are per hour/day
            return self._error(45009, "api freq out of limit")
        self.accept(str(app.agent_id), message, request)
        invalid = [user for user in named if user not in app.users]
        return 200, {"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid), "msgid": secrets.token_hex(8)}
