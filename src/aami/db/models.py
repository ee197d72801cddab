"""Every ORM model, imported in one place for Alembic and for mapper configuration."""

from aami.alertmanager.models import (
    AlertTransition,
    NotificationChannel,
    NotificationRoute,
    SilenceWatch,
)
from aami.alerts.models import AlertRule, AlertTemplate
from aami.audit.models import AuditRecord
from aami.auth.models import UiSession
from aami.checks.models import ScriptPolicy, ScriptTemplate
from aami.db.base import Base, ConfigRevision, Heartbeat, RuleScopeRevision
from aami.evaluators.models import Evaluator
from aami.groups.models import Group
from aami.publishing.models import Publish, PublisherEpoch
from aami.registration.models import BootstrapToken, NodeToken, PendingRegistration
from aami.targets.models import Exporter, Target, TargetGroup

__all__ = [
    "AlertRule",
    "AlertTemplate",
    "AlertTransition",
    "AuditRecord",
    "Base",
    "BootstrapToken",
    "ConfigRevision",
    "Evaluator",
    "Exporter",
    "Group",
    "Heartbeat",
    "NodeToken",
    "NotificationChannel",
    "NotificationRoute",
    "PendingRegistration",
    "Publish",
    "PublisherEpoch",
    "RuleScopeRevision",
    "ScriptPolicy",
    "ScriptTemplate",
    "SilenceWatch",
    "Target",
    "TargetGroup",
    "UiSession",
]
