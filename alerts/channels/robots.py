"""Group chat robots: the DingTalk custom robot, the WeCom group robot and the Feishu / Lark custom bot.

Each is a group chat, so each renders for the ``group`` audience (masked name, no address, no water use:
``alerts/channels/templates.py``). All three answer HTTP 200 to a message they refuse and say why in the
body, so ``judge`` reads the vendor's code; an answer that is not the vendor's JSON (a proxy's HTML page)
goes to ``http_failure``. Codes a retry cannot fix (a wrong signature, an unknown robot, a refused
keyword) are REJECT, which also marks the endpoint failing so an operator hears of it; throttling and
unknown codes are RETRY.

Signatures (checked byte for byte by the fakes in ``cli/fakes/``, which recompute them independently):

- DingTalk: ``timestamp`` in milliseconds and ``sign = urlencode(base64(HMAC-SHA256(key=secret,
  msg=f"{timestamp}\\n{secret}")))`` in the query, URL-encoded exactly once.
- Feishu: ``timestamp`` in seconds and ``sign = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b""))``
  in the JSON body: key and message are the reverse of DingTalk's.
- WeCom: none; the ``key`` in the URL is the credential, so the whole URL is treated as a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from alerts.channels.base import (
    ActionLink,
    Audience,
    HttpChannel,
    Notification,
    OutgoingRequest,
    Verdict,
    http_failure,
    vendor_answer,
)
from alerts.channels.limits import dump, fit_json, shorten
from alerts.channels.templates import Rendered, Templates, default_templates
from alerts.channels.types import ChannelType
from alerts.statuses import AttemptOutcome

JSON_HEADERS: Mapping[str, str] = {"content-type": "application/json; charset=utf-8"}
REDACTED = "[redacted]"
MAX_TITLE_CHARS = 100  # a chat title or preview line; longer ones are cut by the apps anyway


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature, base64 (not yet URL-encoded)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's signature: the key is ``timestamp + "\\n" + secret`` and the message is empty."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def without_params(url: str, names: frozenset[str]) -> str:
    """``url`` without the query parameters ``names`` (a pasted URL may carry an old timestamp and sign)."""
    parts = urlsplit(url)
    kept = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key not in names]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def answer_code(answer: Mapping[str, Any], *names: str) -> int | None:
    """The first of ``names`` the answer holds, as an int (vendors send numbers; tolerate numeric strings)."""
    for name in names:
        value = answer.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
    return None


def _message(answer: Mapping[str, Any], *names: str) -> str:
    return next((str(answer[name]) for name in names if answer.get(name)), "")


def _title(rendered: Rendered, keyword: str | None) -> str:
    title = rendered.title[:MAX_TITLE_CHARS]
    # A group secured by keywords drops any message without one; the title is where it costs least.
    if keyword and keyword not in title and keyword not in rendered.body:
        title = f"{title} {keyword}"
    return title


class _Robot(HttpChannel):
    audience: ClassVar[Audience] = "group"

    def __init__(self, templates: Templates | None) -> None:
        self.templates = templates or default_templates()

    def _render(self, notification: Notification, family: str, *, buttons: bool) -> Rendered:
        return self.templates.render(
            notification, channel_type=self.type, family=family, audience=self.audience, buttons=buttons
        )


class DingTalkRobot(_Robot):
    """A DingTalk group's custom robot: markdown, or an actionCard whose buttons are the action links."""

    type: ClassVar[str] = ChannelType.DINGTALK_ROBOT
    MAX_BODY_BYTES: ClassVar[int] = 20000  # DingTalk refuses larger bodies (460101, "exceed 20000 bytes")
    THROTTLED_FOR_S: ClassVar[float] = 600.0  # past 20 messages a minute the robot is muted for 10 minutes

    def __init__(
        self, url: str, *, secret: str | None = None, keyword: str | None = None, templates: Templates | None = None
    ) -> None:
        super().__init__(templates)
        self.url = without_params(url, frozenset({"timestamp", "sign"}))
        self.secret = secret or None
        self.keyword = keyword or None
        self._token = dict(parse_qsl(urlsplit(self.url).query)).get("access_token", "")

    def render(self, notification: Notification, *, now: datetime) -> OutgoingRequest:
        actions = notification.actions
        rendered = self._render(notification, "markdown", buttons=bool(actions))
        title = _title(rendered, self.keyword)

        def build(text: str) -> dict[str, Any]:
            # The title field is only the preview in the chat list; the message shows the text.
            content = f"#### {title}\n\n{text}"
            if not actions:
                return {"msgtype": "markdown", "markdown": {"title": title, "text": content}}
            card: dict[str, Any] = {"title": title, "text": content}
            if len(actions) == 1:
                card.update(singleTitle=_label(actions[0], notification), singleURL=actions[0].url)
            else:
                card["btnOrientation"] = "1" if len(actions) == 2 else "0"  # two side by side, more stacked
                card["btns"] = [{"title": _label(link, notification), "actionURL": link.url} for link in actions]
            return {"msgtype": "actionCard", "actionCard": card}

        body = fit_json(build, rendered.body, self.MAX_BODY_BYTES)
        url = self.url
        if self.secret:
            timestamp = int(now.timestamp() * 1000)
            # urlencode quotes once: "+" "/" "=" of base64 become %2B %2F %3D, and nothing else touches them.
            query = urlencode({"timestamp": timestamp, "sign": dingtalk_sign(self.secret, timestamp)})
            url = f"{url}{'&' if urlsplit(url).query else '?'}{query}"
        return OutgoingRequest(url=url, body=body, headers=JSON_HEADERS)

    def judge(self, status: int, body: bytes) -> Verdict:
        answer = vendor_answer(body)
        code = None if answer is None else answer_code(answer, "errcode")
        if answer is None or code is None:
            return http_failure(status, body)
        error = f"DingTalk errcode {code}: {_message(answer, 'errmsg')}"
        if code == 0:
            return Verdict(AttemptOutcome.DELIVERED)
        if code == 130101:
            return Verdict(AttemptOutcome.RETRY, error + " (throttled for 10 minutes)", self.THROTTLED_FOR_S)
        if code == 310000:
            # The group's security settings refused it: signature, keyword or IP allowlist. Only an
            # operator can fix that; retrying the same robot would be refused the same way.
            return Verdict(AttemptOutcome.REJECT, error + " (signature, keyword or IP allowlist refused)")
        if code == 460101 or 300000 <= code < 301000 or 400000 <= code < 401000:
            return Verdict(AttemptOutcome.REJECT, error)  # unknown or stopped robot, invalid token, too long
        return Verdict(AttemptOutcome.RETRY, error)

    def redact(self, text: str) -> str:
        return redact_secrets(text, self.secret, self._token)


