"""Applying one entity of the document: create, update or delete it through its domain
service, so validation, audit and the rule-scope marks are the services' own."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from aami.alertmanager import notifications
from aami.alertmanager.models import NotificationChannel, NotificationRoute
from aami.alertmanager.publisher import AlertmanagerPublisher
from aami.alertmanager.schemas import ChannelCreate, ChannelUpdate, RouteCreate, RouteUpdate
from aami.alerts import service as alerts
from aami.alerts.models import AlertRule, AlertTemplate
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
from aami.configcode.document import (
    KEEP,
    Fields,
    entry_path,
    resolve_secret,
    split_policy_key,
    split_rule_key,
)
from aami.configcode.export import export_channel, export_exporter
from aami.configcode.repository import ConfigRepository
from aami.errors import Invalid
from aami.groups import service as groups
from aami.groups.models import Group
from aami.groups.schemas import GroupCreate, GroupUpdate
from aami.targets import service as targets
from aami.targets.models import Target
from aami.targets.schemas import ExporterCreate, ExporterUpdate, TargetCreate, TargetUpdate

__all__ = [
    "Context",
    "create_alert_rule",
    "create_alert_template",
    "create_channel",
    "create_group",
    "create_route",
    "create_script_policy",
    "create_script_template",
    "create_target",
    "delete_alert_rule",
    "delete_alert_template",
    "delete_channel",
    "delete_group",
    "delete_route",
    "delete_script_policy",
    "delete_script_template",
    "delete_target",
    "diff_channel",
    "update_alert_rule",
    "update_alert_template",
    "update_channel",
    "update_group",
    "update_route",
    "update_script_policy",
    "update_script_template",
    "update_target",
]


@dataclass(frozen=True)
class Context:
    """What every change needs: the one transaction, who makes it, and the Alertmanager
    config publisher that checks channel and route changes."""

    session: Session
    actor: str
    am: AlertmanagerPublisher


def _found(entity_id: str | None, kind: str, name: str) -> str:
    """The id of the entry a name refers to; planning has checked that it exists."""
    if entity_id is None:
        raise Invalid(f"unknown {kind} {name!r}")
    return entity_id


# ---- groups and targets ------------------------------------------------------------------


def create_group(ctx: Context, key: str, data: Fields) -> None:
    groups.create(ctx.session, actor=ctx.actor, data=GroupCreate(id=key, **data))


def update_group(ctx: Context, group: Group, changed: Fields) -> None:
    groups.update(ctx.session, actor=ctx.actor, group=group, data=GroupUpdate(**changed))


def delete_group(ctx: Context, group: Group) -> None:
    groups.delete(ctx.session, actor=ctx.actor, group=group)


def create_target(ctx: Context, key: str, data: Fields) -> None:
    targets.create(ctx.session, actor=ctx.actor, data=TargetCreate(hostname=key, **data))


def update_target(ctx: Context, target: Target, changed: Fields) -> None:
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
        diff = {k: v for k, v in item.items() if export_exporter(existing)[k] != v}
        if diff:
            targets.update_exporter(
                ctx.session, actor=ctx.actor, exporter=existing, data=ExporterUpdate(**diff)
            )
    ctx.session.refresh(target)


def delete_target(ctx: Context, target: Target) -> None:
    targets.delete(ctx.session, actor=ctx.actor, target=target)


# ---- alert templates and rules -----------------------------------------------------------


def create_alert_template(ctx: Context, key: str, data: Fields) -> None:
    alerts.create_template(ctx.session, actor=ctx.actor, data=AlertTemplateCreate(name=key, **data))


def update_alert_template(ctx: Context, template: AlertTemplate, changed: Fields) -> None:
    alerts.update_template(
        ctx.session, actor=ctx.actor, template=template, data=AlertTemplateUpdate(**changed)
    )


def delete_alert_template(ctx: Context, template: AlertTemplate) -> None:
    alerts.delete_template(ctx.session, actor=ctx.actor, template=template)


def create_alert_rule(ctx: Context, key: str, data: Fields) -> None:
    parts = split_rule_key(key)
    template_id = _found(
        ConfigRepository(ctx.session).alert_template_id(parts.template),
        "alert template",
        parts.template,
    )
    alerts.create_rule(
        ctx.session,
        actor=ctx.actor,
        data=AlertRuleCreate(template_id=template_id, group_id=parts.group_id, **data),
    )


def update_alert_rule(ctx: Context, rule: AlertRule, changed: Fields) -> None:
    # The document states the whole config: keys it dropped are removed, not merged away.
    alerts.update_rule(
        ctx.session,
        actor=ctx.actor,
        rule=rule,
        data=AlertRuleUpdate(**changed),
        replace_config=True,
    )


def delete_alert_rule(ctx: Context, rule: AlertRule) -> None:
    alerts.delete_rule(ctx.session, actor=ctx.actor, rule=rule)


# ---- script templates and policies -------------------------------------------------------


def create_script_template(ctx: Context, key: str, data: Fields) -> None:
    checks.create_template(
        ctx.session, actor=ctx.actor, data=ScriptTemplateCreate(name=key, **data)
    )


def update_script_template(ctx: Context, template: ScriptTemplate, changed: Fields) -> None:
    checks.update_template(
        ctx.session, actor=ctx.actor, template=template, data=ScriptTemplateUpdate(**changed)
    )


def delete_script_template(ctx: Context, template: ScriptTemplate) -> None:
    checks.delete_template(ctx.session, actor=ctx.actor, template=template)


def create_script_policy(ctx: Context, key: str, data: Fields) -> None:
    parts = split_policy_key(key)
    repo = ConfigRepository(ctx.session)
    template_id = _found(repo.script_template_id(parts.template), "script template", parts.template)
    target_id = None
    if parts.scope == "target" and parts.subject is not None:
        target_id = _found(repo.target_id(parts.subject), "target", parts.subject)
    checks.create_policy(
        ctx.session,
        actor=ctx.actor,
        data=ScriptPolicyCreate.model_validate(
            {
                **data,
                "template_id": template_id,
                "scope": parts.scope,
                "group_id": parts.subject if parts.scope == "group" else None,
                "target_id": target_id,
            }
        ),
    )


def update_script_policy(ctx: Context, policy: ScriptPolicy, changed: Fields) -> None:
    checks.update_policy(
        ctx.session,
        actor=ctx.actor,
        policy=policy,
        data=ScriptPolicyUpdate(**changed),
        replace_config=True,
    )


def delete_script_policy(ctx: Context, policy: ScriptPolicy) -> None:
    checks.delete_policy(ctx.session, actor=ctx.actor, policy=policy)


# ---- notification channels and routes ----------------------------------------------------


def create_channel(ctx: Context, key: str, data: Fields) -> None:
    data = dict(data)
    secret = resolve_secret(key, data.pop("secret"), None)
    notifications.create_channel(
        ctx.session,
        ctx.am,
        actor=ctx.actor,
        data=ChannelCreate(name=key, secret=secret if isinstance(secret, str) else None, **data),
    )


def update_channel(ctx: Context, channel: NotificationChannel, changed: Fields) -> None:
    notifications.update_channel(
        ctx.session, ctx.am, actor=ctx.actor, channel=channel, data=ChannelUpdate(**changed)
    )


def delete_channel(ctx: Context, channel: NotificationChannel) -> None:
    notifications.delete_channel(ctx.session, ctx.am, actor=ctx.actor, channel=channel)


def diff_channel(desired: Fields, channel: NotificationChannel) -> Fields:
    """The channel's changed fields as ChannelUpdate takes them; name/type cannot change."""
    current = export_channel(channel)
    if desired["type"] != current["type"]:
        raise Invalid(
            f"{entry_path('notification_channels', channel.name)}.type: {current['type']!r} "
            f"cannot change to {desired['type']!r} in place; give a new channel of that type "
            "a new name and point the routes at it"
        )
    changed: Fields = {}
    if desired["settings"] != current["settings"]:
        changed["settings"] = desired["settings"]
    secret = resolve_secret(channel.name, desired["secret"], channel)
    if secret is not KEEP and secret != channel.secret:
        changed["secret"] = secret
    return changed


def _receiver(ctx: Context, data: Fields) -> Fields:
    """The route's fields with its receiver, a channel's name, as the channel's id."""
    if "receiver" not in data:
        return data
    name = data["receiver"]
    channel_id = _found(ConfigRepository(ctx.session).channel_id(name), "channel", name)
    return {**data, "receiver": channel_id}


def create_route(ctx: Context, key: str, data: Fields) -> None:
    data = _receiver(ctx, data)
    notifications.create_route(
        ctx.session,
        ctx.am,
        actor=ctx.actor,
        data=RouteCreate.model_validate({"name": key, **data}),
    )


def update_route(ctx: Context, route: NotificationRoute, changed: Fields) -> None:
    changed = _receiver(ctx, changed)
    notifications.update_route(
        ctx.session, ctx.am, actor=ctx.actor, route=route, data=RouteUpdate.model_validate(changed)
    )


def delete_route(ctx: Context, route: NotificationRoute) -> None:
    notifications.delete_route(ctx.session, ctx.am, actor=ctx.actor, route=route)
