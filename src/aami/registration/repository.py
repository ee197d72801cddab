"""SQL for bootstrap tokens, node tokens and the registration queue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from aami.registration.models import BootstrapToken, NodeToken, PendingRegistration
from aami.targets.models import Target

LIVE = ("pending", "approved")


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


class RegistrationRepository:
    """The registration queue, and the targets a registration names."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def target_by_hostname(self, hostname: str) -> Target | None:
        return self.session.scalar(select(Target).where(Target.hostname == hostname))

    def target_by_id(self, target_id: str) -> Target | None:
        return self.session.get(Target, target_id)

    def get(self, registration_id: str) -> PendingRegistration | None:
        return self.session.get(PendingRegistration, registration_id)

    def add(self, registration: PendingRegistration) -> None:
        self.session.add(registration)
        self.session.flush()

    def purge_expired(self, now: datetime) -> int:
        """Delete every registration past its expiry; return how many."""
        result = self.session.execute(
            delete(PendingRegistration)
            .where(PendingRegistration.expires_at <= now)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def count_live(self, now: datetime) -> int:
        return (
            self.session.scalar(
                select(func.count())
                .select_from(PendingRegistration)
                .where(PendingRegistration.status.in_(LIVE), PendingRegistration.expires_at > now)
            )
            or 0
        )

    def find(
        self, *, status: str, now: datetime, offset: int, limit: int
    ) -> tuple[Sequence[PendingRegistration], int]:
        """Unexpired registrations in one status, oldest first."""
        where = (PendingRegistration.status == status, PendingRegistration.expires_at > now)
        total = (
            self.session.scalar(select(func.count()).select_from(PendingRegistration).where(*where))
            or 0
        )
        rows = self.session.scalars(
            select(PendingRegistration)
            .where(*where)
            .order_by(PendingRegistration.created_at, PendingRegistration.id)
            .offset(offset)
            .limit(limit)
        ).all()
        return rows, total

    def collect(self, registration_id: str, now: datetime) -> bool:
        """Mark an approved registration collected; only one caller ever succeeds."""
        result = self.session.execute(
            update(PendingRegistration)
            .where(
                PendingRegistration.id == registration_id,
                PendingRegistration.status == "approved",
                PendingRegistration.expires_at > now,
            )
            .values(status="collected")
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
