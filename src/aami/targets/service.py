"""Target and exporter verbs; raise the AAMI error family, flush but never commit."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from aami.audit import service as audit
from aami.checks.repository import ScriptPolicyRepository
from aami.common.ids import new_id
from aami.db.locking import lock_for_update
from aami.db.revisions import RevisionRepository
from aami.errors import Conflict, Invalid, NotFound
from aami.groups.models import Group
from aami.groups.repository import GroupRepository
from aami.targets.models import EXPORTER_DEFAULT_PORTS, Exporter, Target, TargetGroup
from aami.targets.repository import ExporterRepository, TargetRepository
from aami.targets.schemas import (
    ExporterCreate,
    ExporterInline,
    ExporterRead,
    ExporterUpdate,
    TargetCreate,
    TargetRead,
    TargetUpdate,
)


def _target_snapshot(target: Target) -> dict[str, object]:
    return TargetRead.model_validate(target).model_dump(mode="json")


def _exporter_snapshot(exporter: Exporter) -> dict[str, object]:
    return ExporterRead.model_validate(exporter).model_dump(mode="json")


def resolve_groups(session: Session, refs: Sequence[str]) -> list[Group]:
    """Turn group refs (ids or names) into groups, keeping their order."""
    found = GroupRepository(session).get_many_by_ref(refs)
    missing = [ref for ref in refs if ref not in found]
    if missing:
        raise Invalid(f"group_ids: unknown group(s) {', '.join(repr(m) for m in missing)}")
    groups = [found[ref] for ref in refs]
    seen: set[str] = set()
    for ref, group in zip(refs, groups, strict=True):
        if group.id in seen:
            raise Invalid(f"group_ids: group {ref!r} ({group.id}) is listed twice")
        seen.add(group.id)
    return groups


def _set_groups(target: Target, groups: list[Group]) -> None:
    # Keep existing membership rows for groups that stay: same primary key, new position.
    existing = {m.group_id: m for m in target.memberships}
    memberships = []
    for position, group in enumerate(groups):
        membership = existing.get(group.id) or TargetGroup(group_id=group.id, group=group)
        membership.position = position
        memberships.append(membership)
    target.memberships = memberships


def _exporter_port(data: ExporterInline | ExporterCreate) -> int:
    if data.port is not None:
        return data.port
    if data.type in EXPORTER_DEFAULT_PORTS:
        return EXPORTER_DEFAULT_PORTS[data.type]
    raise Invalid("port: a custom exporter needs a port")


def get_or_raise(session: Session, *, ref: str) -> Target:
    """Return the target with this id or hostname, or raise NotFound."""
    target = TargetRepository(session).get_by_ref(ref)
    if target is None:
        raise NotFound.of("target", ref)
    return target


def list_targets(
    session: Session,
    *,
    group: str | None = None,
    status: str | None = None,
    hostname: str | None = None,
    label: tuple[str, str] | None = None,
    q: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[Sequence[Target], int]:
    """One page of targets; ``q`` matches any part of id, hostname, address or labels."""
    group_id = None
    if group:
        found = GroupRepository(session).get_by_ref(group)
        if found is None:
            return [], 0
        group_id = found.id
    return TargetRepository(session).find(
        group_id=group_id,
        status=status,
        hostname=hostname,
        label=label,
        q=q,
        offset=offset,
        limit=limit,
    )


def create(session: Session, *, actor: str, data: TargetCreate) -> Target:
    repo = TargetRepository(session)
    target_id = data.id or new_id("tgt")
    if repo.get(target_id) is not None:
        raise Conflict(f"target id {target_id!r} already exists")
    if repo.hostname_taken(data.hostname):
        raise Conflict(f"hostname {data.hostname!r} is already registered")
    groups = resolve_groups(session, data.group_ids)
    ports: set[int] = set()
    exporters = []
    for index, inline in enumerate(data.exporters):
        port = _exporter_port(inline)
        if port in ports:
            raise Invalid(f"exporters[{index}]: port {port} is used twice on this target")
        ports.add(port)
        exporters.append(
            Exporter(
                id=new_id("exp"),
                type=inline.type,
                port=port,
                metrics_path=inline.metrics_path,
                enabled=inline.enabled,
            )
        )
    target = Target(
        id=target_id,
        hostname=data.hostname,
        ip_address=data.ip_address,
        labels=data.labels,
        status=data.status,
        exporters=exporters,
    )
    _set_groups(target, groups)
    repo.add(target)
    audit.record(
        session,
        actor=actor,
        action="create",
        entity_type="target",
        entity_id=target.id,
        after=_target_snapshot(target),
    )
    return target


def update(session: Session, *, actor: str, target: Target, data: TargetUpdate) -> Target:
    lock_for_update(session, target)
    changes = data.changes()
    before = _target_snapshot(target)
    if "hostname" in changes and TargetRepository(session).hostname_taken(
        changes["hostname"], excluding=target.id
    ):
        raise Conflict(f"hostname {changes['hostname']!r} is already registered")
    if "group_ids" in changes:
        _set_groups(target, resolve_groups(session, changes.pop("group_ids")))
    for field, value in changes.items():
        setattr(target, field, value)
    session.flush()
    session.refresh(target)
    audit.record(
        session,
        actor=actor,
        action="update",
        entity_type="target",
        entity_id=target.id,
        before=before,
        after=_target_snapshot(target),
    )
    return target


def delete(session: Session, *, actor: str, target: Target) -> None:
    lock_for_update(session, target)
    policies = ScriptPolicyRepository(session).for_target(target.id)
    if policies:
        names = ", ".join(f"{p.id} ({p.template.name})" for p in policies[:20])
        raise Conflict(
            f"target {target.hostname!r} has {len(policies)} script polic"
            f"{'y' if len(policies) == 1 else 'ies'} of its own: {names}; delete them first"
        )
    before = _target_snapshot(target)
    TargetRepository(session).delete(target)
    # Its node tokens go with it (ON DELETE CASCADE, unseen by the ORM): the revision tells
    # every replica's token cache that they no longer hold.
    RevisionRepository(session).bump_area("node_tokens")
    audit.record(
        session,
        actor=actor,
        action="delete",
        entity_type="target",
        entity_id=target.id,
        before=before,
    )


def get_exporter_or_raise(session: Session, *, exporter_id: str) -> Exporter:
    exporter = ExporterRepository(session).get(exporter_id)
    if exporter is None:
        raise NotFound.of("exporter", exporter_id)
    return exporter


def list_exporters(
    session: Session,
    *,
    target: str | None = None,
    type: str | None = None,
    enabled: bool | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[Sequence[Exporter], int]:
    target_id = None
    if target:
        found = TargetRepository(session).get_by_ref(target)
        if found is None:
            return [], 0
        target_id = found.id
    return ExporterRepository(session).find(
        target_id=target_id, type=type, enabled=enabled, offset=offset, limit=limit
    )


def create_exporter(session: Session, *, actor: str, data: ExporterCreate) -> Exporter:
    target = TargetRepository(session).get_by_ref(data.target_id)
    if target is None:
        raise Invalid(f"target_id: unknown target {data.target_id!r}")
    repo = ExporterRepository(session)
    exporter_id = data.id or new_id("exp")
    if repo.get(exporter_id) is not None:
        raise Conflict(f"exporter id {exporter_id!r} already exists")
    port = _exporter_port(data)
    if repo.port_taken(target.id, port):
        raise Conflict(f"target {target.hostname!r} already has an exporter on port {port}")
    exporter = Exporter(
        id=exporter_id,
        target_id=target.id,
        type=data.type,
        port=port,
        metrics_path=data.metrics_path,
        enabled=data.enabled,
    )
    repo.add(exporter)
    audit.record(
        session,
        actor=actor,
        action="create",
        entity_type="exporter",
        entity_id=exporter.id,
        after=_exporter_snapshot(exporter),
    )
    return exporter


def update_exporter(
    session: Session, *, actor: str, exporter: Exporter, data: ExporterUpdate
) -> Exporter:
    lock_for_update(session, exporter)
    changes = data.changes()
    before = _exporter_snapshot(exporter)
    if "port" in changes and ExporterRepository(session).port_taken(
        exporter.target_id, changes["port"], excluding=exporter.id
    ):
        raise Conflict(f"this target already has an exporter on port {changes['port']}")
    for field, value in changes.items():
        setattr(exporter, field, value)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="update",
        entity_type="exporter",
        entity_id=exporter.id,
        before=before,
        after=_exporter_snapshot(exporter),
    )
    return exporter


def delete_exporter(session: Session, *, actor: str, exporter: Exporter) -> None:
    lock_for_update(session, exporter)
    before = _exporter_snapshot(exporter)
    ExporterRepository(session).delete(exporter)
    audit.record(
        session,
        actor=actor,
        action="delete",
        entity_type="exporter",
        entity_id=exporter.id,
        before=before,
    )
