"""Group verbs; raise the AAMI error family, flush but never commit."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from aami.alerts.repository import AlertRuleRepository
from aami.audit import service as audit
from aami.checks.repository import ScriptPolicyRepository
from aami.common.changes import mark_rule_scopes
from aami.common.ids import new_id
from aami.db.locking import lock_for_update
from aami.errors import Conflict, NotFound
from aami.groups.models import Group
from aami.groups.repository import GroupRepository
from aami.groups.schemas import GroupCreate, GroupRead, GroupUpdate
from aami.targets.repository import TargetRepository

ENTITY = "group"


def _snapshot(group: Group) -> dict[str, object]:
    return GroupRead.model_validate(group).model_dump(mode="json")


def get(session: Session, *, ref: str) -> Group | None:
    return GroupRepository(session).get_by_ref(ref)


def get_or_raise(session: Session, *, ref: str) -> Group:
    """Return the group with this id or name, or raise NotFound."""
    group = get(session, ref=ref)
    if group is None:
        raise NotFound.of(ENTITY, ref)
    return group


def list_groups(
    session: Session,
    *,
    name: str | None = None,
    label: tuple[str, str] | None = None,
    q: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[Sequence[Group], int]:
    """One page of groups; ``q`` matches any part of id, name, description or labels."""
    return GroupRepository(session).find(name=name, label=label, q=q, offset=offset, limit=limit)


def create(session: Session, *, actor: str, data: GroupCreate) -> Group:
    repo = GroupRepository(session)
    group_id = data.id or new_id("grp")
    if repo.get(group_id) is not None:
        raise Conflict(f"group id {group_id!r} already exists")
    if repo.name_taken(data.name):
        raise Conflict(f"group name {data.name!r} is already used by another group")
    group = Group(id=group_id, name=data.name, description=data.description, labels=data.labels)
    repo.add(group)
    audit.record(
        session,
        actor=actor,
        action="create",
        entity_type=ENTITY,
        entity_id=group.id,
        after=_snapshot(group),
    )
    return group


def update(session: Session, *, actor: str, group: Group, data: GroupUpdate) -> Group:
    lock_for_update(session, group)
    changes = data.changes()
    before = _snapshot(group)
    if "name" in changes and GroupRepository(session).name_taken(
        changes["name"], excluding=group.id
    ):
        raise Conflict(f"group name {changes['name']!r} is already used by another group")
    for field, value in changes.items():
        setattr(group, field, value)
    session.flush()
    if "name" in changes:
        # Alert names and the `group` label of its rules carry the name.
        mark_rule_scopes(session, {group.id})
    audit.record(
        session,
        actor=actor,
        action="update",
        entity_type=ENTITY,
        entity_id=group.id,
        before=before,
        after=_snapshot(group),
    )
    return group


def delete(session: Session, *, actor: str, group: Group) -> None:
    """Delete a group no target uses; otherwise raise Conflict naming the targets."""
    lock_for_update(session, group)
    hostnames, count = TargetRepository(session).hostnames_in_group(group.id)
    if count:
        more = f" and {count - len(hostnames)} more" if count > len(hostnames) else ""
        raise Conflict(
            f"group {group.id!r} is used by {count} target(s): {', '.join(hostnames)}{more}; "
            "remove it from their group_ids first"
        )
    rules = AlertRuleRepository(session).for_group(group.id)
    if rules:
        names = ", ".join(f"{rule.id} ({rule.template.name})" for rule in rules[:20])
        raise Conflict(
            f"group {group.id!r} has {len(rules)} alert rule(s): {names}; delete them first"
        )
    policies = ScriptPolicyRepository(session).for_group(group.id)
    if policies:
        names = ", ".join(f"{p.id} ({p.template.name})" for p in policies[:20])
        raise Conflict(
            f"group {group.id!r} has {len(policies)} script polic"
            f"{'y' if len(policies) == 1 else 'ies'}: {names}; delete them first"
        )
    before = _snapshot(group)
    GroupRepository(session).delete(group)
    audit.record(
        session,
        actor=actor,
        action="delete",
        entity_type=ENTITY,
        entity_id=group.id,
        before=before,
    )
