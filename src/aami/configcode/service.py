"""Configuration as code: export the configuration as one document; plan and apply one.

The document (``apiVersion: aami/v1``, ``kind: Configuration``) holds every group,
target (exporters inline), alert template and rule, script template and policy,
notification channel and route, each section a mapping from id to fields, sorted by id.
Timestamps, hashes, tokens, audit and publish history are not part of it, and neither
is any secret: a channel's secret is a reference, ``secret: {ref: "env:AAMI_SECRET_X"}``,
resolved from the server's environment on apply (unset: the channel keeps its secret).

``apply`` performs the plan through the domain services (validation, audit and the
rule-scope marks are theirs) in the caller's one transaction: the first error raises
and the caller rolls everything back.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from aami.alertmanager import service as notifications
from aami.alertmanager.models import NotificationChannel, NotificationRoute
from aami.alertmanager.publisher import AlertmanagerPublisher
from aami.alertmanager.schemas import (
    ChannelCreate,
    ChannelUpdate,
    RouteCreate,
    RouteUpdate,
)
from aami.alerts import service as alerts
from aami.alerts.models import AlertRule, AlertTemplate
from aami.alerts.rendering import RenderError, dump_rule_file, render_rule_file
from aami.alerts.repository import AlertRuleRepository
from aami.alerts.schemas import (
    AlertRuleCreate,
    AlertRuleUpdate,
    AlertTemplateCreate,
    AlertTemplateUpdate,
)
from aami.checks import service as checks
from aami.checks.models import ScriptPolicy, ScriptTemplate
from aami.checks.schemas import (
    ScriptPolicyCreate,
    ScriptPolicyUpdate,
    ScriptTemplateCreate,
    ScriptTemplateUpdate,
)
from aami.common.ids import is_valid_id
from aami.configcode.repository import ConfigRepository
from aami.errors import Invalid
from aami.groups import service as groups
from aami.groups.models import Group
from aami.groups.schemas import GroupCreate, GroupUpdate
from aami.prometheus.publisher import file_title
from aami.prometheus.rule_files import RuleFileStore
from aami.targets import service as targets
from aami.targets.models import EXPORTER_DEFAULT_PORTS, Exporter, Target
from aami.targets.schemas import ExporterCreate, ExporterUpdate, TargetCreate, TargetUpdate

__all__ = [
    "API_VERSION",
    "KIND",
    "SECTIONS",
    "Change",
    "Plan",
    "apply",
    "export_document",
    "plan",
    "rule_files",
    "secret_ref",
    "touches_alertmanager",
]

API_VERSION = "aami/v1"
KIND = "Configuration"
SECRET_PREFIX = "AAMI_SECRET_"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Change:
    """One entity the document changes: create, update, replace or delete."""

    kind: str
    id: str
    action: str
    fields: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        item: dict[str, Any] = {"kind": self.kind, "id": self.id, "action": self.action}
        if self.fields:
            item["fields"] = list(self.fields)
        return item


@dataclass
class Plan:
    """What applying a document changes, entity by entity, and which rule files."""

    prune: bool
    changes: list[Change] = field(default_factory=list)
    unchanged: dict[str, int] = field(default_factory=dict)
    not_in_document: dict[str, list[str]] = field(default_factory=dict)
    rule_files_written: list[str] = field(default_factory=list)
    rule_files_removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes or self.rule_files_written or self.rule_files_removed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "prune": self.prune,
            "changes": [change.as_dict() for change in self.changes],
            "unchanged": self.unchanged,
            "not_in_document": self.not_in_document,
            "rule_files": {
                "written": self.rule_files_written,
                "removed": self.rule_files_removed,
            },
        }


@dataclass
class _Context:
    session: Session
    actor: str
    am: AlertmanagerPublisher


# ---- secrets -----------------------------------------------------------------------------


def secret_ref(channel_name: str) -> str:
    """The environment reference an exported channel's secret gets."""
    return "env:" + SECRET_PREFIX + re.sub(r"[^A-Z0-9]", "_", channel_name.upper())


