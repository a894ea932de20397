"""One-tap action links: signed, scoped to one recipient, one alert and one action, expiring, used once.

A chat message or an SMS cannot carry an API key, so every notification to a person carries links for
the actions their role may take. A link names one delivery (which fixes the recipient and the alert)
and one action, signed with a key from SHOUWANG_SECRET_KEYS (HMAC-SHA256, truncated to 60 bits as
one-time codes are: a guess must be made online, one request each): the same delivery gives the same link
on every attempt, and the token is 35 characters, which fits an SMS template variable.
It expires SHOUWANG_ACTION_LINK_TTL_H hours after the notification was recorded, and its use is
recorded (``ActionLinkUse``), so a forwarded or replayed link changes nothing. Opening a link only
shows a page; the page's button performs the action (link previews in chat apps open links).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.channels.base import ActionLink
from alerts.channels.types import GROUP_CHANNELS
from alerts.check_ins import answer_away, answer_fine
from alerts.lifecycle import acknowledge, resolve
from alerts.models import ActionLinkUse, Alert, Delivery, Endpoint, Recipient
from alerts.pipeline import RouterConfig
from alerts.statuses import AlertStatus

_SALT = b"shouwang.action-link.v1\0"
# What each role may do from a message: families acknowledge ("I am on it"); staff may also resolve.
ROLE_ACTIONS: dict[str, tuple[str, ...]] = {
    "resident": ("fine", "away"),  # the elder answers a check-in: I'm fine / I'm away (until a day)
    "family": ("acknowledge",),
    "grid_worker": ("acknowledge", "resolve"),
    "supervisor": ("acknowledge", "resolve"),
    "operator": ("acknowledge", "resolve"),
}
_CODES = {"acknowledge": "a", "resolve": "r", "fine": "f", "away": "w"}
_ACTIONS = {code: action for action, code in _CODES.items()}
LABELS = {
    "acknowledge": ("我来处理", "I'll handle it"),
    "resolve": ("处理完毕", "Resolve"),
    "fine": ("我很好", "I'm fine"),
    "away": ("我不在家", "I'm away"),
}
# A token: the delivery id without its "msg_" (24 url-safe characters), the action's letter, a 10-character tag.
_DELIVERY = re.compile(r"^msg_([A-Za-z0-9_-]{24})$")
_TOKEN = re.compile(r"^([A-Za-z0-9_-]{24})([arfw])([A-Za-z0-9_-]{10})$")


class LinkError(ValueError):
    """A link that cannot be used; the message is for the person who opened it."""


@dataclass(frozen=True)
class LinkClaims:
    delivery_id: str  # the notification the link came in: its recipient and alert
    action: str


class ActionLinkSigner:
    """Signs and checks links. ``keys``: newest first (the first signs, every one verifies)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("no key to sign action links with")
        self._keys = [hashlib.sha256(_SALT + key.encode()).digest() for key in keys]

    def token(self, *, delivery_id: str, action: str) -> str | None:
        """The link's token, or None for a delivery that cannot have links (a digest, a ping)."""
        match = _DELIVERY.match(delivery_id)
        if match is None:
            return None
        body = match.group(1) + _CODES[action]
        return body + _tag(self._keys[0], body)

    def verify(self, token: str) -> LinkClaims:
        match = _TOKEN.match(token)
        if match is None or not any(hmac.compare_digest(_tag(key, token[:25]), match.group(3)) for key in self._keys):
            raise LinkError("this link is not valid: it was cut short or changed")
        return LinkClaims(delivery_id="msg_" + match.group(1), action=_ACTIONS[match.group(2)])


def _tag(key: bytes, body: str) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest())[:10].decode()


@dataclass(frozen=True)
class LinkMaker:
    """Makes the links of a notification, under the API's public URL (SHOUWANG_PUBLIC_URL)."""

    signer: ActionLinkSigner
    public_url: str

    def __call__(self, *, delivery_id: str, role: str) -> tuple[ActionLink, ...]:
        """The links a recipient of this role gets in this notification (none for roles without actions)."""
        base = self.public_url.rstrip("/")
        links = []
        for action in ROLE_ACTIONS.get(role, ()):
            token = self.signer.token(delivery_id=delivery_id, action=action)
            if token is not None:
                links.append(ActionLink(action, f"{base}/a/{token}", LABELS[action][0], LABELS[action][1]))
        return tuple(links)


