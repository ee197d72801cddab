"""SQL for bootstrap tokens, node tokens and the registration queue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update

from aami.common.repository import Repository
from aami.registration.models import BootstrapToken, NodeToken, PendingRegistration
from aami.targets.models import Target

LIVE = ("pending", "approved")


class BootstrapTokenRepository(Repository[BootstrapToken]):
    model = BootstrapToken

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
        return self.page(select(BootstrapToken), BootstrapToken.name, offset=offset, limit=limit)

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


class NodeTokenRepository(Repository[NodeToken]):
    model = NodeToken

    def target_for(self, token_hash: str) -> str | None:
        return self.session.scalar(
            select(NodeToken.target_id).where(NodeToken.token_hash == token_hash)
        )

    def replace(self, token: NodeToken) -> None:
        """Issue a node's token, revoking the ones it had."""
        self.session.execute(delete(NodeToken).where(NodeToken.target_id == token.target_id))
        self.add(token)


class RegistrationRepository(Repository[PendingRegistration]):
    """The registration queue, and the targets a registration names."""

    model = PendingRegistration

    def target_by_hostname(self, hostname: str) -> Target | None:
        return self.session.scalar(select(Target).where(Target.hostname == hostname))

    def target_by_id(self, target_id: str) -> Target | None:
        return self.session.get(Target, target_id)

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
        query = select(PendingRegistration).where(
            PendingRegistration.status == status, PendingRegistration.expires_at > now
        )
        return self.page(
            query,
            PendingRegistration.created_at,
            PendingRegistration.id,
            offset=offset,
            limit=limit,
        )

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
