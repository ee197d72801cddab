"""SQL for bootstrap and node tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from aami.registration.models import BootstrapToken, NodeToken


class BootstrapTokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, token_id: str) -> BootstrapToken | None:
        return self.session.get(BootstrapToken, token_id)

    def get_by_hash(self, token_hash: str) -> BootstrapToken | None:
        return self.session.scalar(
            select(BootstrapToken).where(BootstrapToken.token_hash == token_hash)
        )

    def name_taken(self, name: str) -> bool:
        return (
            self.session.scalar(select(BootstrapToken.id).where(BootstrapToken.name == name))
            is not None
        )

    def find(self, *, offset: int, limit: int) -> tuple[Sequence[BootstrapToken], int]:
        total = self.session.scalar(select(func.count()).select_from(BootstrapToken)) or 0
        rows = self.session.scalars(
            select(BootstrapToken).order_by(BootstrapToken.name).offset(offset).limit(limit)
        ).all()
        return rows, total

    def add(self, token: BootstrapToken) -> None:
        self.session.add(token)
        self.session.flush()

    def delete(self, token: BootstrapToken) -> None:
        self.session.delete(token)
        self.session.flush()

    def consume(self, token_id: str, now: datetime) -> bool:
        """Count one use if the token still has one; atomic under concurrent requests."""
        result = self.session.execute(
            update(BootstrapToken)
            .where(
                BootstrapToken.id == token_id,
                or_(
                    BootstrapToken.max_uses.is_(None), BootstrapToken.uses < BootstrapToken.max_uses
                ),
                or_(BootstrapToken.expires_at.is_(None), BootstrapToken.expires_at > now),
            )
            .values(uses=BootstrapToken.uses + 1, last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


class NodeTokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def target_for(self, token_hash: str) -> str | None:
        return self.session.scalar(
            select(NodeToken.target_id).where(NodeToken.token_hash == token_hash)
        )

    def replace(self, token: NodeToken) -> None:
        """Issue a node's token, revoking the ones it had."""
        self.session.execute(delete(NodeToken).where(NodeToken.target_id == token.target_id))
        self.session.add(token)
        self.session.flush()
