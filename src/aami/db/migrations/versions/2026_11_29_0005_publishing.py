"""publishing: one history for both targets, fencing epochs, rule scope revisions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aami.db.base

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HISTORY_COLUMNS = ", ".join(
    f'"{name}"'
    for name in (
        "id started_at finished_at actor trigger scopes files_written files_removed "
        "files_rejected rule_count validation reload result error timings"
    ).split()
)


def upgrade() -> None:
    op.create_table(
        "publishes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("started_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", aami.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("files_written", sa.JSON(), nullable=False),
        sa.Column("files_removed", sa.JSON(), nullable=False),
        sa.Column("files_rejected", sa.JSON(), nullable=False),
        sa.Column("rule_count", sa.Integer(), nullable=False),
        sa.Column("validation", sa.String(length=32), nullable=False),
        sa.Column("reload", sa.String(length=32), nullable=False),
        sa.Column("result", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("timings", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("publishes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_publishes_started_at"), ["started_at"], unique=False)
        batch_op.create_index("ix_publishes_target_id", ["target", "id"], unique=False)
    op.execute(
        f'INSERT INTO publishes ({_HISTORY_COLUMNS}, "target", "holder", "count") '
        f"SELECT {_HISTORY_COLUMNS}, 'prometheus', '', 1 FROM rule_publishes"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "SELECT setval(pg_get_serial_sequence('publishes', 'id'), "
            "COALESCE((SELECT MAX(id) FROM publishes), 0) + 1, false)"
        )
    with op.batch_alter_table("rule_publishes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rule_publishes_started_at"))
    op.drop_table("rule_publishes")

    op.create_table(
        "publisher_epochs",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("acquired_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute(
        "INSERT INTO publisher_epochs (name, epoch, holder, acquired_at) "
        "VALUES ('publisher', 0, '', CURRENT_TIMESTAMP)"
    )
    op.create_table(
        "rule_scope_revisions",
        sa.Column("scope", sa.String(length=63), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope"),
    )
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    # Every scope that has rules today gets the current rules revision as its desired one.
    op.execute(
        "INSERT INTO rule_scope_revisions (scope, revision, updated_at) "
        "SELECT DISTINCT scope_key, "
        "(SELECT revision FROM config_revisions WHERE name = 'rules'), CURRENT_TIMESTAMP "
        "FROM alert_rules"
    )


def downgrade() -> None:
    op.drop_table("heartbeats")
    op.drop_table("rule_scope_revisions")
    op.drop_table("publisher_epochs")
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
    op.execute(
        f"INSERT INTO rule_publishes ({_HISTORY_COLUMNS}) "
        f"SELECT {_HISTORY_COLUMNS} FROM publishes WHERE target = 'prometheus'"
    )
    with op.batch_alter_table("publishes", schema=None) as batch_op:
        batch_op.drop_index("ix_publishes_target_id")
        batch_op.drop_index(batch_op.f("ix_publishes_started_at"))
    op.drop_table("publishes")
