"""Every ORM model, imported in one place for Alembic and for mapper configuration."""

from aami.audit.models import AuditRecord
from aami.db.base import Base, ConfigRevision
from aami.groups.models import Group
from aami.targets.models import Exporter, Target, TargetGroup

__all__ = ["AuditRecord", "Base", "ConfigRevision", "Exporter", "Group", "Target", "TargetGroup"]
