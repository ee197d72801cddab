"""checks and registration

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 15:48:03.656421
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aami.db.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "script_templates",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("script_type", sa.String(length=63), nullable=False),
        sa.Column("script_content", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("default_config", sa.JSON(), nullable=False),
        sa.Column("version", sa.String(length=63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "bootstrap_tokens",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("expires_at", aami.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("group_id", sa.String(length=63), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("created_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", aami.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["group_id"], ["groups.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "node_tokens",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("target_id", sa.String(length=63), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["target_id"], ["targets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("node_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_node_tokens_target_id"), ["target_id"], unique=False)

    op.create_table(
        "script_policies",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("template_id", sa.String(length=63), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("group_id", sa.String(length=63), nullable=True),
        sa.Column("target_id", sa.String(length=63), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["groups.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["target_id"], ["targets.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["template_id"], ["script_templates.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("script_policies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_script_policies_group_id"), ["group_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_script_policies_target_id"), ["target_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_script_policies_template_id"), ["template_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("script_policies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_script_policies_template_id"))
        batch_op.drop_index(batch_op.f("ix_script_policies_target_id"))
        batch_op.drop_index(batch_op.f("ix_script_policies_group_id"))

    op.drop_table("script_policies")
    with op.batch_alter_table("node_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_node_tokens_target_id"))

    op.drop_table("node_tokens")
    op.drop_table("bootstrap_tokens")
    op.drop_table("script_templates")
