"""alert templates, rules and publishes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 15:30:15.303752
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aami.db.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_templates",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("query_template", sa.Text(), nullable=False),
        sa.Column("default_config", sa.JSON(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("for_duration", sa.String(length=32), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("created_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "rule_publishes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("started_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", aami.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("files_written", sa.JSON(), nullable=False),
        sa.Column("files_removed", sa.JSON(), nullable=False),
        sa.Column("files_rejected", sa.JSON(), nullable=False),
        sa.Column("rule_count", sa.Integer(), nullable=False),
        sa.Column("validation", sa.String(length=32), nullable=False),
        sa.Column("reload", sa.String(length=32), nullable=False),
        sa.Column("result", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("timings", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rule_publishes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rule_publishes_started_at"), ["started_at"], unique=False
        )

    op.create_table(
        "alert_rules",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("template_id", sa.String(length=63), nullable=False),
        sa.Column("group_id", sa.String(length=63), nullable=True),
        sa.Column("scope_key", sa.String(length=63), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("created_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["groups.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["template_id"], ["alert_templates.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("template_id", "scope_key", name="uq_alert_rules_scope"),
    )
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_rules_group_id"), ["group_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_alert_rules_template_id"), ["template_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_rules_template_id"))
        batch_op.drop_index(batch_op.f("ix_alert_rules_group_id"))

    op.drop_table("alert_rules")
    with op.batch_alter_table("rule_publishes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rule_publishes_started_at"))

    op.drop_table("rule_publishes")
    op.drop_table("alert_templates")
