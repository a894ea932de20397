"""A local fake of the Feishu / Lark custom bot (自定义机器人): ``POST /open-apis/bot/v2/hook/{token}``.

It checks a request the way Feishu does, with its own copy of the signing algorithm:

- the bot: an unknown token → 19001;
- signing (签名校验), when the bot has a secret: ``timestamp`` (seconds, a string, within an hour of the
  fake's clock) and ``sign`` in the JSON body, ``sign == base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}",
  msg=b""))``; otherwise 19021 (HTTP 200), whose message names both causes as Feishu's does;
- keywords, when the bot has some: the message must contain one → else 19024 ("Key Words Not Found");
- the body: JSON of at most 20 KB with ``msg_type`` text (``content.text``), post (``content.post``) or
  interactive (a ``card`` with ``elements``; buttons need text and a url) → else 9499 (Bad Request);
- throttling: 5 messages a second and 100 a minute per bot → 11232.

Success is ``{"code": 0, "msg": "success", "data": {}}``; ``legacy_answers = True`` answers the older shape
``{"Extra": null, "StatusCode": 0, "StatusMessage": "success"}`` that some bots still get.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cli.fakes.vendor_server import Answer, FakeVendor, Request, is_json_request

PREFIX = "/open-apis/bot/v2/hook/"
MAX_BODY_BYTES = 20 * 1024
PER_SECOND, PER_MINUTE = 5, 100
WINDOW_S = 3600


@dataclass
class Bot:
    token: str
    secret: str | None = None
    keywords: tuple[str, ...] = ()


def expected_sign(secret: str, timestamp: str) -> str:
    """Feishu's signature: HMAC-SHA256 keyed with ``timestamp + "\\n" + secret`` over an empty message."""
    mac = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def _shape_error(message: Mapping[str, Any]) -> str | None:
    kind = message.get("msg_type")
    if kind == "text":
        content = message.get("content")
        text = content.get("text") if isinstance(content, Mapping) else None
        return None if isinstance(text, str) and text.strip() else "content.text is required"
    if kind == "post":
        content = message.get("content")
        return None if isinstance(content, Mapping) and isinstance(content.get("post"), Mapping) else "content.post"
    if kind == "interactive":
        card = message.get("card")
        if not isinstance(card, Mapping) or not isinstance(card.get("elements"), list) or not card["elements"]:
            return "card.elements is required"
        for element in card["elements"]:
            if not isinstance(element, Mapping) or not element.get("tag"):
                return "every card element needs a tag"
            for button in element.get("actions", []) if element.get("tag") == "action" else []:
                text = button.get("text") if isinstance(button, Mapping) else None
                if not isinstance(text, Mapping) or not text.get("content") or not button.get("url"):
                    return "a button needs text.content and a url"
        return None
    return f"msg_type {kind!r} is not supported"


class FakeFeishu(FakeVendor):
    def __init__(self, *, clock: Callable[[], float] | None = None) -> None:
        super().__init__(**({"clock": clock} if clock else {}))
        self.bots: dict[str, Bot] = {}
        self.legacy_answers = False

    def add_bot(self, token: str, *, secret: str | None = None, keywords: Iterable[str] = ()) -> str:
        """Create a bot; returns its webhook URL."""
        self.bots[token] = Bot(token, secret, tuple(keywords))
        return f"{self.url}{PREFIX}{token}"

    def _error(self, code: int, message: str) -> Answer:
        self.refuse(code)
        return 200, {"code": code, "data": {}, "msg": message}

    def answer(self, request: Request) -> Answer:
        if not request.path.startswith(PREFIX) or request.method != "POST":
            return 404, {"code": 404, "msg": "404 page not found"}
        bot = self.bots.get(request.path[len(PREFIX) :])
        if bot is None:
            return self._error(19001, "param invalid: incoming webhook access token invalid")
        message = request.json()
        if len(request.body) > MAX_BODY_BYTES:
            return self._error(9499, f"Bad Request: body larger than {MAX_BODY_BYTES} bytes")
        if not is_json_request(request) or not isinstance(message, Mapping):
            return self._error(9499, "Bad Request")
        if bot.secret is not None and not self._signed(bot.secret, message):
            return self._error(19021, "sign match fail or timestamp is not within one hour from current time")
        shape = _shape_error(message)
        if shape is not None:
            return self._error(9499, f"Bad Request: {shape}")
        if bot.keywords:
            text = json.dumps({k: v for k, v in message.items() if k not in ("sign", "timestamp")}, ensure_ascii=False)
            if not any(keyword in text for keyword in bot.keywords):
                return self._error(19024, "Key Words Not Found")
        if self.sent_within(bot.token, 1.0) >= PER_SECOND or self.sent_within(bot.token, 60.0) >= PER_MINUTE:
            return self._error(11232, "frequency limited psm[lark.oapi.app_platform_runtime]appID[1]")
        self.accept(bot.token, message, request)
        if self.legacy_answers:
            return 200, {"Extra": None, "StatusCode": 0, "StatusMessage": "success"}
        return 200, {"code": 0, "data": {}, "msg": "success"}

    def _signed(self, secret: str, message: Mapping[str, Any]) -> bool:
        timestamp, sign = message.get("timestamp"), message.get("sign")
        if not isinstance(timestamp, str | int) or not isinstance(sign, str) or not str(timestamp).isdigit():
            return False
        if abs(int(timestamp) - self.now()) > WINDOW_S:
            return False
        return hmac.compare_digest(sign, expected_sign(secret, str(timestamp)))
