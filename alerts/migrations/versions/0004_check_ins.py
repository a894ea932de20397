"""check-ins: the resident asked first, away mode's actor, routine hints, feedback to the detector

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.add_column(sa.Column("away_set_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("away_ends_on_use", sa.Boolean(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("routine_hints", sa.JSON(), nullable=True))
    with op.batch_alter_table("meters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hints_sent_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("check_in", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("check_in_due_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("recheck_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("feedback_sent_at", sa.DateTime(), nullable=True))
        batch_op.create_index("ix_alerts_check_in_due_at", ["check_in_due_at"])
        batch_op.create_index("ix_alerts_recheck_at", ["recheck_at"])


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_recheck_at")
        batch_op.drop_index("ix_alerts_check_in_due_at")
        batch_op.drop_column("feedback_sent_at")
        batch_op.drop_column("recheck_at")
        batch_op.drop_column("check_in_due_at")
        batch_op.drop_column("check_in")
    with op.batch_alter_table("meters", schema=None) as batch_op:
        batch_op.drop_column("hints_sent_at")
    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.drop_column("routine_hints")
        batch_op.drop_column("away_ends_on_use")
        batch_op.drop_column("away_set_by")
