"""SQL for the publish history."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aami.prometheus.models import RulePublish


class RulePublishRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: RulePublish) -> None:
        self.session.add(row)

    def latest(self) -> RulePublish | None:
        return self.session.scalar(select(RulePublish).order_by(RulePublish.id.desc()).limit(1))

    def find(self, *, offset: int, limit: int) -> tuple[Sequence[RulePublish], int]:
        total = self.session.scalar(select(func.count()).select_from(RulePublish)) or 0
        rows = self.session.scalars(
            select(RulePublish).order_by(RulePublish.id.desc()).offset(offset).limit(limit)
        ).all()
        return rows, total