_KEEP = object()


def _secret_spec(channel_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """Validate the document's secret fields; return ``{"ref": ...}``, ``{"keep": True}`` or
    None (no secret)."""
    where = f"notification_channels.{channel_id}"
    secret = body.pop("secret", None)
    has_secret = body.pop("has_secret", None)
    if secret is None:
        if has_secret is True:
            return {"keep": True}
        return None
    if not isinstance(secret, dict) or set(secret) != {"ref"} or not isinstance(secret["ref"], str):
        raise Invalid(
            f"{where}.secret: a secret is never written in the document; "
            f'give a reference such as {{ref: "{secret_ref("name")}"}}'
        )
    ref: str = secret["ref"]
    scheme, _, name = ref.partition(":")
    if scheme != "env" or not _ENV_NAME.match(name) or not name.startswith(SECRET_PREFIX):
        raise Invalid(
            f"{where}.secret.ref: {ref!r} is not a reference AAMI resolves; "
            f"use env:{SECRET_PREFIX}<NAME> (an environment variable of the server)"
        )
    return {"ref": ref}


def _resolve_secret(
    channel_id: str, spec: dict[str, Any] | None, current: NotificationChannel | None
) -> object:
    """The secret the channel must end with: a string, None, or _KEEP (leave it)."""
    if spec is None:
        return None
    has_current = current is not None and bool(current.secret)
    if spec.get("keep"):
        if not has_current:
            raise Invalid(
                f"notification_channels.{channel_id}: has_secret is true but the channel has "
                "no secret on this server; give secret: {ref: ...}"
            )
        return _KEEP
    name = str(spec["ref"]).partition(":")[2]
    value = os.environ.get(name)
    if value:
        return value
    if has_current:
        return _KEEP
    raise Invalid(
        f"notification_channels.{channel_id}.secret: {name} is not set in the server's "
        "environment and the channel has no secret yet"
    )


# ---- normalising the document ------------------------------------------------------------


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'value'}: {error['msg']}"
        for error in exc.errors()
    )


def _validate(
    schema: type[BaseModel], kind: str, entity_id: str, data: dict[str, Any]
) -> BaseModel:
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise Invalid(f"{kind}.{entity_id}: {_errors(exc)}") from None


def _normalise_with(
    schema: type[BaseModel],
) -> Callable[[str, str, dict[str, Any]], dict[str, Any]]:
    def normalise(kind: str, entity_id: str, body: dict[str, Any]) -> dict[str, Any]:
        model = _validate(schema, kind, entity_id, {**body, "id": entity_id})
        return model.model_dump(by_alias=True, exclude={"id"})

    return normalise