class WeComRobot(_Robot):
    """A WeCom group robot: markdown (≤ 4096 bytes) or plain text (≤ 2048 bytes) with the links written out.
    No signature: the key in the URL is the credential, so the URL itself is a secret."""

    type: ClassVar[str] = ChannelType.WECOM_ROBOT
    MAX_BYTES: ClassVar[Mapping[str, int]] = {"markdown": 4096, "text": 2048}
    RATE_LIMITED_FOR_S: ClassVar[float] = 60.0  # 20 messages a minute per robot

    def __init__(
        self, url: str, *, msgtype: Literal["markdown", "text"] = "markdown", templates: Templates | None = None
    ) -> None:
        super().__init__(templates)
        if msgtype not in self.MAX_BYTES:
            raise ValueError(f"msgtype must be markdown or text, not {msgtype!r}")
        self.url = url
        self.msgtype = msgtype
        self._key = dict(parse_qsl(urlsplit(url).query)).get("key", "")

    def render(self, notification: Notification, *, now: datetime) -> OutgoingRequest:
        rendered = self._render(notification, self.msgtype, buttons=False)
        title = rendered.title[:MAX_TITLE_CHARS]
        head = f"**{title}**\n\n" if self.msgtype == "markdown" else f"{title}\n\n"
        content = head + rendered.body
        limit = self.MAX_BYTES[self.msgtype]  # the limit is on the content, not the whole body
        body: dict[str, Any] = {"msgtype": self.msgtype, self.msgtype: {"content": shorten(content, limit)}}
        return OutgoingRequest(url=self.url, body=dump(body), headers=JSON_HEADERS)

    def judge(self, status: int, body: bytes) -> Verdict:
        answer = vendor_answer(body)
        code = None if answer is None else answer_code(answer, "errcode")
        if answer is None or code is None:
            return http_failure(status, body)
        error = f"WeCom errcode {code}: {_message(answer, 'errmsg')}"
        if code == 0:
            return Verdict(AttemptOutcome.DELIVERED)
        if code == 45009:
            return Verdict(AttemptOutcome.RETRY, error + " (rate limited)", self.RATE_LIMITED_FOR_S)
        if code in WECOM_PERMANENT:
            return Verdict(AttemptOutcome.REJECT, error)
        return Verdict(AttemptOutcome.RETRY, error)

    def redact(self, text: str) -> str:
        return redact_secrets(text, self.url, self._key)


