"""Bootstrap tokens (node self-registration), node tokens (a node reads its checks) and
registrations waiting for an admin's approval."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from aami.db.base import Base, utcnow


class BootstrapToken(Base):
    __tablename__ = "bootstrap_tokens"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    max_uses: Mapped[int | None] = mapped_column(Integer, nullable=True)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    group_id: Mapped[str | None] = mapped_column(
        ForeignKey("groups.id", ondelete="RESTRICT"), nullable=True
    )
    labels: Mapped[dict[str, str]] = mapped_column(default=dict)
    # The label keys a node registering with this token may set itself; none by default.
    allowed_labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)


class NodeToken(Base):
    __tablename__ = "node_tokens"
    # Issuing a token bumps this counter; every replica's token cache is keyed on it, so a
    # replaced token stops being believed as soon as a replica sees the new counter.
    __revision_area__ = "node_tokens"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    target_id: Mapped[str] = mapped_column(ForeignKey("targets.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PendingRegistration(Base):
    """A registration a bootstrap token alone may not make: it waits for an admin.

    ``status`` is ``pending``, then ``approved`` (the change is applied; the node may collect
    its token once), ``collected`` or ``rejected``. Every row expires at ``expires_at``.
    """

    __tablename__ = "pending_registrations"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    hostname: Mapped[str] = mapped_column(String(253), index=True)
    ip_address: Mapped[str] = mapped_column(String(45))
    source_address: Mapped[str | None] = mapped_column(String(45), nullable=True)
    labels: Mapped[dict[str, str]] = mapped_column(default=dict)
    node_exporter_port: Mapped[int] = mapped_column(Integer)
    # A revoked bootstrap token takes the registrations it made with it.
    bootstrap_token_id: Mapped[str] = mapped_column(
        ForeignKey("bootstrap_tokens.id", ondelete="CASCADE"), index=True
    )
    target_id: Mapped[str | None] = mapped_column(String(63), nullable=True)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    poll_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
