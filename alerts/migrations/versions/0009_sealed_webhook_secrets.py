"""webhook signing secrets sealed at rest: each plain ``whsec_`` secret moves into ``sealed_config``

The key is the one that seals channel credentials (SHOUWANG_SECRET_KEYS, or SHOUWANG_VAR_DIR/secret.key).
Without a usable key the upgrade fails rather than leave a plain secret behind.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import op

if TYPE_CHECKING:
    from alerts.secret_box import SecretBox

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

endpoints = sa.table(
    "webhook_endpoints",
    sa.column("id", sa.String()),
    sa.column("type", sa.String()),
    sa.column("secret", sa.String()),
    sa.column("sealed_config", sa.Text()),
)


def _box() -> SecretBox:
    from alerts.secret_box import SecretBoxError, secret_box
    from shouwang.settings import Settings

    try:
        return secret_box(Settings())
    except (SecretBoxError, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        raise RuntimeError(
            f"migration 0009 seals webhook secrets and needs the key, but none is usable: {reason}"
        ) from None


def upgrade() -> None:
    from alerts.webhook_secrets import seal_webhook_secret

    connection = op.get_bind()
    plain = connection.execute(
        sa.select(endpoints.c.id, endpoints.c.secret).where(
            endpoints.c.type == "webhook", endpoints.c.secret != "", endpoints.c.sealed_config.is_(None)
        )
    ).all()
    if not plain:
        return
    box = _box()
    for endpoint_id, secret in plain:
        connection.execute(
            endpoints.update()
            .where(endpoints.c.id == endpoint_id)
            .values(secret="", sealed_config=seal_webhook_secret(box, secret))
        )


def downgrade() -> None:
    from alerts.webhook_secrets import open_webhook_secrets

    connection = op.get_bind()
    sealed = connection.execute(
        sa.select(endpoints.c.id, endpoints.c.sealed_config).where(
            endpoints.c.type == "webhook", endpoints.c.sealed_config.is_not(None)
        )
    ).all()
    if not sealed:
        return
    box = _box()
    for endpoint_id, value in sealed:
        connection.execute(
            endpoints.update()
            .where(endpoints.c.id == endpoint_id)
            .values(secret=open_webhook_secrets(box, value).current, sealed_config=None)
        )
