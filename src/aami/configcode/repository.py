"""Read every row of the configuration's tables, and find rows by the names the
configuration document refers to them by."""

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

    # ---- by name ---------------------------------------------------------------------

    def hostname_of(self, target_id: str) -> str | None:
        return self.session.scalar(select(Target.hostname).where(Target.id == target_id))

    def target_id(self, hostname: str) -> str | None:
        return self.session.scalar(select(Target.id).where(Target.hostname == hostname))

    def alert_template_id(self, name: str) -> str | None:
        return self.session.scalar(select(AlertTemplate.id).where(AlertTemplate.name == name))

    def script_template_id(self, name: str) -> str | None:
        return self.session.scalar(select(ScriptTemplate.id).where(ScriptTemplate.name == name))

    def channel_id(self, name: str) -> str | None:
        return self.session.scalar(
            select(NotificationChannel.id).where(NotificationChannel.name == name)
        )

    def names(self) -> dict[str, list[str]]:
        """What document entries may refer to, by section: group ids, hostnames and the
        names of templates and channels."""
        return {
            "groups": list(self.session.scalars(select(Group.id))),
            "targets": list(self.session.scalars(select(Target.hostname))),
            "alert_templates": list(self.session.scalars(select(AlertTemplate.name))),
            "script_templates": list(self.session.scalars(select(ScriptTemplate.name))),
            "notification_channels": list(self.session.scalars(select(NotificationChannel.name))),
        }
