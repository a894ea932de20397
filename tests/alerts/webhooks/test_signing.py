from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from alerts.webhooks import new_message_id, new_secret, secret_key, sign_headers

BODY = json.dumps({"alert_id": "a-1", "kind": "no_water_use", "text": "张奶奶 12 小时未用水"}).encode()


def signed(secret: str, *, at: datetime | None = None, body: bytes = BODY) -> dict[str, str]:
    return sign_headers(secret=secret, message_id="msg_test1", timestamp=at or datetime.now(UTC), body=body)


def test_new_secret_is_whsec_base64_of_at_least_24_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24
    assert new_secret() != secret


def test_new_message_id_is_prefixed_url_safe_and_unique() -> None:
    ids = {new_message_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(i.startswith("msg_") and i[4:].replace("-", "").replace("_", "").isalnum() for i in ids)


def test_reference_receiver_verifies_our_signature() -> None:
    secret = new_secret()
    headers = signed(secret)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["webhook-timestamp"].isdigit()
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_signature_matches_the_spec_formula() -> None:
    import hashlib
    import hmac

    secret = new_secret()
    at = datetime(2025, 3, 1, 8, 0, 30, 900_000, tzinfo=UTC)
    headers = signed(secret, at=at)
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))
    mac = hmac.new(secret_key(secret), f"msg_test1.{int(at.timestamp())}.".encode() + BODY, hashlib.sha256)
    assert headers["webhook-signature"] == "v1," + base64.b64encode(mac.digest()).decode()


def test_non_utc_timestamp_is_converted_not_relabelled() -> None:
    # The reference Webhook.sign would treat 16:00+08:00 as 16:00 UTC; receivers would then see the future.
    secret = new_secret()
    beijing = datetime.now(timezone(timedelta(hours=8)))
    headers = signed(secret, at=beijing)
    assert headers["webhook-timestamp"] == str(int(beijing.timestamp()))
    Webhook(secret).verify(BODY, headers)


@pytest.mark.parametrize("case", ["tampered body", "wrong secret", "ten minutes old", "other id"])
def test_verification_fails(case: str) -> None:
    secret = new_secret()
    body = BODY
    headers = signed(secret)
    if case == "tampered body":
        body = BODY.replace(b"12", b"13")
    elif case == "wrong secret":
        secret = new_secret()
    elif case == "ten minutes old":
        headers = signed(secret, at=datetime.now(UTC) - timedelta(minutes=10))
    else:
        headers["webhook-id"] = "msg_other"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "must start with 'whsec_'"),
        ("whsec_not*base64!!", "not valid base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "at least 24"),
    ],
)
def test_malformed_secret_is_refused_without_echoing_it(secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        signed(secret)
    assert secret not in str(info.value)


def test_unpadded_secret_is_accepted_like_the_reference_implementation() -> None:
    secret = new_secret().rstrip("=")
    Webhook(secret).verify(BODY, signed(secret))


def test_naive_timestamp_non_utf8_body_and_header_unsafe_id_are_refused() -> None:
    secret = new_secret()
    with pytest.raises(ValueError, match="timezone-aware"):
        signed(secret, at=datetime.now())  # naive on purpose
    with pytest.raises(ValueError, match="UTF-8"):
        signed(secret, body=b"\xff\xfe")
    with pytest.raises(ValueError, match="message id"):
        sign_headers(secret=secret, message_id="msg_1\r\nX-Evil: 1", timestamp=datetime.now(UTC), body=BODY)
