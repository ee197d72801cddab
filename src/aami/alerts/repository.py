"""SQL for alert templates and alert rules."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import or_, select

from aami.alerts.compact import COMPACT
from aami.alerts.models import GLOBAL_SCOPE, AlertRule, AlertTemplate
from aami.common.repository import Repository, text_search

__all__ = ["AlertRuleRepository", "AlertTemplateRepository"]


class AlertTemplateRepository(Repository[AlertTemplate]):
    model = AlertTemplate

    def get_by_ref(self, ref: str) -> AlertTemplate | None:
        """Find a template by id, else by name."""
        return self.session.get(AlertTemplate, ref) or self.session.scalar(
            select(AlertTemplate).where(AlertTemplate.name == ref)
        )

    def name_taken(self, name: str, *, excluding: str | None = None) -> bool:
        query = select(AlertTemplate.id).where(AlertTemplate.name == name)
        if excluding is not None:
            query = query.where(AlertTemplate.id != excluding)
        return self.session.scalar(query) is not None

    def find(
        self,
        *,
        name: str | None,
        severity: str | None,
        q: str | None = None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[AlertTemplate], int]:
        """Templates by exact name, severity and ``q`` (any part of id, name, description,
        query or labels), in name order."""
        query = select(AlertTemplate)
        if name:
            query = query.where(AlertTemplate.name == name)
        if severity:
            query = query.where(AlertTemplate.severity == severity)
        if q:
            query = query.where(
                text_search(
                    q,
                    AlertTemplate.id,
                    AlertTemplate.name,
                    AlertTemplate.description,
                    AlertTemplate.query_template,
                    AlertTemplate.labels,
                )
            )
        return self.page(query, AlertTemplate.name, offset=offset, limit=limit)


class AlertRuleRepository(Repository[AlertRule]):
    model = AlertRule

    def exists(self, template_id: str, scope_key: str, *, excluding: str | None = None) -> bool:
        query = select(AlertRule.id).where(
            AlertRule.template_id == template_id, AlertRule.scope_key == scope_key
        )
        if excluding is not None:
            query = query.where(AlertRule.id != excluding)
        return self.session.scalar(query) is not None

    def for_template(self, template_id: str) -> Sequence[AlertRule]:
        return self.session.scalars(
            select(AlertRule).where(AlertRule.template_id == template_id).order_by(AlertRule.id)
        ).all()

    def for_group(self, group_id: str) -> Sequence[AlertRule]:
        return self.session.scalars(
            select(AlertRule).where(AlertRule.group_id == group_id).order_by(AlertRule.id)
        ).all()

    def enabled_in_scopes(self, scope_keys: Collection[str] | None) -> Sequence[AlertRule]:
        """Enabled rules of these scopes (group ids, ``""`` for global); all when None."""
        query = select(AlertRule).where(AlertRule.enabled.is_(True))
        if scope_keys is not None:
            query = query.where(AlertRule.scope_key.in_(list(scope_keys)))
        return self.session.scalars(query.order_by(AlertRule.scope_key, AlertRule.id)).all()

    def scopes_with_enabled_rules(self) -> set[str]:
        return set(
            self.session.scalars(
                select(AlertRule.scope_key).where(AlertRule.enabled.is_(True)).distinct()
            )
        )

    def publishing_scopes(self) -> set[str]:
        """The scopes that have a rule file: a per-group template's enabled rule is in its
        own scope, a compact template's enabled rules are in the global file."""
        rows = self.session.execute(
            select(AlertRule.scope_key, AlertTemplate.threshold_mode)
            .join(AlertTemplate, AlertTemplate.id == AlertRule.template_id)
            .where(AlertRule.enabled.is_(True))
            .distinct()
        )
        return {GLOBAL_SCOPE if mode == COMPACT else scope for scope, mode in rows}

    def per_group_enabled_in_scopes(self, scope_keys: Collection[str]) -> Sequence[AlertRule]:
        """Enabled rules of these scopes whose template publishes one rule per group."""
        query = (
            select(AlertRule)
            .join(AlertTemplate, AlertTemplate.id == AlertRule.template_id)
            .where(
                AlertRule.enabled.is_(True),
                AlertRule.scope_key.in_(list(scope_keys)),
                AlertTemplate.threshold_mode != COMPACT,
            )
        )
        return self.session.scalars(query.order_by(AlertRule.scope_key, AlertRule.id)).all()

    def compact_templates_in_use(self) -> Sequence[AlertTemplate]:
        """Templates in compact threshold mode that have an enabled rule, by name."""
        used = select(AlertRule.template_id).where(AlertRule.enabled.is_(True))
        return self.session.scalars(
            select(AlertTemplate)
            .where(AlertTemplate.threshold_mode == COMPACT, AlertTemplate.id.in_(used))
            .order_by(AlertTemplate.name)
        ).all()

    def compact_rules(self) -> Sequence[AlertRule]:
        """Enabled group rules of the templates in compact threshold mode."""
        query = (
            select(AlertRule)
            .join(AlertTemplate, AlertTemplate.id == AlertRule.template_id)
            .where(
                AlertRule.enabled.is_(True),
                AlertRule.group_id.is_not(None),
                AlertTemplate.threshold_mode == COMPACT,
            )
        )
        return self.session.scalars(query.order_by(AlertRule.template_id, AlertRule.id)).all()

    def has_enabled_rules(self, template_id: str) -> bool:
        query = select(AlertRule.id).where(
            AlertRule.template_id == template_id, AlertRule.enabled.is_(True)
        )
        return self.session.scalar(query.limit(1)) is not None

    def effective_for_group(self, group_id: str | None) -> Sequence[AlertRule]:
        """Enabled rules of one group and the global ones."""
        scopes = [GLOBAL_SCOPE] if group_id is None else [GLOBAL_SCOPE, group_id]
        return self.enabled_in_scopes(scopes)

    def find(
        self,
        *,
        template_id: str | None,
        group_id: str | None,
        global_only: bool,
        enabled: bool | None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[AlertRule], int]:
        query = select(AlertRule)
        if template_id:
            query = query.where(AlertRule.template_id == template_id)
        if group_id:
            query = query.where(AlertRule.group_id == group_id)
        if global_only:
            query = query.where(or_(AlertRule.scope_key == GLOBAL_SCOPE))
        if enabled is not None:
            query = query.where(AlertRule.enabled.is_(enabled))
        return self.page(
            query, AlertRule.scope_key, AlertRule.template_id, offset=offset, limit=limit
        )
