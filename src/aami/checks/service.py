"""Script templates, policies and the effective checks of a node."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.orm import Session

from aami.audit import service as audit
from aami.checks.models import ScriptPolicy, ScriptTemplate
from aami.checks.repository import ScriptPolicyRepository, ScriptTemplateRepository
from aami.checks.resolution import Decision, PolicyView, TemplateView, resolve_all
from aami.checks.schemas import (
    CheckSignature,
    ConfigSource,
    EffectiveCheck,
    ExplainedCheck,
    PolicyDecision,
    ScriptPolicyCreate,
    ScriptPolicyRead,
    ScriptPolicyUpdate,
    ScriptTemplateCreate,
    ScriptTemplateRead,
    ScriptTemplateUpdate,
)
from aami.common.caching import LruCache
from aami.common.http_cache import etag_of
from aami.common.ids import new_id
from aami.common.patch import merge_patch
from aami.db.locking import lock_for_update
from aami.errors import Conflict, Invalid, NotFound
from aami.groups.repository import GroupRepository
from aami.security.signing import Signer
from aami.targets.models import Target
from aami.targets.repository import TargetRepository


def content_hash(content: str) -> str:
    """sha256 of the script as the node receives it (UTF-8)."""
    return hashlib.sha256(content.encode()).hexdigest()


def _template_snapshot(template: ScriptTemplate) -> dict[str, Any]:
    return ScriptTemplateRead.model_validate(template).model_dump(mode="json")


def read_policy(policy: ScriptPolicy) -> ScriptPolicyRead:
    return ScriptPolicyRead(
        id=policy.id,
        template_id=policy.template_id,
        template_name=policy.template.name,
        scope=policy.scope,
        group_id=policy.group_id,
        target_id=policy.target_id,
        config=policy.config,
        priority=policy.priority,
        is_active=policy.is_active,
        created_at=policy.created_at,
        updated_at=policy.updated_at,
    )


# ---- script templates ------------------------------------------------------------------


def get_template_or_raise(session: Session, *, ref: str) -> ScriptTemplate:
    template = ScriptTemplateRepository(session).get_by_ref(ref)
    if template is None:
        raise NotFound.of("script template", ref)
    return template


def list_templates(
    session: Session,
    *,
    name: str | None = None,
    script_type: str | None = None,
    q: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[Sequence[ScriptTemplate], int]:
    """One page of script templates; ``q`` matches any part of id, name, type,
    description or language."""
    return ScriptTemplateRepository(session).find(
        name=name, script_type=script_type, q=q, offset=offset, limit=limit
    )


def create_template(session: Session, *, actor: str, data: ScriptTemplateCreate) -> ScriptTemplate:
    repo = ScriptTemplateRepository(session)
    template_id = data.id or new_id("scr")
    if repo.get(template_id) is not None:
        raise Conflict(f"script template id {template_id!r} already exists")
    if repo.name_taken(data.name):
        raise Conflict(f"a script template named {data.name!r} already exists")
    template = ScriptTemplate(
        id=template_id, **data.model_dump(exclude={"id"}), hash=content_hash(data.script_content)
    )
    repo.add(template)
    audit.record(
        session,
        actor=actor,
        action="create",
        entity_type="script_template",
        entity_id=template.id,
        after=_template_snapshot(template),
    )
    return template


def update_template(
    session: Session, *, actor: str, template: ScriptTemplate, data: ScriptTemplateUpdate
) -> ScriptTemplate:
    lock_for_update(session, template)
    changes = data.changes()
    before = _template_snapshot(template)
    if "name" in changes and ScriptTemplateRepository(session).name_taken(
        changes["name"], excluding=template.id
    ):
        raise Conflict(f"a script template named {changes['name']!r} already exists")
    for field, value in changes.items():
        setattr(template, field, value)
    template.hash = content_hash(template.script_content)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="update",
        entity_type="script_template",
        entity_id=template.id,
        before=before,
        after=_template_snapshot(template),
    )
    return template


def delete_template(session: Session, *, actor: str, template: ScriptTemplate) -> None:
    lock_for_update(session, template)
    policies = ScriptPolicyRepository(session).for_template(template.id)
    if policies:
        names = ", ".join(f"{p.id} ({p.scope})" for p in policies[:20])
        raise Conflict(
            f"script template {template.name!r} is used by {len(policies)} polic"
            f"{'y' if len(policies) == 1 else 'ies'}: {names}; delete them first"
        )
    before = _template_snapshot(template)
    ScriptTemplateRepository(session).delete(template)
    audit.record(
        session,
        actor=actor,
        action="delete",
        entity_type="script_template",
        entity_id=template.id,
        before=before,
    )


# ---- script policies -------------------------------------------------------------------


def get_policy_or_raise(session: Session, *, policy_id: str) -> ScriptPolicy:
    policy = ScriptPolicyRepository(session).get(policy_id)
    if policy is None:
        raise NotFound.of("script policy", policy_id)
    return policy


def list_policies(
    session: Session,
    *,
    template: str | None = None,
    scope: str | None = None,
    group: str | None = None,
    target: str | None = None,
    is_active: bool | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[Sequence[ScriptPolicy], int]:
    template_id = group_id = target_id = None
    if template:
        found = ScriptTemplateRepository(session).get_by_ref(template)
        if found is None:
            return [], 0
        template_id = found.id
    if group:
        found_group = GroupRepository(session).get_by_ref(group)
        if found_group is None:
            return [], 0
        group_id = found_group.id
    if target:
        found_target = TargetRepository(session).get_by_ref(target)
        if found_target is None:
            return [], 0
        target_id = found_target.id
    return ScriptPolicyRepository(session).find(
        template_id=template_id,
        scope=scope,
        group_id=group_id,
        target_id=target_id,
        is_active=is_active,
        offset=offset,
        limit=limit,
    )


def _scope_refs(session: Session, data: ScriptPolicyCreate) -> tuple[str | None, str | None]:
    if data.scope == "global":
        if data.group_id is not None or data.target_id is not None:
            raise Invalid("a global policy takes neither group_id nor target_id")
        return None, None
    if data.scope == "group":
        if data.group_id is None:
            raise Invalid("group_id: a group policy needs a group")
        if data.target_id is not None:
            raise Invalid("target_id: a group policy takes no target_id")
        group = GroupRepository(session).get_by_ref(data.group_id)
        if group is None:
            raise Invalid(f"group_id: unknown group {data.group_id!r}")
        return group.id, None
    if data.target_id is None:
        raise Invalid("target_id: a target policy needs a target")
    if data.group_id is not None:
        raise Invalid("group_id: a target policy takes no group_id")
    target = TargetRepository(session).get_by_ref(data.target_id)
    if target is None:
        raise Invalid(f"target_id: unknown target {data.target_id!r}")
    return None, target.id


def _policy_snapshot(policy: ScriptPolicy) -> dict[str, Any]:
    return read_policy(policy).model_dump(mode="json")


def create_policy(session: Session, *, actor: str, data: ScriptPolicyCreate) -> ScriptPolicy:
    template = ScriptTemplateRepository(session).get_by_ref(data.template_id)
    if template is None:
        raise Invalid(f"template_id: unknown script template {data.template_id!r}")
    group_id, target_id = _scope_refs(session, data)
    repo = ScriptPolicyRepository(session)
    policy_id = data.id or new_id("pol")
    if repo.get(policy_id) is not None:
        raise Conflict(f"script policy id {policy_id!r} already exists")
    policy = ScriptPolicy(
        id=policy_id,
        template=template,
        template_id=template.id,
        scope=data.scope,
        group_id=group_id,
        target_id=target_id,
        config=data.config,
        priority=data.priority,
        is_active=data.is_active,
    )
    repo.add(policy)
    audit.record(
        session,
        actor=actor,
        action="create",
        entity_type="script_policy",
        entity_id=policy.id,
        after=_policy_snapshot(policy),
    )
    return policy


def update_policy(
    session: Session,
    *,
    actor: str,
    policy: ScriptPolicy,
    data: ScriptPolicyUpdate,
    replace_config: bool = False,
) -> ScriptPolicy:
    """Change the fields given. ``config`` is a JSON merge patch (only the keys given
    change, ``null`` removes one) unless ``replace_config``: then it is the whole config."""
    lock_for_update(session, policy)
    before = _policy_snapshot(policy)
    changes = data.changes()
    if "config" in changes:
        changes["config"] = merge_patch({} if replace_config else policy.config, changes["config"])
    for field, value in changes.items():
        setattr(policy, field, value)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="update",
        entity_type="script_policy",
        entity_id=policy.id,
        before=before,
        after=_policy_snapshot(policy),
    )
    return policy


def delete_policy(session: Session, *, actor: str, policy: ScriptPolicy) -> None:
    lock_for_update(session, policy)
    before = _policy_snapshot(policy)
    ScriptPolicyRepository(session).delete(policy)
    audit.record(
        session,
        actor=actor,
        action="delete",
        entity_type="script_policy",
        entity_id=policy.id,
        before=before,
    )


# ---- effective checks ------------------------------------------------------------------


def _view(template: ScriptTemplate) -> TemplateView:
    return TemplateView(template.id, template.name, template.default_config)


def _policy_view(policy: ScriptPolicy) -> PolicyView:
    return PolicyView(
        id=policy.id,
        template_id=policy.template_id,
        scope=policy.scope,  # type: ignore[arg-type]
        priority=policy.priority,
        is_active=policy.is_active,
        config=policy.config,
        group_id=policy.group_id,
        target_id=policy.target_id,
    )


def decisions(
    session: Session, *, target_id: str | None, group_ids: Sequence[str]
) -> tuple[list[Decision], dict[str, ScriptTemplate]]:
    """Resolve every script template for a target (or for a group, with no target)."""
    templates = {t.id: t for t in ScriptTemplateRepository(session).all()}
    policies = [
        _policy_view(p) for p in ScriptPolicyRepository(session).reaching(target_id, group_ids)
    ]
    resolved = resolve_all(
        [_view(t) for t in templates.values()],
        policies,
        target_id=target_id or "",
        group_ids=group_ids,
    )
    return resolved, templates


def effective_checks(
    session: Session, target: Target, *, signer: Signer | None = None
) -> list[EffectiveCheck]:
    """The checks a node runs, in the seed's shape; signed when ``signer`` is given."""
    resolved, templates = decisions(session, target_id=target.id, group_ids=target.group_ids)
    checks = []
    for decision in resolved:
        if not decision.enabled:
            continue
        template = templates[decision.template_id]
        signatures = (
            [
                CheckSignature(**signature)
                for signature in signer.sign_check(
                    name=template.name,
                    script_type=template.script_type,
                    language=template.language,
                    version=template.version,
                    hash=template.hash,
                    timeout_seconds=template.timeout_seconds,
                    config=decision.config,
                )
            ]
            if signer is not None
            else []
        )
        checks.append(
            EffectiveCheck(
                name=template.name,
                script_type=template.script_type,
                script_content=template.script_content,
                language=template.language,
                config=decision.config,
                version=template.version,
                hash=template.hash,
                timeout_seconds=template.timeout_seconds,
                signatures=signatures,
            )
        )
    return checks


