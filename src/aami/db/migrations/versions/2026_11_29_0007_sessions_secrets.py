"""sessions and secrets: web UI sessions kept on the server, notification secrets encrypted

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 20:00:00

The secrets are encrypted with the server's key (aami.security.secrets): the one the
running server was given, or for ``aami db upgrade`` the one its environment names (or the
key file beside a SQLite database, created on first use).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aami.db.base
from aami.security.secrets import box_for_connection

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The stored column as it is, without the ORM's encrypting type.
_channels = sa.table("notification_channels", sa.column("id", sa.String), sa.column("secret"))


def _rewrite_secrets(encrypt: bool) -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_channels.c.id, _channels.c.secret).where(_channels.c.secret.is_not(None))
    ).all()
    if not rows:
        return
    box = box_for_connection(bind)
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        # Zero the space the plaintext leaves behind instead of leaving it in free pages.
        previous = bind.exec_driver_sql("PRAGMA secure_delete").scalar()
        bind.exec_driver_sql("PRAGMA secure_delete = ON")
    for channel_id, stored in rows:
        if encrypt == box.readable(stored):
            continue  # already in the wanted form
        value = box.encrypt(stored) if encrypt else box.decrypt(stored)
        bind.execute(sa.update(_channels).where(_channels.c.id == channel_id).values(secret=value))
    if sqlite:
        bind.exec_driver_sql(f"PRAGMA secure_delete = {int(previous or 0)}")


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", aami.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", aami.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    with op.batch_alter_table("ui_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ui_sessions_expires_at"), ["expires_at"], unique=False)
    _rewrite_secrets(encrypt=True)


def downgrade() -> None:
    _rewrite_secrets(encrypt=False)
    with op.batch_alter_table("ui_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ui_sessions_expires_at"))
    op.drop_table("ui_sessions")
