"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

Receivers verify our deliveries with any Standard Webhooks library, so the signature itself is produced by
the reference implementation (``standardwebhooks.Webhook.sign``) rather than re-implemented here; this
module only adds the input checks that the reference implementation silently skips:

* ``Webhook.sign`` does ``timestamp.replace(tzinfo=utc)``, which *relabels* an aware non-UTC datetime
  instead of converting it (a Beijing-time ``now`` would be signed eight hours in the future and rejected
  by every receiver). We convert to UTC first and refuse naive datetimes, whose zone is a guess.
* ``Webhook("whsec_...")`` decodes the secret leniently (non-base64 characters are dropped), so a
  corrupted secret would sign with a different key without any error. We decode strictly.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
MESSAGE_ID_PREFIX = "msg_"
# The spec recommends 24..64 byte keys; fewer than 24 random bytes is too guessable for a signing key.
MIN_SECRET_BYTES = 24
_SECRET_BYTES = 32
# A header value that needs no quoting and cannot smuggle a CR/LF into the request.
_MESSAGE_ID_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,200}")


def new_secret() -> str:
    """A fresh endpoint signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def new_message_id() -> str:
    """A fresh ``webhook-id``. It is stored with the delivery *before* the first attempt so that every retry
    carries the same id and receivers can de-duplicate."""
    return MESSAGE_ID_PREFIX + secrets.token_urlsafe(18)


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_`` secret. Raises ValueError (never echoing the secret) if malformed."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"webhook secret must start with {SECRET_PREFIX!r}")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("webhook secret is not valid base64 after the 'whsec_' prefix") from None
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"webhook secret key is {len(key)} bytes; at least {MIN_SECRET_BYTES} are required")
    return key


def sign_headers(
    *, secret: str, message_id: str, timestamp: datetime, body: bytes, also_signed_by: Sequence[str] = ()
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt.

    ``also_signed_by``: more secrets (the previous one during a rotation's overlap); the header then carries
    one space-separated ``v1,`` signature per secret, and a receiver on either secret verifies it.

    ``timestamp`` must be timezone-aware and should be the time of *this attempt* (receivers reject
    timestamps more than five minutes off their clock), so re-sign on every retry; only the id is stable.
    ``body`` must be UTF-8 (it is JSON), because the spec signs ``f"{id}.{timestamp}.{body}"`` as text.
    """
    if not _MESSAGE_ID_RE.fullmatch(message_id):
        raise ValueError("webhook message id must be 1-200 characters of [A-Za-z0-9_.:-]")
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        raise ValueError("webhook timestamp must be timezone-aware (a naive datetime's zone is a guess)")
    utc = timestamp.astimezone(UTC)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("webhook body must be UTF-8 encoded") from None
    signature = " ".join(
        Webhook(secret_key(each)).sign(msg_id=message_id, timestamp=utc, data=text)
        for each in (secret, *also_signed_by)
    )
    return {
        "webhook-id": message_id,
        # The same floor() the reference implementation signs, so header and signature always agree.
        "webhook-timestamp": str(math.floor(utc.timestamp())),
        "webhook-signature": signature,
    }