# 93000 invalid key (the robot was removed), 40008 invalid message type, 40058 invalid parameter (too long),
# 44004 empty content: the same bytes to the same URL fail the same way.
WECOM_PERMANENT = frozenset({93000, 40008, 40058, 44004})


class FeishuBot(_Robot):
    """A Feishu / Lark group's custom bot: an interactive card, the action links as its buttons."""

    type: ClassVar[str] = ChannelType.FEISHU_BOT
    MAX_BODY_BYTES: ClassVar[int] = 20 * 1024
    RATE_LIMITED_FOR_S: ClassVar[float] = 60.0  # 100 a minute and 5 a second per bot
    # 19001 unknown bot, 19021 signature or timestamp, 19022 IP not allowed, 19024 keyword missing,
    # 9499 malformed request: an operator has to change the bot or its settings.
    PERMANENT: ClassVar[frozenset[int]] = frozenset({19001, 19021, 19022, 19024, 9499})
    COLOURS: ClassVar[Mapping[str, str]] = {"critical": "red", "high": "red", "medium": "orange"}

    def __init__(
        self, url: str, *, secret: str | None = None, keyword: str | None = None, templates: Templates | None = None
    ) -> None:
        super().__init__(templates)
        self.url = url
        self.secret = secret or None
        self.keyword = keyword or None
        self._token = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]

    def render(self, notification: Notification, *, now: datetime) -> OutgoingRequest:
        actions = notification.actions
        rendered = self._render(notification, "markdown", buttons=bool(actions))
        title = _title(rendered, self.keyword)
        signed: dict[str, Any] = {}
        if self.secret:
            timestamp = int(now.timestamp())
            signed = {"timestamp": str(timestamp), "sign": feishu_sign(self.secret, timestamp)}
        buttons = [
            {
                "tag": "button",
                "text": {"tag": "plain_text", "content": _label(link, notification)},
                "type": "primary" if index == 0 else "default",
                "url": link.url,
            }
            for index, link in enumerate(actions)
        ]

        def build(text: str) -> dict[str, Any]:
            elements: list[dict[str, Any]] = [{"tag": "div", "text": {"tag": "lark_md", "content": text}}]
            if buttons:
                elements.append({"tag": "action", "actions": buttons})
            header = {"title": {"tag": "plain_text", "content": title}, "template": self._colour(notification)}
            card = {"config": {"wide_screen_mode": True}, "header": header, "elements": elements}
            return {**signed, "msg_type": "interactive", "card": card}

        return OutgoingRequest(
            url=self.url, body=fit_json(build, rendered.body, self.MAX_BODY_BYTES), headers=JSON_HEADERS
        )

    def _colour(self, notification: Notification) -> str:
        if notification.event_type == "alert.resolved":
            return "green"
        if notification.event_type == "endpoint.ping":
            return "grey"
        return self.COLOURS.get(str(notification.data.get("severity")), "blue")

    def judge(self, status: int, body: bytes) -> Verdict:
        answer = vendor_answer(body)
        # The current answer is {"code": 0, "msg": "success"}; older bots still answer {"StatusCode": 0, …}.
        code = None if answer is None else answer_code(answer, "code", "StatusCode")
        if answer is None or code is None:
            return http_failure(status, body)
        error = f"Feishu code {code}: {_message(answer, 'msg', 'StatusMessage')}"
        if code == 0:
            return Verdict(AttemptOutcome.DELIVERED)
        if code == 11232:
            return Verdict(AttemptOutcome.RETRY, error + " (rate limited)", self.RATE_LIMITED_FOR_S)
        if code in self.PERMANENT:
            return Verdict(AttemptOutcome.REJECT, error)
        return Verdict(AttemptOutcome.RETRY, error)

    def redact(self, text: str) -> str:
        return redact_secrets(text, self.url, self.secret, self._token)


def _label(link: ActionLink, notification: Notification) -> str:
    return link.label_en if notification.language.lower().startswith("en") else link.label_zh


def redact_secrets(text: str, *secrets: str | None) -> str:
    """``text`` with every secret (of 4 characters or more) replaced by ``[redacted]``."""
    # Longest first: the URL contains the token, and replacing the token first would leave the URL unmatched.
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
