"""device keys scoped to meters: the ids, or an id prefix, a key may report for

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("meters", sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column("meter_prefix", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("meter_prefix")
        batch_op.drop_column("meters")
