"""acknowledgement by role: a family member's "seen" apart from staff's acknowledgement, which expires

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("family_seen_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("family_seen_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("ack_expires_at", sa.DateTime(), nullable=True))
        batch_op.create_index("ix_alerts_ack_expires_at", ["ack_expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_ack_expires_at")
        batch_op.drop_column("ack_expires_at")
        batch_op.drop_column("family_seen_by")
        batch_op.drop_column("family_seen_at")