def _exporters(exporters: Sequence[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    out = []
    for index, item in enumerate(exporters):
        port = item["port"]
        if port is None:
            port = EXPORTER_DEFAULT_PORTS.get(item["type"])
            if port is None:
                raise Invalid(f"{where}.exporters[{index}].port: a custom exporter needs a port")
        out.append({**item, "port": port})
    return sorted(out, key=lambda e: int(e["port"]))


def _normalise_target(kind: str, entity_id: str, body: dict[str, Any]) -> dict[str, Any]:
    model = _validate(TargetCreate, kind, entity_id, {**body, "id": entity_id})
    data = model.model_dump(exclude={"id"})
    data["exporters"] = _exporters(data["exporters"], f"{kind}.{entity_id}")
    return data


def _normalise_channel(kind: str, entity_id: str, body: dict[str, Any]) -> dict[str, Any]:
    body = dict(body)
    secret = _secret_spec(entity_id, body)
    model = _validate(ChannelCreate, kind, entity_id, {**body, "id": entity_id})
    data = model.model_dump(exclude={"id", "secret"})
    data["secret"] = secret
    return data


# ---- exporting ---------------------------------------------------------------------------


def _export_group(group: Group) -> dict[str, Any]:
    return {"name": group.name, "description": group.description, "labels": dict(group.labels)}


def _export_exporter(exporter: Exporter) -> dict[str, Any]:
    return {
        "type": exporter.type,
        "port": exporter.port,
        "metrics_path": exporter.metrics_path,
        "enabled": exporter.enabled,
    }


def _export_target(target: Target) -> dict[str, Any]:
    return {
        "hostname": target.hostname,
        "ip_address": target.ip_address,
        "group_ids": target.group_ids,
        "labels": dict(target.labels),
        "status": target.status,
        "exporters": [_export_exporter(e) for e in sorted(target.exporters, key=lambda e: e.port)],
    }


def _export_alert_template(template: AlertTemplate) -> dict[str, Any]:
    return {
        "name": template.name,
        "description": template.description,
        "query_template": template.query_template,
        "default_config": dict(template.default_config),
        "severity": template.severity,
        "for_duration": template.for_duration,
        "labels": dict(template.labels),
        "annotations": dict(template.annotations),
    }


def _export_alert_rule(rule: AlertRule) -> dict[str, Any]:
    return {
        "template_id": rule.template_id,
        "group_id": rule.group_id,
        "config": dict(rule.config),
        "enabled": rule.enabled,
        "labels": dict(rule.labels),
        "annotations": dict(rule.annotations),
    }


def _export_script_template(template: ScriptTemplate) -> dict[str, Any]:
    return {
        "name": template.name,
        "script_type": template.script_type,
        "script_content": template.script_content,
        "language": template.language,
        "default_config": dict(template.default_config),
        "version": template.version,
        "description": template.description,
        "timeout_seconds": template.timeout_seconds,
    }


def _export_script_policy(policy: ScriptPolicy) -> dict[str, Any]:
    return {
        "template_id": policy.template_id,
        "scope": policy.scope,
        "group_id": policy.group_id,
        "target_id": policy.target_id,
        "config": dict(policy.config),
        "priority": policy.priority,
        "is_active": policy.is_active,
    }


def _export_channel(channel: NotificationChannel) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": channel.name,
        "type": channel.type,
        "settings": dict(channel.settings),
    }
    data["secret"] = {"ref": secret_ref(channel.name)} if channel.secret else None
    return data


def _export_route(route: NotificationRoute) -> dict[str, Any]:
    return {
        "name": route.name,
        "matchers": [dict(m) for m in route.matchers],
        "receiver": route.receiver_id,
        "group_by": list(route.group_by) if route.group_by is not None else None,
        "group_wait": route.group_wait,
        "group_interval": route.group_interval,
        "repeat_interval": route.repeat_interval,
        "continue": route.continue_,
        "position": route.position,
    }


# ---- applying one entity -----------------------------------------------------------------


def _create_group(ctx: _Context, entity_id: str, data: dict[str, Any]) -> None:
    groups.create(ctx.session, actor=ctx.actor, data=GroupCreate(id=entity_id, **data))


def _update_group(ctx: _Context, row: Any, changed: dict[str, Any]) -> None:
    groups.update(ctx.session, actor=ctx.actor, group=row, data=GroupUpdate(**changed))


def _delete_group(ctx: _Context, row: Any) -> None:
    groups.delete(ctx.session, actor=ctx.actor, group=row)


def _create_target(ctx: _Context, entity_id: str, data: dict[str, Any]) -> None:
    targets.create(ctx.session, actor=ctx.actor, data=TargetCreate(id=entity_id, **data))


def _update_target(ctx: _Context, row: Any, changed: dict[str, Any]) -> None:
    target: Target = row
    wanted = changed.pop("exporters", None)
    if changed:
        targets.update(ctx.session, actor=ctx.actor, target=target, data=TargetUpdate(**changed))
    if wanted is None:
        return
    # The inline list is the target's whole set of exporters, matched by port.
    by_port = {e["port"]: e for e in wanted}
    current = {e.port: e for e in target.exporters}
    for port, exporter in sorted(current.items()):
        if port not in by_port:
            targets.delete_exporter(ctx.session, actor=ctx.actor, exporter=exporter)
    for port, item in sorted(by_port.items()):
        existing = current.get(port)
        if existing is None:
            targets.create_exporter(
                ctx.session, actor=ctx.actor, data=ExporterCreate(target_id=target.id, **item)
            )
            continue
        diff = {k: v for k, v in item.items() if _export_exporter(existing)[k] != v}
        if diff:
            targets.update_exporter(
                ctx.session, actor=ctx.actor, exporter=existing, data=ExporterUpdate(**diff)
            )
    ctx.session.refresh(target)


def _delete_target(ctx: _Context, row: Any) -> None:
    targets.delete(ctx.session, actor=ctx.actor, target=row)


def _create_alert_template(ctx: _Context, entity_id: str, data: dict[str, Any]) -> None:
    alerts.create_template(
        ctx.session, actor=ctx.actor, data=AlertTemplateCreate(id=entity_id, **data)
    )


def _update_alert_template(ctx: _Context, row: Any, changed: dict[str, Any]) -> None:
    alerts.update_template(
        ctx.session, actor=ctx.actor, template=row, data=AlertTemplateUpdate(**changed)
    )


def _delete_alert_template(ctx: _Context, row: Any) -> None:
    alerts.delete_template(ctx.session, actor=ctx.actor, template=row)


def _create_alert_rule(ctx: _Context, entity_id: str, data: dict[str, Any]) -> None:
    alerts.create_rule(ctx.session, actor=ctx.actor, data=AlertRuleCreate(id=entity_id, **data))


def _update_alert_rule(ctx: _Context, row: Any, changed: dict[str, Any]) -> None:
    alerts.update_rule(ctx.session, actor=ctx.actor, rule=row, data=AlertRuleUpdate(**changed))


def _delete_alert_rule(ctx: _Context, row: Any) -> None:
    alerts.delete_rule(ctx.session, actor=ctx.actor, rule=row)


def _create_script_template(ctx: _Context, entity_id: str, data: dict[str, Any]) -> None:
    checks.create_template(
        ctx.session, actor=ctx.actor, data=ScriptTemplateCreate(id=entity_id, **data)
    )


def _update_script_template(ctx: _Context, row: Any, changed: dict[str, Any]) -> None:
    checks.update_template(
        ctx.session, actor=ctx.actor, template=row, data=ScriptTemplateUpdate(**changed)
    )


def _delete_script_template(ctx: _Context, row: Any) -> None:
    checks.delete_template(ctx.session, actor=ctx.actor, template=row)


def _create_script_policy(ctx: _Context, entity_id: str, data: dict[str, Any]) -> None:
    checks.create_policy(
        ctx.session, actor=ctx.actor, data=ScriptPolicyCreate(id=entity_id, **data)
    )


def _update_script_policy(ctx: _Context, row: Any, changed: dict[str, Any]) -> None:
    checks.update_policy(
        ctx.session, actor=ctx.actor, policy=row, data=ScriptPolicyUpdate(**changed)
    )


def _delete_script_policy(ctx: _Context, row: Any) -> None:
    checks.delete_policy(ctx.session, actor=ctx.actor, policy=row)


def _create_channel(ctx: _Context, entity_id: str, data: dict[str, Any]) -> None:
    data = dict(data)
    secret = _resolve_secret(entity_id, data.pop("secret"), None)
    notifications.create_channel(
        ctx.session,
        ctx.am,
        actor=ctx.actor,
        data=ChannelCreate(
            id=entity_id, secret=secret if isinstance(secret, str) else None, **data
        ),
    )


def _update_channel(ctx: _Context, row: Any, changed: dict[str, Any]) -> None:
    notifications.update_channel(
        ctx.session, ctx.am, actor=ctx.actor, channel=row, data=ChannelUpdate(**changed)
    )


def _delete_channel(ctx: _Context, row: Any) -> None:
    notifications.delete_channel(ctx.session, ctx.am, actor=ctx.actor, channel=row)


def _create_route(ctx: _Context, entity_id: str, data: dict[str, Any]) -> None:
    notifications.create_route(
        ctx.session,
        ctx.am,
        actor=ctx.actor,
        data=RouteCreate.model_validate({"id": entity_id, **data}),
    )


def _update_route(ctx: _Context, row: Any, changed: dict[str, Any]) -> None:
    notifications.update_route(
        ctx.session, ctx.am, actor=ctx.actor, route=row, data=RouteUpdate.model_validate(changed)
    )


def _delete_route(ctx: _Context, row: Any) -> None:
    notifications.delete_route(ctx.session, ctx.am, actor=ctx.actor, route=row)


def _diff_fields(desired: dict[str, Any], current: dict[str, Any]) -> list[str]:
    return [name for name, value in desired.items() if current.get(name) != value]


def _diff_channel(desired: dict[str, Any], row: Any) -> dict[str, Any]:
    """The channel's changed fields as ChannelUpdate takes them; name/type cannot change."""
    channel: NotificationChannel = row
    current = _export_channel(channel)
    fixed = [name for name in ("name", "type") if desired[name] != current[name]]
    if fixed:
        raise Invalid(
            f"notification_channels.{channel.id}: {' and '.join(fixed)} cannot change in place; "
            "give the new channel a new id and point the routes at it"
        )
    changed: dict[str, Any] = {}
    if desired["settings"] != current["settings"]:
        changed["settings"] = desired["settings"]
    secret = _resolve_secret(channel.id, desired["secret"], channel)
    if secret is not _KEEP and secret != channel.secret:
        changed["secret"] = secret
    return changed


@dataclass(frozen=True)
class _Kind:
    """How one section of the document maps onto its domain service."""

    name: str
    rows: Callable[[ConfigRepository], Sequence[Any]]
    export: Callable[[Any], dict[str, Any]]
    normalise: Callable[[str, str, dict[str, Any]], dict[str, Any]]
    create: Callable[[_Context, str, dict[str, Any]], None]
    update: Callable[[_Context, Any, dict[str, Any]], None]
    delete: Callable[[_Context, Any], None]
    # Fields the update schema cannot change: a change deletes and re-creates the entity.
    replace_on: frozenset[str] = frozenset()
    diff: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None

    def changed(self, desired: dict[str, Any], row: Any) -> dict[str, Any]:
        if self.diff is not None:
            return self.diff(desired, row)
        current = self.export(row)
        return {name: desired[name] for name in _diff_fields(desired, current)}


KINDS: tuple[_Kind, ...] = (
    _Kind(
        "groups",
        ConfigRepository.groups,
        _export_group,
        _normalise_with(GroupCreate),
        _create_group,
        _update_group,
        _delete_group,
    ),
    _Kind(
        "targets",
        ConfigRepository.targets,
        _export_target,
        _normalise_target,
        _create_target,
        _update_target,
        _delete_target,
    ),
    _Kind(
        "alert_templates",
        ConfigRepository.alert_templates,
        _export_alert_template,
        _normalise_with(AlertTemplateCreate),
        _create_alert_template,
        _update_alert_template,
        _delete_alert_template,
    ),
    _Kind(
        "alert_rules",
        ConfigRepository.alert_rules,
        _export_alert_rule,
        _normalise_with(AlertRuleCreate),
        _create_alert_rule,
        _update_alert_rule,
        _delete_alert_rule,
        replace_on=frozenset({"template_id"}),
    ),
    _Kind(
        "script_templates",
        ConfigRepository.script_templates,
        _export_script_template,
        _normalise_with(ScriptTemplateCreate),
        _create_script_template,
        _update_script_template,
        _delete_script_template,
    ),
    _Kind(
        "script_policies",
        ConfigRepository.script_policies,
        _export_script_policy,
        _normalise_with(ScriptPolicyCreate),
        _create_script_policy,
        _update_script_policy,
        _delete_script_policy,
        replace_on=frozenset({"template_id", "scope", "group_id", "target_id"}),
    ),
    _Kind(
        "notification_channels",
        ConfigRepository.notification_channels,
        _export_channel,
        _normalise_channel,
        _create_channel,
        _update_channel,
        _delete_channel,
        diff=_diff_channel,
    ),
    _Kind(
        "notification_routes",
        ConfigRepository.notification_routes,
        _export_route,
        _normalise_with(RouteCreate),
        _create_route,
        _update_route,
        _delete_route,
        replace_on=frozenset({"name"}),
    ),
)
SECTIONS = tuple(kind.name for kind in KINDS)
# Channels and routes come last: each of their changes publishes the Alertmanager config,
# so everything else has been validated before the first such publish.
_PHASES: tuple[tuple[str, ...], ...] = (
    (
        "groups",
        "targets",
        "alert_templates",
        "alert_rules",
        "script_templates",
        "script_policies",
    ),
    ("notification_channels", "notification_routes"),
)


# ---- the document ------------------------------------------------------------------------


def export_document(session: Session) -> dict[str, Any]:
    """The whole configuration as one document, every section sorted by id."""
    repo = ConfigRepository(session)
    document: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND}
    for kind in KINDS:
        entities = {}
        for row in sorted(kind.rows(repo), key=lambda r: r.id):
            data = kind.export(row)
            if kind.name == "notification_channels" and data["secret"] is None:
                del data["secret"]
            entities[row.id] = data
        document[kind.name] = entities
    return document


