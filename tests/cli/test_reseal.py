"""Key rotation of channel credentials: sealed under the old key, resealed by the command under the new
one, readable with the new key alone afterwards (and never readable with the old key alone)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from alerts import admin
from alerts.channels.registry import Registered
from alerts.db import Store, upgrade
from alerts.models import Endpoint
from alerts.secret_box import SecretBox, SecretBoxError, new_key


def test_reseal_moves_every_credential_to_the_new_key(tmp_path: Path) -> None:
    old, new = new_key(), new_key()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    store = Store(url)
    secret = {"url": "https://oapi.dingtalk.com/robot/send?access_token=" + "a" * 32, "secret": "SEC" + "b" * 40}
    with store.transaction() as session:
        sealed = SecretBox([old]).seal(secret)
        admin.create_recipient(
            session, name="群", role="grid_worker", webhook_url=None,
            channel=Registered("dingtalk_robot", "https://oapi.dingtalk.com/robot/send?…", sealed),
        )  # fmt: skip
    env = {**os.environ, "SHOUWANG_DATABASE_URL": url, "SHOUWANG_SECRET_KEYS": f"{new},{old}",
           "SHOUWANG_VAR_DIR": str(tmp_path)}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "cli", "reseal-credentials"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resealed 1 sealed value(s)" in done.stdout  # the older name runs `secrets rotate`
    with store.transaction() as session:
        stored = session.scalars(select(Endpoint.sealed_config)).one()
    store.close()
    assert stored is not None and stored != sealed
    assert SecretBox([new]).open(stored) == secret
    with pytest.raises(SecretBoxError):
        SecretBox([old]).open(stored)
    assert "SEC" + "b" * 40 not in stored
