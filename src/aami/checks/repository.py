"""SQL for script templates and policies."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select

from aami.checks.models import ScriptPolicy, ScriptTemplate
from aami.common.repository import Repository, text_search

__all__ = ["ScriptPolicyRepository", "ScriptTemplateRepository"]


class ScriptTemplateRepository(Repository[ScriptTemplate]):
    model = ScriptTemplate

    def get_by_ref(self, ref: str) -> ScriptTemplate | None:
        return self.session.get(ScriptTemplate, ref) or self.session.scalar(
            select(ScriptTemplate).where(ScriptTemplate.name == ref)
        )

    def name_taken(self, name: str, *, excluding: str | None = None) -> bool:
        query = select(ScriptTemplate.id).where(ScriptTemplate.name == name)
        if excluding is not None:
            query = query.where(ScriptTemplate.id != excluding)
        return self.session.scalar(query) is not None

    def all(self) -> Sequence[ScriptTemplate]:
        return self.session.scalars(select(ScriptTemplate).order_by(ScriptTemplate.name)).all()

    def find(
        self,
        *,
        name: str | None,
        script_type: str | None,
        q: str | None = None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[ScriptTemplate], int]:
        """Templates by exact name, type and ``q`` (any part of id, name, type,
        description or language), in name order."""
        query = select(ScriptTemplate)
        if name:
            query = query.where(ScriptTemplate.name == name)
        if script_type:
            query = query.where(ScriptTemplate.script_type == script_type)
        if q:
            query = query.where(
                text_search(
                    q,
                    ScriptTemplate.id,
                    ScriptTemplate.name,
                    ScriptTemplate.script_type,
                    ScriptTemplate.description,
                    ScriptTemplate.language,
                )
            )
        return self.page(query, ScriptTemplate.name, offset=offset, limit=limit)


class ScriptPolicyRepository(Repository[ScriptPolicy]):
    model = ScriptPolicy

    def for_template(self, template_id: str) -> Sequence[ScriptPolicy]:
        return self.session.scalars(
            select(ScriptPolicy)
            .where(ScriptPolicy.template_id == template_id)
            .order_by(ScriptPolicy.id)
        ).all()

    def for_group(self, group_id: str) -> Sequence[ScriptPolicy]:
        return self.session.scalars(
            select(ScriptPolicy).where(ScriptPolicy.group_id == group_id).order_by(ScriptPolicy.id)
        ).all()

    def for_target(self, target_id: str) -> Sequence[ScriptPolicy]:
        return self.session.scalars(
            select(ScriptPolicy)
            .where(ScriptPolicy.target_id == target_id)
            .order_by(ScriptPolicy.id)
        ).all()

    def reaching(self, target_id: str | None, group_ids: Sequence[str]) -> Sequence[ScriptPolicy]:
        """Policies that may apply: global, of these groups, of this target."""
        conditions = [ScriptPolicy.scope == "global"]
        if group_ids:
            conditions.append(
                (ScriptPolicy.scope == "group") & ScriptPolicy.group_id.in_(list(group_ids))
            )
        if target_id is not None:
            conditions.append(
                (ScriptPolicy.scope == "target") & (ScriptPolicy.target_id == target_id)
            )
        return self.session.scalars(select(ScriptPolicy).where(or_(*conditions))).all()

    def find(
        self,
        *,
        template_id: str | None,
        scope: str | None,
        group_id: str | None,
        target_id: str | None,
        is_active: bool | None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[ScriptPolicy], int]:
        query = select(ScriptPolicy)
        if template_id:
            query = query.where(ScriptPolicy.template_id == template_id)
        if scope:
            query = query.where(ScriptPolicy.scope == scope)
        if group_id:
            query = query.where(ScriptPolicy.group_id == group_id)
        if target_id:
            query = query.where(ScriptPolicy.target_id == target_id)
        if is_active is not None:
            query = query.where(ScriptPolicy.is_active.is_(is_active))
        return self.page(
            query, ScriptPolicy.template_id, ScriptPolicy.id, offset=offset, limit=limit
        )