def _parse(document: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Validate the document's shape and every entity; return normalised sections."""
    if not isinstance(document, dict):
        raise Invalid("the document must be a mapping with apiVersion, kind and sections")
    if document.get("apiVersion") != API_VERSION:
        raise Invalid(f"apiVersion must be {API_VERSION!r}, not {document.get('apiVersion')!r}")
    if document.get("kind") != KIND:
        raise Invalid(f"kind must be {KIND!r}, not {document.get('kind')!r}")
    unknown = sorted(set(document) - {"apiVersion", "kind", *SECTIONS})
    if unknown:
        raise Invalid(
            f"unknown section(s) {', '.join(map(repr, unknown))}; "
            f"the sections are {', '.join(SECTIONS)}"
        )
    parsed: dict[str, dict[str, dict[str, Any]]] = {}
    for kind in KINDS:
        section = document.get(kind.name) or {}
        if not isinstance(section, dict):
            raise Invalid(f"{kind.name} must be a mapping from id to fields")
        entities: dict[str, dict[str, Any]] = {}
        for entity_id, body in sorted(section.items()):
            if not isinstance(entity_id, str) or not is_valid_id(entity_id):
                raise Invalid(f"{kind.name}: {entity_id!r} is not a valid id")
            if not isinstance(body, dict):
                raise Invalid(f"{kind.name}.{entity_id} must be a mapping of fields")
            if body.get("id", entity_id) != entity_id:
                raise Invalid(f"{kind.name}.{entity_id}: id {body['id']!r} differs from its key")
            body = {k: v for k, v in body.items() if k != "id"}
            entities[entity_id] = kind.normalise(kind.name, entity_id, body)
        parsed[kind.name] = entities
    return parsed


@dataclass
class _Step:
    kind: _Kind
    change: Change
    row: Any = None
    data: dict[str, Any] = field(default_factory=dict)


def _steps(
    session: Session, desired: dict[str, dict[str, dict[str, Any]]], plan_: Plan
) -> list[_Step]:
    repo = ConfigRepository(session)
    steps: list[_Step] = []
    for kind in KINDS:
        rows = {row.id: row for row in kind.rows(repo)}
        wanted = desired[kind.name]
        unchanged = 0
        for entity_id, data in wanted.items():
            row = rows.get(entity_id)
            if row is None:
                steps.append(_Step(kind, Change(kind.name, entity_id, "create"), data=data))
                continue
            changed = kind.changed(data, row)
            if not changed:
                unchanged += 1
            elif kind.replace_on & set(changed):
                change = Change(kind.name, entity_id, "replace", tuple(changed))
                steps.append(_Step(kind, change, row=row, data=data))
            else:
                change = Change(kind.name, entity_id, "update", tuple(changed))
                steps.append(_Step(kind, change, row=row, data=changed))
        plan_.unchanged[kind.name] = unchanged
        extra = sorted(set(rows) - set(wanted))
        if extra and plan_.prune:
            steps.extend(
                _Step(kind, Change(kind.name, entity_id, "delete"), row=rows[entity_id])
                for entity_id in extra
            )
        elif extra:
            plan_.not_in_document[kind.name] = extra
    return steps


def _execute(ctx: _Context, steps: list[_Step]) -> None:
    """Creates and updates in dependency order, then deletes in reverse, phase by phase."""
    for phase in _PHASES:
        for name in phase:
            for step in steps:
                if step.kind.name != name:
                    continue
                if step.change.action == "create":
                    step.kind.create(ctx, step.change.id, step.data)
                elif step.change.action == "update":
                    step.kind.update(ctx, step.row, dict(step.data))
                elif step.change.action == "replace":
                    step.kind.delete(ctx, step.row)
                    ctx.session.flush()
                    step.kind.create(ctx, step.change.id, step.data)
            ctx.session.flush()
        for name in reversed(phase):
            for step in steps:
                if step.kind.name == name and step.change.action == "delete":
                    step.kind.delete(ctx, step.row)
            ctx.session.flush()


def rule_files(session: Session) -> dict[str, str]:
    """Every rule file the database's enabled rules make, by name, as the publisher renders."""
    by_scope: dict[str, list[AlertRule]] = defaultdict(list)
    for rule in AlertRuleRepository(session).enabled_in_scopes(None):
        by_scope[rule.scope_key].append(rule)
    files: dict[str, str] = {}
    for scope, rules in sorted(by_scope.items()):
        name = RuleFileStore.file_name(scope)
        try:
            rendered = [alerts.render(rule) for rule in rules]
        except RenderError as exc:
            files[name] = f"# cannot render: {exc}"
            continue
        group = rules[0].group
        files[name] = dump_rule_file(
            render_rule_file(scope or "global", rendered),
            header=file_title(scope, group.name if group is not None else None),
        )
    return files


def _run(
    session: Session, document: Any, *, prune: bool, actor: str, am: AlertmanagerPublisher
) -> Plan:
    desired = _parse(document)
    result = Plan(prune=prune)
    before = rule_files(session)
    steps = _steps(session, desired, result)
    result.changes = [step.change for step in steps]
    _execute(_Context(session, actor, am), steps)
    session.flush()
    session.expire_all()
    after = rule_files(session)
    result.rule_files_written = sorted(n for n, text in after.items() if before.get(n) != text)
    result.rule_files_removed = sorted(set(before) - set(after))
    return result


class _ValidateOnly(AlertmanagerPublisher):
    """A plan checks the Alertmanager config it would make with amtool; it needs no
    running Alertmanager."""

    def validate(self, session: Session) -> None:
        session.flush()
        self.check(self.render(session))


def plan(session: Session, document: Any, *, prune: bool, am: AlertmanagerPublisher) -> Plan:
    """What applying ``document`` would change. THE CALLER MUST ROLL BACK afterwards.

    The document is applied for real (the Alertmanager config is only checked), so the
    plan fails exactly where the apply would and the rule files are rendered from the
    result; the caller's rollback discards it all. No savepoint: on SQLite a SAVEPOINT
    opens a deferred transaction at the first read, and its later write fails at once if
    the publisher committed in between.
    """
    return _run(
        session,
        document,
        prune=prune,
        actor="plan",
        am=_ValidateOnly(
            factory=am.factory, settings=am.settings, client=am.client, tool_timeout=am.tool_timeout
        ),
    )


def apply(
    session: Session, document: Any, *, prune: bool, actor: str, am: AlertmanagerPublisher
) -> Plan:
    """Make the configuration match ``document`` through the domain services; flush only.

    Any error raises; the caller rolls the whole transaction back.
    """
    return _run(session, document, prune=prune, actor=actor, am=am)


def touches_alertmanager(result: Plan) -> bool:
    """Whether a plan changes notification channels or routes."""
    return any(c.kind in ("notification_channels", "notification_routes") for c in result.changes)
