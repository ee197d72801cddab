"""evaluators: the rule evaluators AAMI publishes to besides its own Prometheus

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aami.db.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evaluators",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("loaded_revision", sa.String(length=64), nullable=True),
        sa.Column("report_error", sa.Text(), nullable=True),
        sa.Column("last_report_at", aami.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )


def downgrade() -> None:
    op.drop_table("evaluators")