LinkState = Literal["ready", "done", "used", "expired", "invalid", "closed"]


@dataclass(frozen=True)
class LinkView:
    """What a person who opened a link sees: the state of the link and, when it is genuine, the alert."""

    state: LinkState
    message_zh: str
    message_en: str
    action: str | None = None
    alert: Alert | None = None
    recipient: Recipient | None = None
    group: bool = True  # the link came to a group chat: its page shows no more than the message did


def open_link(session: Session, signer: ActionLinkSigner, token: str, *, now: datetime, ttl: timedelta) -> LinkView:
    """Check a link without changing anything (a GET: chat apps open links to preview them)."""
    try:
        claims = signer.verify(token)
    except LinkError:
        return LinkView(
            "invalid", "链接无效（可能被截断或改动）。", "This link is not valid: it was cut short or changed."
        )
    delivery = session.get(Delivery, claims.delivery_id)
    recipient = session.get(Recipient, delivery.recipient_id) if delivery else None
    alert = session.get(Alert, delivery.alert_id) if delivery else None
    if (
        delivery is None
        or recipient is None
        or alert is None
        or claims.action not in ROLE_ACTIONS.get(recipient.role, ())
    ):
        return LinkView("invalid", "链接无效。", "This link is not valid.")
    endpoint = session.get(Endpoint, delivery.endpoint_id)
    group = endpoint is None or endpoint.type in GROUP_CHANNELS
    seen = LinkView("ready", "", "", claims.action, alert, recipient, group)
    used = session.scalar(
        select(ActionLinkUse).where(ActionLinkUse.delivery_id == delivery.id, ActionLinkUse.action == claims.action)
    )
    if used is not None:
        return replace(seen, state="used", message_zh="此链接已使用过。", message_en="This link has been used already.")
    if now >= delivery.created_at + ttl:
        return replace(seen, state="expired", message_zh="此链接已过期。", message_en="This link has expired.")
    family_saw = recipient.role == "family" and alert.family_seen_at is not None
    if alert.status == AlertStatus.RESOLVED or (
        claims.action == "acknowledge" and (alert.status == AlertStatus.ACKNOWLEDGED or family_saw)
    ):
        return replace(
            seen,
            state="closed",
            message_zh="此告警已有人处理，无需操作。",
            message_en="Someone has handled this alert already: nothing to do.",
        )
    return seen


def use_link(
    session: Session,
    signer: ActionLinkSigner,
    token: str,
    *,
    now: datetime,
    ttl: timedelta,
    outcome: str | None,
    note: str | None,
    config: RouterConfig,
    until: str | None = None,
) -> LinkView:
    """Perform the link's action, once, recorded with its recipient as the actor (the page's button)."""
    view = open_link(session, signer, token, now=now, ttl=ttl)
    if view.state != "ready" or view.alert is None or view.recipient is None or view.action is None:
        return view
    claims = signer.verify(token)
    by = f"{view.recipient.name} ({view.recipient.id}, via link)"
    if view.action == "acknowledge":
        acknowledge(session, view.alert, by=by, now=now, role=view.recipient.role, config=config)
    elif view.action == "fine":
        answer_fine(session, view.alert, by=by, now=now, config=config)
    elif view.action == "away":
        answer_away(session, view.alert, by=by, until=until or "", now=now, config=config)
    else:
        resolve(session, view.alert, by=by, outcome=outcome or "", note=note, now=now, config=config)
    # The unique (delivery, action) constraint makes a second use, even a concurrent one, fail here.
    session.add(ActionLinkUse(delivery_id=claims.delivery_id, action=view.action, used_at=now))
    session.flush()
    return replace(view, state="done", message_zh="已记录，谢谢。", message_en="Done, thank you.")
