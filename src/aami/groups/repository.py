"""SQL for groups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from aami.groups.models import Group


class GroupRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, group_id: str) -> Group | None:
        return self.session.get(Group, group_id)

    def get_by_ref(self, ref: str) -> Group | None:
        """Find a group by id, else by its unique name."""
        return self.session.get(Group, ref) or self.session.scalar(
            select(Group).where(Group.name == ref)
        )

    def get_many_by_ref(self, refs: Iterable[str]) -> dict[str, Group]:
        """Map each ref (id or name) that exists to its group, in one query."""
        wanted = list(dict.fromkeys(refs))
        if not wanted:
            return {}
        rows = self.session.scalars(
            select(Group).where(or_(Group.id.in_(wanted), Group.name.in_(wanted)))
        ).all()
        found: dict[str, Group] = {}
        for group in rows:
            found.setdefault(group.id, group)
        for group in rows:
            found.setdefault(group.name, group)
        return {ref: found[ref] for ref in wanted if ref in found}

    def name_taken(self, name: str, *, excluding: str | None = None) -> bool:
        query = select(Group.id).where(Group.name == name)
        if excluding is not None:
            query = query.where(Group.id != excluding)
        return self.session.scalar(query) is not None

    def find(
        self, *, name: str | None, label: tuple[str, str] | None, offset: int, limit: int
    ) -> tuple[Sequence[Group], int]:
        query = select(Group)
        if name:
            query = query.where(Group.name == name)
        rows: Sequence[Group]
        if label is not None:
            # JSON containment differs per dialect; label filters are rare and small.
            matching = [
                g
                for g in self.session.scalars(query.order_by(Group.id)).all()
                if g.labels.get(label[0]) == label[1]
            ]
            return matching[offset : offset + limit], len(matching)
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = self.session.scalars(query.order_by(Group.id).offset(offset).limit(limit)).all()
        return rows, total

    def add(self, group: Group) -> None:
        self.session.add(group)
        self.session.flush()

    def delete(self, group: Group) -> None:
        self.session.delete(group)
        self.session.flush()