def _policy_decision(policy: PolicyView) -> PolicyDecision:
    return PolicyDecision(
        policy_id=policy.id,
        scope=policy.scope,
        priority=policy.priority,
        is_active=policy.is_active,
        group_id=policy.group_id,
        target_id=policy.target_id,
    )


def explain(
    session: Session, *, target_id: str | None, group_ids: Sequence[str]
) -> list[ExplainedCheck]:
    """Every check that reaches a target or group: on or off, and where each value came from."""
    resolved, templates = decisions(session, target_id=target_id, group_ids=group_ids)
    out = []
    for decision in resolved:
        template = templates[decision.template_id]
        out.append(
            ExplainedCheck(
                name=template.name,
                template_id=template.id,
                enabled=decision.enabled,
                decided_by=_policy_decision(decision.winner),
                config={
                    key: ConfigSource(
                        value=source.value,
                        layer=source.layer,
                        policy_id=source.policy_id,
                        group_id=source.group_id,
                    )
                    for key, source in decision.sources.items()
                },
                policies=[_policy_decision(p) for p in decision.considered],
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class ChecksDocument:
    target_id: str
    body: bytes
    etag: str


ChecksKey = tuple[int, int, str]


class ChecksCache(LruCache[ChecksKey, ChecksDocument]):
    """Rendered check lists keyed by (checks revision, inventory revision, target ref)."""

    def __init__(self, size: int = 50_000) -> None:
        super().__init__(size)


def checks_document(session: Session, *, ref: str, signer: Signer) -> ChecksDocument:
    """The node's signed check list (target by id or hostname) as JSON bytes with an ETag."""
    target = TargetRepository(session).get_by_ref(ref)
    if target is None:
        raise NotFound.of("target", ref)
    checks = effective_checks(session, target, signer=signer)
    body = orjson.dumps([c.model_dump() for c in checks])
    return ChecksDocument(target.id, body, etag_of(body))


def seed_templates(session: Session, *, actor: str) -> dict[str, list[str]]:
    """Create the default check scripts that do not exist yet (by name)."""
    from aami.checks.defaults import DEFAULT_SCRIPT_TEMPLATES

    repo = ScriptTemplateRepository(session)
    created, existing = [], []
    for item in DEFAULT_SCRIPT_TEMPLATES:
        if repo.name_taken(item["name"]):
            existing.append(item["name"])
            continue
        create_template(session, actor=actor, data=ScriptTemplateCreate.model_validate(item))
        created.append(item["name"])
    return {"created": created, "existing": existing}
