"""SQL for alert templates and alert rules."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from aami.alerts.models import GLOBAL_SCOPE, AlertRule, AlertTemplate


class AlertTemplateRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, template_id: str) -> AlertTemplate | None:
        return self.session.get(AlertTemplate, template_id)

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
        self, *, name: str | None, severity: str | None, offset: int, limit: int
    ) -> tuple[Sequence[AlertTemplate], int]:
        query = select(AlertTemplate)
        if name:
            query = query.where(AlertTemplate.name == name)
        if severity:
            query = query.where(AlertTemplate.severity == severity)
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = self.session.scalars(
            query.order_by(AlertTemplate.name).offset(offset).limit(limit)
        ).all()
        return rows, total

    def add(self, template: AlertTemplate) -> None:
        self.session.add(template)
        self.session.flush()

    def delete(self, template: AlertTemplate) -> None:
        self.session.delete(template)
        self.session.flush()


class AlertRuleRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, rule_id: str) -> AlertRule | None:
        return self.session.get(AlertRule, rule_id)

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
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = self.session.scalars(
            query.order_by(AlertRule.scope_key, AlertRule.template_id).offset(offset).limit(limit)
        ).all()
        return rows, total

    def add(self, rule: AlertRule) -> None:
        self.session.add(rule)
        self.session.flush()

    def delete(self, rule: AlertRule) -> None:
        self.session.delete(rule)
        self.session.flush()
