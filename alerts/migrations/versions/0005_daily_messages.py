"""daily messages: meters' day summaries, the all-is-well opt-in, deliveries about no alert

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meter_days",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("meter_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("first_use_at", sa.DateTime(), nullable=True),
        sa.Column("litres", sa.Float(), nullable=False),
        sa.Column("hours_with_use", sa.Integer(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("meter_id", "day", name="uq_meter_day"),
    )
    op.create_table(
        "all_is_well_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_id", "day", name="uq_all_is_well_day"),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("all_is_well_every", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("all_is_well_at", sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column("all_is_well_call", sa.String(length=20), nullable=True))
    # A message about no alert (the all-is-well message) goes through the same outbox and channels.
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.alter_column("alert_id", existing_type=sa.String(length=32), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE alert_id IS NULL)")
    op.execute("DELETE FROM deliveries WHERE alert_id IS NULL")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.alter_column("alert_id", existing_type=sa.String(length=32), nullable=False)
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_column("all_is_well_call")
        batch_op.drop_column("all_is_well_at")
        batch_op.drop_column("all_is_well_every")
    op.drop_table("all_is_well_messages")
    op.drop_table("meter_days")
