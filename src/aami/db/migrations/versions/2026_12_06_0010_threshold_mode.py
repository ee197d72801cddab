"""threshold mode: an alert template is published per group (default) or compact

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 07:00:00

Every existing template keeps publishing one rule per group (``per_group``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alert_templates", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "threshold_mode", sa.String(length=16), nullable=False, server_default="per_group"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_templates", schema=None) as batch_op:
        batch_op.drop_column("threshold_mode")
