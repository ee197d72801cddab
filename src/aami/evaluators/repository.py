"""SQL for evaluators."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from aami.common.repository import Repository
from aami.evaluators.models import Evaluator

__all__ = ["EvaluatorRepository"]


class EvaluatorRepository(Repository[Evaluator]):
    model = Evaluator

    def all(self) -> Sequence[Evaluator]:
        return self.session.scalars(select(Evaluator).order_by(Evaluator.name)).all()

    def find(self, *, offset: int, limit: int) -> tuple[Sequence[Evaluator], int]:
        return self.page(select(Evaluator), Evaluator.name, offset=offset, limit=limit)

    def name_for_token(self, token_hash: str) -> str | None:
        """The evaluator whose token hashes to this, or None."""
        return self.session.scalar(select(Evaluator.name).where(Evaluator.token_hash == token_hash))
