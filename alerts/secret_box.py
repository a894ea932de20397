"""Channel credentials encrypted at rest: a robot URL carries its access token, a bot its signing
secret, an SMS provider its access key. A database dump without the key reveals none of them.

Fernet (AES-128-CBC with HMAC-SHA256, from the ``cryptography`` package) under ``MultiFernet``: the
first key encrypts, every key decrypts, so a new key is put first, ``reseal`` moves old rows onto it,
and the old key is dropped afterwards.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from shouwang.settings import Settings

KEY_FILE = "secret.key"


class SecretBoxError(ValueError):
    """A key that is not a Fernet key, or a sealed value none of the keys opens."""


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise SecretBoxError("no key to encrypt channel credentials with")
        try:
            self._fernet = MultiFernet([Fernet(key.strip().encode()) for key in keys])
        except (ValueError, TypeError):
            raise SecretBoxError(
                "SHOUWANG_SECRET_KEYS: each key must be 32 url-safe base64-encoded bytes (a Fernet key)"
            ) from None

    def seal(self, value: Mapping[str, Any]) -> str:
        """``value`` (a JSON object) encrypted under the first key."""
        return self._fernet.encrypt(json.dumps(value, sort_keys=True).encode()).decode()

    def open(self, sealed: str) -> dict[str, Any]:
        try:
            value = json.loads(self._fernet.decrypt(sealed.encode()))
        except InvalidToken:
            raise SecretBoxError("a sealed channel credential opens with none of SHOUWANG_SECRET_KEYS") from None
        if not isinstance(value, dict):
            raise SecretBoxError("a sealed channel credential is not a JSON object")
        return value

    def reseal(self, sealed: str) -> str:
        """The same value encrypted under the first key (after a key rotation)."""
        try:
            return self._fernet.rotate(sealed.encode()).decode()
        except InvalidToken:
            raise SecretBoxError("a sealed channel credential opens with none of SHOUWANG_SECRET_KEYS") from None


def new_key() -> str:
    return Fernet.generate_key().decode()


def secret_keys(settings: Settings) -> list[str]:
    """The settings' keys, newest first; without keys, the one in the var folder (made at the first start,
    readable by its owner only), so every process of one machine shares it."""
    if settings.secret_keys is not None:
        return [key.strip() for key in settings.secret_keys.get_secret_value().split(",") if key.strip()]
    return [_key_file(settings.var_dir)]


def secret_box(settings: Settings) -> SecretBox:
    return SecretBox(secret_keys(settings))


def _key_file(var_dir: Path) -> str:
    path = var_dir / KEY_FILE
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process of this machine made it first: use theirs
        else:
            with os.fdopen(descriptor, "w") as file:
                file.write(new_key() + "\n")
    for _ in range(100):  # another process may be writing it this very moment
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.02)
    raise SecretBoxError(f"{path} is empty: delete it (no credentials sealed yet) or restore it")
