"""Bearer API keys and what each role may see.

A token is ``swk_<key id>_<secret>``: the id finds the row, the secret is checked against its
SHA-256 in constant time. Roles and scope:

- operator: everything;
- supervisor: households of their community (and any grid cells listed on the key);
- grid_worker: households and alerts of the grid cells listed on the key;
- family: the households their recipient is subscribed to;
- device: ingest only, for the meters named on the key (ids, or an id prefix) that are enrolled.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.models import ApiKey, Household, Subscription, utcnow

API_ROLES = ("operator", "supervisor", "grid_worker", "family", "device")
_PREFIX = "swk_"
_TOKEN = re.compile(r"^swk_(?P<id>key_(?:admin|[0-9a-f]{16}))_(?P<secret>[A-Za-z0-9_-]{20,100})$")


@dataclass(frozen=True)
class Principal:
    """Who is calling, and the scope their role gives them."""

    key_id: str
    name: str
    role: str
    grid_cells: frozenset[str] = frozenset()
    community: str | None = None
    household_ids: frozenset[str] = frozenset()
    recipient_id: str | None = None
    meters: frozenset[str] = frozenset()  # a device key's meters …
    meter_prefix: str | None = None  # … or their id prefix; neither (a key issued before scopes): any enrolled

    def may_report(self, meter_id: str) -> bool:
        """Whether this key may post readings for ``meter_id`` (enrolment is checked apart)."""
        if self.role != "device" or not (self.meters or self.meter_prefix):
            return True
        return meter_id in self.meters or (self.meter_prefix is not None and meter_id.startswith(self.meter_prefix))

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.key_id}"

    def sees_household(self, household: Household) -> bool:
        if self.role == "operator":
            return True
        if self.role == "supervisor":
            return (self.community is not None and household.community == self.community) or (
                household.grid_cell in self.grid_cells
            )
        if self.role == "grid_worker":
            return household.grid_cell in self.grid_cells
        if self.role == "family":
            return household.id in self.household_ids
        return False


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_key(
    session: Session,
    *,
    name: str,
    role: str,
    created_by: str | None,
    recipient_id: str | None = None,
    grid_cells: list[str] | None = None,
    community: str | None = None,
    meters: list[str] | None = None,
    meter_prefix: str | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its token (returned once, never stored)."""
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        name=name,
        role=role,
        secret_hash=_hash(secret),
        recipient_id=recipient_id,
        grid_cells=grid_cells,
        community=community,
        meters=meters,
        meter_prefix=meter_prefix,
        created_by=created_by,
    )
    session.add(key)
    session.flush()
    return key, f"{_PREFIX}{key.id}_{secret}"


def ensure_admin_key(session: Session, *, admin_token: str | None) -> str | None:
    """The first operator key. With ``SHOUWANG_ADMIN_TOKEN`` set, that token is accepted (its hash
    is stored under id ``key_admin``); otherwise, on first start only, a key is generated and
    returned so the caller can print it once."""
    existing = session.get(ApiKey, "key_admin")
    if admin_token:
        token_hash = _hash(admin_token)
        if existing is None:
            session.add(
                ApiKey(
                    id="key_admin",
                    name="first operator (SHOUWANG_ADMIN_TOKEN)",
                    role="operator",
                    secret_hash=token_hash,
                )
            )
        elif existing.secret_hash != token_hash:
            existing.secret_hash, existing.revoked_at = token_hash, None
        return None
    if existing is not None or session.scalar(select(ApiKey.id).where(ApiKey.role == "operator").limit(1)):
        return None
    secret = secrets.token_urlsafe(32)
    session.add(ApiKey(id="key_admin", name="first operator", role="operator", secret_hash=_hash(secret)))
    return f"{_PREFIX}key_admin_{secret}"


class AuthError(Exception):
    """401: no usable credentials (the message never echoes the token)."""


def authenticate(session: Session, token: str, *, now: datetime | None = None) -> Principal:
    key = _find_key(session, token)
    if key is None or key.revoked_at is not None:
        raise AuthError("invalid or revoked API key")
    households: frozenset[str] = frozenset()
    if key.role == "family" and key.recipient_id:
        households = frozenset(
            session.scalars(
                select(Subscription.household_id).where(
                    Subscription.recipient_id == key.recipient_id, Subscription.household_id.is_not(None)
                )
            )
        )
    return Principal(
        key_id=key.id,
        name=key.name,
        role=key.role,
        grid_cells=frozenset(key.grid_cells or ()),
        community=key.community,
        household_ids=households,
        recipient_id=key.recipient_id,
        meters=frozenset(key.meters or ()),
        meter_prefix=key.meter_prefix,
    )


def _find_key(session: Session, token: str) -> ApiKey | None:
    match = _TOKEN.match(token)
    if match:
        key = session.get(ApiKey, match["id"])
        if key is not None and hmac.compare_digest(key.secret_hash, _hash(match["secret"])):
            return key
    # SHOUWANG_ADMIN_TOKEN may have any form: it is checked against the admin row's hash.
    admin = session.get(ApiKey, "key_admin")
    if admin is not None and hmac.compare_digest(admin.secret_hash, _hash(token)):
        return admin
    return None


def revoke(key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = utcnow()


FIRST_KEY_FILE = "first-operator.key"


def write_first_key(var_dir: Path, token: str) -> Path:
    """The generated first operator key in ``var_dir``, in a file only its owner can read (mode 0600,
    made so before the key is written); the caller logs where it is, never the key."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / FIRST_KEY_FILE
    partial = path.with_name(f".{FIRST_KEY_FILE}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # whatever the umask or a leftover file's mode
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    os.replace(partial, path)
    return path
