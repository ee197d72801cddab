"""registration queue: pending registrations, label allow-list on bootstrap tokens,
a revision counter for node tokens

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aami.db.base

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bootstrap_tokens", schema=None) as batch_op:
        # Existing tokens allow no node-supplied labels: nodes registered with them before
        # keep their labels, new registrations may only carry the token's own.
        batch_op.add_column(
            sa.Column("allowed_labels", sa.JSON(), nullable=False, server_default="[]")
        )
    op.create_table(
        "pending_registrations",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("hostname", sa.String(length=253), nullable=False),
        sa.Column("ip_address", sa.String(length=45), nullable=False),
        sa.Column("source_address", sa.String(length=45), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("node_exporter_port", sa.Integer(), nullable=False),
        sa.Column("bootstrap_token_id", sa.String(length=63), nullable=False),
        sa.Column("target_id", sa.String(length=63), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("poll_token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", aami.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["bootstrap_token_id"], ["bootstrap_tokens.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("poll_token_hash"),
    )
    with op.batch_alter_table("pending_registrations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pending_registrations_bootstrap_token_id"),
            ["bootstrap_token_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_pending_registrations_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_pending_registrations_hostname"), ["hostname"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_pending_registrations_status"), ["status"], unique=False
        )
    op.execute("INSERT INTO config_revisions (name, revision) VALUES ('node_tokens', 0)")


def downgrade() -> None:
    op.execute("DELETE FROM config_revisions WHERE name = 'node_tokens'")
    with op.batch_alter_table("pending_registrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_registrations_status"))
        batch_op.drop_index(batch_op.f("ix_pending_registrations_hostname"))
        batch_op.drop_index(batch_op.f("ix_pending_registrations_expires_at"))
        batch_op.drop_index(batch_op.f("ix_pending_registrations_bootstrap_token_id"))
    op.drop_table("pending_registrations")
    with op.batch_alter_table("bootstrap_tokens", schema=None) as batch_op:
        batch_op.drop_column("allowed_labels")
