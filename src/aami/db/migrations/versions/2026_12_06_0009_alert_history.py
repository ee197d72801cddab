"""alert history: each alert transition Alertmanager's webhook reports

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aami.db.base

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("alertname", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("summary", sa.String(length=1000), nullable=False),
        sa.Column("group_id", sa.String(length=255), nullable=True),
        sa.Column("instance", sa.String(length=255), nullable=True),
        sa.Column("severity", sa.String(length=64), nullable=True),
        sa.Column("starts_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", aami.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("receiver", sa.String(length=255), nullable=False),
        sa.Column("generator_url", sa.String(length=2000), nullable=True),
        sa.Column("received_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fingerprint", "starts_at", "status", name="uq_alert_history_episode"),
    )
    with op.batch_alter_table("alert_history", schema=None) as batch_op:
        batch_op.create_index("ix_alert_history_at", ["at"], unique=False)
        batch_op.create_index("ix_alert_history_received_at", ["received_at"], unique=False)
        batch_op.create_index("ix_alert_history_instance_at", ["instance", "at"], unique=False)
        batch_op.create_index("ix_alert_history_group_at", ["group_id", "at"], unique=False)
        batch_op.create_index("ix_alert_history_alertname_at", ["alertname", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alert_history", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_history_alertname_at")
        batch_op.drop_index("ix_alert_history_group_at")
        batch_op.drop_index("ix_alert_history_instance_at")
        batch_op.drop_index("ix_alert_history_received_at")
        batch_op.drop_index("ix_alert_history_at")
    op.drop_table("alert_history")
