"""Webhook signing secrets sealed at rest, with the same key and box as channel credentials
(alerts/secret_box.py): a webhook endpoint's ``sealed_config`` holds ``{"secret": "whsec_…"}``, and after a
rotation also the previous secret and when it stops being used. The dispatcher opens it only to sign; a
database without the key cannot sign anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.secret_box import SecretBox, SecretBoxError
from alerts.webhooks.signing import new_secret


class WebhookSecretError(ValueError):
    """A webhook secret that cannot be opened (no key, a wrong key, nothing stored): nothing is signed."""


@dataclass(frozen=True)
class WebhookSecrets:
    """What signs one delivery: the current secret, and the previous one while its overlap lasts."""

    current: str
    previous: str | None = None
    previous_until: datetime | None = None

    def signing(self, now: datetime) -> list[str]:
        """The secrets a delivery at ``now`` is signed with, the current one first."""
        if self.previous and self.previous_until is not None and now < self.previous_until:
            return [self.current, self.previous]
        return [self.current]


def seal_webhook_secret(
    box: SecretBox, secret: str, *, previous: str | None = None, previous_until: datetime | None = None
) -> str:
    value: dict[str, str] = {"secret": secret}
    if previous is not None and previous_until is not None:
        value["previous_secret"] = previous
        value["previous_until"] = previous_until.isoformat()
    return box.seal(value)


def open_webhook_secrets(box: SecretBox | None, sealed: str | None) -> WebhookSecrets:
    """The endpoint's secrets; WebhookSecretError (never echoing a secret) when they cannot be read."""
    if box is None:
        raise WebhookSecretError("cannot sign: no key to open webhook secrets (SHOUWANG_SECRET_KEYS)")
    if not sealed:
        raise WebhookSecretError("cannot sign: the endpoint has no sealed webhook secret")
    try:
        value = box.open(sealed)
    except SecretBoxError:
        raise WebhookSecretError(
            "cannot sign: the webhook secret opens with none of SHOUWANG_SECRET_KEYS (a database without its key)"
        ) from None
    current, previous, until = value.get("secret"), value.get("previous_secret"), value.get("previous_until")
    if not isinstance(current, str) or not current:
        raise WebhookSecretError("cannot sign: the sealed webhook secret holds no secret")
    if isinstance(previous, str) and isinstance(until, str):
        return WebhookSecrets(current, previous, datetime.fromisoformat(until))
    return WebhookSecrets(current)


def rotated(box: SecretBox, sealed: str | None, *, now: datetime, overlap: timedelta) -> tuple[str, str]:
    """A new secret and the endpoint's new sealed value: the old secret keeps signing too until
    ``now + overlap`` (none if it cannot be read, or the overlap is zero). Returns (new secret, sealed)."""
    secret = new_secret()
    try:
        old: str | None = open_webhook_secrets(box, sealed).current
    except WebhookSecretError:
        old = None
    if old is None or overlap <= timedelta(0):
        return secret, seal_webhook_secret(box, secret)
    return secret, seal_webhook_secret(box, secret, previous=old, previous_until=now + overlap)
