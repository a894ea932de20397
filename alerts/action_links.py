"""One-tap action links: signed, scoped to one recipient, one alert and one action, expiring, used once.

A chat message or an SMS cannot carry an API key, so every notification to a person carries links for
the actions their role may take. A link names one delivery (which fixes the recipient and the alert)
and one action, signed with a key from SHOUWANG_SECRET_KEYS (itsdangerous, HMAC-SHA256): the same
delivery gives the same link on every attempt, and the link stays short enough for a text message.
It expires SHOUWANG_ACTION_LINK_TTL_H hours after the notification was recorded, and its use is
recorded (``ActionLinkUse``), so a forwarded or replayed link changes nothing. Opening a link only
shows a page; the page's button performs the action (link previews in chat apps open links).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from itsdangerous import BadSignature, Signer

from alerts.channels.base import ActionLink

_SALT = "shouwang.action-link.v1"
# What each role may do from a message: families acknowledge ("I am on it"); staff may also resolve.
ROLE_ACTIONS: dict[str, tuple[str, ...]] = {
    "family": ("acknowledge",),
    "grid_worker": ("acknowledge", "resolve"),
    "supervisor": ("acknowledge", "resolve"),
    "operator": ("acknowledge", "resolve"),
}
_CODES = {"acknowledge": "ack", "resolve": "res"}
_ACTIONS = {code: action for action, code in _CODES.items()}
LABELS = {"acknowledge": ("我来处理", "I'll handle it"), "resolve": ("处理完毕", "Resolve")}
_TOKEN = re.compile(r"^(msg_[A-Za-z0-9]{1,60})\.(ack|res)\.[A-Za-z0-9_-]{20,100}$")


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
        # itsdangerous signs with the last key of the list and verifies with any
        self._signer = Signer(list(reversed(keys)), salt=_SALT, digest_method=hashlib.sha256)

    def token(self, *, delivery_id: str, action: str) -> str:
        return self._signer.sign(f"{delivery_id}.{_CODES[action]}").decode()

    def verify(self, token: str) -> LinkClaims:
        match = _TOKEN.match(token)
        if match is None:
            raise LinkError("this link is not valid: it was cut short or changed")
        try:
            self._signer.unsign(token)
        except BadSignature:
            raise LinkError("this link is not valid: it was cut short or changed") from None
        return LinkClaims(delivery_id=match.group(1), action=_ACTIONS[match.group(2)])


def links_for(signer: ActionLinkSigner, *, public_url: str, delivery_id: str, role: str) -> tuple[ActionLink, ...]:
    """The links a recipient of this role gets in this notification (none for roles without actions)."""
    base = public_url.rstrip("/")
    return tuple(
        ActionLink(
            action=action,
            url=f"{base}/a/{signer.token(delivery_id=delivery_id, action=action)}",
            label_zh=LABELS[action][0],
            label_en=LABELS[action][1],
        )
        for action in ROLE_ACTIONS.get(role, ())
    )
