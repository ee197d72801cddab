"""SQL for targets, memberships and exporters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import and_, func, select
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from aami.common.repository import Repository, has_label, text_search
from aami.db.base import ConfigRevision
from aami.groups.models import Group
from aami.targets.models import Exporter, Target, TargetGroup

__all__ = ["ExporterRepository", "TargetRepository"]


class TargetRepository(Repository[Target]):
    model = Target

    def get_by_ref(self, ref: str) -> Target | None:
        """Find a target by id, else by hostname."""
        return self.session.get(Target, ref) or self.session.scalar(
            select(Target).where(Target.hostname == ref.lower())
        )

    def hostname_taken(self, hostname: str, *, excluding: str | None = None) -> bool:
        query = select(Target.id).where(Target.hostname == hostname)
        if excluding is not None:
            query = query.where(Target.id != excluding)
        return self.session.scalar(query) is not None

    def hostnames_in_group(self, group_id: str, *, limit: int = 20) -> tuple[list[str], int]:
        """Return up to ``limit`` hostnames of the group's targets and their count."""
        base = select(Target.hostname).join(TargetGroup).where(TargetGroup.group_id == group_id)
        total = self.session.scalar(select(func.count()).select_from(base.subquery())) or 0
        names = list(self.session.scalars(base.order_by(Target.hostname).limit(limit)))
        return names, total

    def find(
        self,
        *,
        group_id: str | None,
        status: str | None,
        hostname: str | None,
        label: tuple[str, str] | None,
        q: str | None = None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[Target], int]:
        """Targets by group, status, hostname, label and ``q`` (any part of id, hostname,
        address or labels), in hostname order."""
        query = select(Target)
        if group_id:
            query = query.where(
                Target.id.in_(select(TargetGroup.target_id).where(TargetGroup.group_id == group_id))
            )
        if status:
            query = query.where(Target.status == status)
        if hostname:
            query = query.where(Target.hostname == hostname.lower())
        if label is not None:
            query = query.where(has_label(Target.labels, *label))
        if q:
            query = query.where(
                text_search(q, Target.id, Target.hostname, Target.ip_address, Target.labels)
            )
        return self.page(query, Target.hostname, offset=offset, limit=limit)

    def inventory_revision(self) -> int:
        """The counter bumped by every change to groups, targets or exporters."""
        return (
            self.session.scalar(
                select(ConfigRevision.revision).where(ConfigRevision.name == "inventory")
            )
            or 0
        )

    def sd_rows(
        self, *, exporter_type: str | None, group_id: str | None
    ) -> tuple[list[Any], dict[str, list[str]]]:
        """Rows for service discovery: one per enabled exporter, and each target's group ids.

        Plain column reads (no ORM objects) because this runs for every exporter in the fleet.
        """
        primary = TargetGroup.__table__.alias("primary_membership")
        query = (
            select(
                Exporter.type,
                Exporter.port,
                Exporter.metrics_path,
                Target.id,
                Target.hostname,
                Target.ip_address,
                Target.labels,
                Group.id,
                Group.name,
            )
            .join(Target, Exporter.target_id == Target.id)
            .outerjoin(primary, and_(primary.c.target_id == Target.id, primary.c.position == 0))
            .outerjoin(Group, Group.id == primary.c.group_id)
            .where(Exporter.enabled.is_(True), Target.status != "inactive")
            .order_by(Target.hostname, Exporter.port)
        )
        if exporter_type:
            query = query.where(Exporter.type == exporter_type)
        if group_id:
            query = query.where(primary.c.group_id == group_id)
        # Straight to the DB-API cursor: SQLAlchemy's row objects cost more than the query
        # itself at 10^4 rows, and this runs after every inventory change.
        rows = self._fetch(query)
        for index, row in enumerate(rows):
            if isinstance(row[6], str | bytes):  # SQLite returns JSON as text
                rows[index] = (*row[:6], orjson.loads(row[6]), *row[7:])
        memberships: dict[str, list[str]] = {}
        for target_id, member_group in self._fetch(
            select(TargetGroup.target_id, TargetGroup.group_id).order_by(
                TargetGroup.target_id, TargetGroup.position
            )
        ):
            memberships.setdefault(target_id, []).append(member_group)
        return rows, memberships

    def _fetch(self, query: ClauseElement) -> list[Any]:
        connection = self.session.connection()
        compiled = query.compile(dialect=connection.dialect)
        assert isinstance(compiled, SQLCompiler)
        params = compiled.construct_params() or {}
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if compiled.positiontup is not None:
                cursor.execute(str(compiled), tuple(params[name] for name in compiled.positiontup))
            else:
                cursor.execute(str(compiled), params)
            return list(cursor.fetchall())
        finally:
            cursor.close()


class ExporterRepository(Repository[Exporter]):
    model = Exporter

    def port_taken(self, target_id: str, port: int, *, excluding: str | None = None) -> bool:
        query = select(Exporter.id).where(Exporter.target_id == target_id, Exporter.port == port)
        if excluding is not None:
            query = query.where(Exporter.id != excluding)
        return self.session.scalar(query) is not None

    def find(
        self,
        *,
        target_id: str | None,
        type: str | None,
        enabled: bool | None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[Exporter], int]:
        query = select(Exporter)
        if target_id:
            query = query.where(Exporter.target_id == target_id)
        if type:
            query = query.where(Exporter.type == type)
        if enabled is not None:
            query = query.where(Exporter.enabled.is_(enabled))
        return self.page(query, Exporter.target_id, Exporter.port, offset=offset, limit=limit)
