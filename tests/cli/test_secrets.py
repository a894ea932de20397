"""``shouwang secrets rotate``: every sealed value, webhook signing secrets and channel credentials alike, is
encrypted again under the newest key, with a progress line and a count; afterwards the old key alone opens
none of them; the rotation is on the audit trail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from alerts import admin
from alerts.audit import AuditEvent
from alerts.channels.registry import Registered
from alerts.db import Store, upgrade
from alerts.models import Endpoint
from alerts.secret_box import SecretBox, SecretBoxError, new_key
from alerts.webhook_secrets import open_webhook_secrets


def test_rotate_reseals_webhook_secrets_and_channel_credentials_under_the_new_key(tmp_path: Path) -> None:
    old, new = new_key(), new_key()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    store = Store(url)
    credential = {"url": "https://oapi.dingtalk.com/robot/send?access_token=" + "a" * 32, "secret": "SEC" + "b" * 40}
    with store.transaction() as session:
        _, secret = admin.create_recipient(
            session,
            name="Daughter",
            role="family",
            webhook_url="http://127.0.0.1:9/hook",
            allow=["127.0.0.0/8"],
            box=SecretBox([old]),
        )
        robot = Registered(
            "dingtalk_robot", "https://oapi.dingtalk.com/robot/send?…", SecretBox([old]).seal(credential)
        )
        admin.create_recipient(session, name="群", role="grid_worker", webhook_url=None, channel=robot)
    assert secret is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOUWANG_")}
    env |= {"SHOUWANG_DATABASE_URL": url, "SHOUWANG_SECRET_KEYS": f"{new},{old}", "SHOUWANG_VAR_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "cli", "secrets", "rotate"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resealed 2/2" in done.stderr and "resealed 2 sealed value(s)" in done.stdout
    with store.transaction() as session:
        sealed = {e.type: e.sealed_config for e in session.scalars(select(Endpoint))}
        rotation = session.scalars(select(AuditEvent).where(AuditEvent.action == "secrets.rotate")).one()
    store.close()
    assert rotation.actor.startswith("cli") and rotation.role == "operator" and rotation.detail == {"count": 2}
    assert open_webhook_secrets(SecretBox([new]), sealed["webhook"]).current == secret
    assert SecretBox([new]).open(sealed["dingtalk_robot"] or "") == credential
    for value in sealed.values():
        with pytest.raises(SecretBoxError):
            SecretBox([old]).open(value or "")
