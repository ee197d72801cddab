"""alertmanager

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 16:15:58.773694
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aami.db.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_channels",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("created_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "silence_watches",
        sa.Column("silence_id", sa.String(length=64), nullable=False),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("armed", sa.Boolean(), nullable=False),
        sa.Column("created_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("silence_id"),
    )
    op.create_table(
        "notification_routes",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("receiver_id", sa.String(length=63), nullable=False),
        sa.Column("group_by", sa.JSON(), nullable=True),
        sa.Column("group_wait", sa.String(length=32), nullable=True),
        sa.Column("group_interval", sa.String(length=32), nullable=True),
        sa.Column("repeat_interval", sa.String(length=32), nullable=True),
        sa.Column("continue", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["receiver_id"], ["notification_channels.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("notification_routes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_routes_receiver_id"), ["receiver_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notification_routes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_routes_receiver_id"))

    op.drop_table("notification_routes")
    op.drop_table("silence_watches")
    op.drop_table("notification_channels")
