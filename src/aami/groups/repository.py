"""SQL for groups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import or_, select

from aami.common.repository import Repository, has_label, text_search
from aami.groups.models import Group

__all__ = ["GroupRepository"]


class GroupRepository(Repository[Group]):
    model = Group

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
        self,
        *,
        name: str | None,
        label: tuple[str, str] | None,
        q: str | None = None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[Group], int]:
        """Groups by exact name, label and ``q`` (any part of id, name, description or
        labels), in id order."""
        query = select(Group)
        if name:
            query = query.where(Group.name == name)
        if label is not None:
            query = query.where(has_label(Group.labels, *label))
        if q:
            query = query.where(
                text_search(q, Group.id, Group.name, Group.description, Group.labels)
            )
        return self.page(query, Group.id, offset=offset, limit=limit)
