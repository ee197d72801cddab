"""Read every row of the configuration's tables, in id order."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from aami.alertmanager.models import NotificationChannel, NotificationRoute
from aami.alerts.models import AlertRule, AlertTemplate
from aami.checks.models import ScriptPolicy, ScriptTemplate
from aami.common.repository import SessionRepository
from aami.groups.models import Group
from aami.targets.models import Target

__all__ = ["ConfigRepository"]


class ConfigRepository(SessionRepository):
    def groups(self) -> Sequence[Group]:
        return self.session.scalars(select(Group).order_by(Group.id)).all()

    def targets(self) -> Sequence[Target]:
        return self.session.scalars(select(Target).order_by(Target.id)).all()

    def alert_templates(self) -> Sequence[AlertTemplate]:
        return self.session.scalars(select(AlertTemplate).order_by(AlertTemplate.id)).all()

    def alert_rules(self) -> Sequence[AlertRule]:
        return self.session.scalars(select(AlertRule).order_by(AlertRule.id)).all()

    def script_templates(self) -> Sequence[ScriptTemplate]:
        return self.session.scalars(select(ScriptTemplate).order_by(ScriptTemplate.id)).all()

    def script_policies(self) -> Sequence[ScriptPolicy]:
        return self.session.scalars(select(ScriptPolicy).order_by(ScriptPolicy.id)).all()

    def notification_channels(self) -> Sequence[NotificationChannel]:
        return self.session.scalars(
            select(NotificationChannel).order_by(NotificationChannel.id)
        ).all()

    def notification_routes(self) -> Sequence[NotificationRoute]:
        return self.session.scalars(select(NotificationRoute).order_by(NotificationRoute.id)).all()
