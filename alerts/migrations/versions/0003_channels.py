"""channels: endpoints of every type, their sealed configuration and failing state; used action links

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("type", sa.String(length=32), server_default="webhook", nullable=False))
        batch_op.add_column(sa.Column("sealed_config", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("failing_since", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("send_lease_until", sa.DateTime(), nullable=True))
    op.create_table(
        "endpoint_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("notifications", sa.Integer(), nullable=False),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["endpoint_id"], ["webhook_endpoints.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_endpoint_messages_endpoint_sent", "endpoint_messages", ["endpoint_id", "sent_at"])
    op.create_table(
        "action_link_uses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("delivery_id", "action"),
    )


def downgrade() -> None:
    op.drop_table("action_link_uses")
    op.drop_index("ix_endpoint_messages_endpoint_sent", table_name="endpoint_messages")
    op.drop_table("endpoint_messages")
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_column("send_lease_until")
        batch_op.drop_column("last_error")
        batch_op.drop_column("failing_since")
        batch_op.drop_column("sealed_config")
        batch_op.drop_column("type")
