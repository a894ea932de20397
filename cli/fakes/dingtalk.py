"""A local fake of DingTalk's custom group robot (自定义机器人): ``POST /robot/send?access_token=…``.

It checks a request the way DingTalk does, with its own copy of the signing algorithm (not the channel's
code, so a mistake in one is caught by the other):

- the robot: an unknown ``access_token`` → 300001;
- signing (加签), when the robot has a secret: ``timestamp`` (milliseconds, within an hour of the fake's
  clock) and ``sign`` in the query, decoded once as any server decodes a query, must equal
  ``base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}"))``; otherwise 310000, with HTTP 200 as
  DingTalk answers. A signature URL-encoded twice (``%252B``) fails here as it fails there;
- keywords, when the robot has some: the message must contain one → else 310000;
- the body: JSON, ``msgtype`` one of text, markdown, actionCard, link, feedCard with that type's
  required fields; at most 20 000 bytes → else 460101;
- throttling: 20 messages a minute per robot; the 21st → 130101 and the robot stays muted 10 minutes.

Every accepted message is recorded, parsed. ``mode`` = "garbage" answers an HTML gateway page, "hang"
never answers::

    with FakeDingTalk() as fake:
        url = fake.add_robot("a" * 64, secret="SEC" + "b" * 64)
        … send to url …
        fake.wait_for(1)[0].message["markdown"]["text"]
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cli.fakes.vendor_server import Answer, FakeVendor, Request, is_json_request

PATH = "/robot/send"
MAX_BODY_BYTES = 20000
PER_MINUTE = 20
MUTED_FOR_S = 600.0
WINDOW_MS = 3600 * 1000


@dataclass
class Robot:
    access_token: str
    secret: str | None = None
    keywords: tuple[str, ...] = ()
    muted_until: float = 0.0


def expected_sign(secret: str, timestamp: str) -> str:
    """DingTalk's signature of ``timestamp`` (the digits as sent), base64, before URL encoding."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def _texts(message: Mapping[str, Any]) -> list[str]:
    """Every piece of text a keyword may be found in."""
    found: list[str] = []
    for part in message.values():
        if isinstance(part, Mapping):
            found += [str(value) for key, value in part.items() if key in ("content", "title", "text")]
    return found


def _shape_error(message: Mapping[str, Any]) -> str | None:
    """Why DingTalk would refuse the message's shape, or None."""
    kind = message.get("msgtype")
    part = message.get(str(kind))
    if kind not in ("text", "markdown", "actionCard", "link", "feedCard"):
        return f"msgtype {kind!r} is not supported"
    if not isinstance(part, Mapping):
        return f"{kind} is missing"

    def filled(*names: str) -> bool:
        return all(isinstance(part.get(name), str) and part[name].strip() for name in names)

    if kind == "text" and not filled("content"):
        return "text.content is empty"
    if kind == "markdown" and not filled("title", "text"):
        return "markdown needs title and text"
    if kind == "link" and not filled("title", "text", "messageUrl"):
        return "link needs title, text and messageUrl"
    if kind == "actionCard":
        if not filled("title", "text"):
            return "actionCard needs title and text"
        buttons = part.get("btns")
        single = filled("singleTitle", "singleURL")
        if not single and not (
            isinstance(buttons, list)
            and buttons
            and all(isinstance(b, Mapping) and b.get("title") and b.get("actionURL") for b in buttons)
        ):
            return "actionCard needs singleTitle and singleURL, or btns of title and actionURL"
    return None


class FakeDingTalk(FakeVendor):
    def __init__(self, *, clock: Callable[[], float] | None = None) -> None:
        super().__init__(**({"clock": clock} if clock else {}))
        self.robots: dict[str, Robot] = {}

    def add_robot(self, access_token: str, *, secret: str | None = None, keywords: Iterable[str] = ()) -> str:
        """Create a robot; returns its webhook URL (as DingTalk shows it, without timestamp and sign)."""
        self.robots[access_token] = Robot(access_token, secret, tuple(keywords))
        return self.robot_url(access_token)

    def robot_url(self, access_token: str) -> str:
        return f"{self.url}{PATH}?access_token={access_token}"

    def _error(self, code: int, message: str) -> Answer:
        self.refuse(code)
        return 200, {"errcode": code, "errmsg": message}

    def answer(self, request: Request) -> Answer:
        if request.path != PATH or request.method != "POST":
            return 404, {"errcode": 404, "errmsg": "请求的URI地址不存在"}
        robot = self.robots.get(request.param("access_token") or "")
        if robot is None:
            return self._error(300001, "token is not exist")
        if robot.secret is not None:
            refused = self._check_signature(robot, request)
            if refused is not None:
                return self._error(310000, refused)
        if len(request.body) > MAX_BODY_BYTES:
            return self._error(460101, f"message too long, exceed {MAX_BODY_BYTES} bytes")
        message = request.json()
        if not is_json_request(request) or not isinstance(message, Mapping):
            return self._error(40035, "缺少参数 json")
        shape = _shape_error(message)
        if shape is not None:
            return self._error(40035, f"不合法的参数: {shape}")
        if robot.keywords and not any(k in text for k in robot.keywords for text in _texts(message)):
            return self._error(310000, "keywords not in content")
        now = self.now()
        if now < robot.muted_until:
            return self._error(130101, "send too fast, exceed 20 times per minute")
        if self.sent_within(robot.access_token, 60.0) >= PER_MINUTE:
            robot.muted_until = now + MUTED_FOR_S
            return self._error(130101, "send too fast, exceed 20 times per minute")
        self.accept(robot.access_token, message, request)
        return 200, {"errcode": 0, "errmsg": "ok"}

    def _check_signature(self, robot: Robot, request: Request) -> str | None:
        assert robot.secret is not None
        timestamp, sign = request.param("timestamp"), request.param("sign")
        if not timestamp or not sign:
            return "sign not match, more: [timestamp and sign are required]"
        if not timestamp.isdigit():
            return "invalid timestamp"
        if abs(int(timestamp) - self.now() * 1000) > WINDOW_MS:
            return "invalid timestamp: not within one hour (milliseconds expected)"
        if not hmac.compare_digest(sign, expected_sign(robot.secret, timestamp)):
            return "sign not match"
        return None
