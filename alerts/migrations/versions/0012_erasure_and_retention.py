"""erasure and retention: a household's erasure record, when it was erased, when an alert was anonymised

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-13 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "household_erasures",
        sa.Column("household_id", sa.String(length=32), nullable=False),
        sa.Column("erased_at", sa.DateTime(), nullable=False),
        sa.Column("erased_by", sa.String(length=200), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"]),
        sa.PrimaryKeyConstraint("household_id"),
    )
    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.add_column(sa.Column("erased_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("anonymised_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("anonymised_at")
    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
    op.drop_table("household_erasures")
