"""Each entity as the configuration document holds it: its key (a name, see ``document``)
and the fields it is created from, nothing the server computes (ids, timestamps, hashes)
and no secret (only a reference)."""

from __future__ import annotations

from aami.alertmanager.models import NotificationChannel, NotificationRoute
from aami.alerts.models import AlertRule, AlertTemplate
from aami.checks.models import ScriptPolicy, ScriptTemplate
from aami.configcode.document import Fields, policy_key, rule_key, secret_ref
from aami.groups.models import Group
from aami.targets.models import Exporter, Target

__all__ = [
    "export_alert_rule",
    "export_alert_template",
    "export_channel",
    "export_exporter",
    "export_group",
    "export_route",
    "export_script_policy",
    "export_script_template",
    "export_target",
    "key_alert_rule",
    "key_script_policy",
]


def export_group(group: Group) -> Fields:
    return {"name": group.name, "description": group.description, "labels": dict(group.labels)}


def export_exporter(exporter: Exporter) -> Fields:
    return {
        "type": exporter.type,
        "port": exporter.port,
        "metrics_path": exporter.metrics_path,
        "enabled": exporter.enabled,
    }


def export_target(target: Target) -> Fields:
    return {
        "ip_address": target.ip_address,
        "group_ids": target.group_ids,
        "labels": dict(target.labels),
        "status": target.status,
        "exporters": [export_exporter(e) for e in sorted(target.exporters, key=lambda e: e.port)],
    }


def export_alert_template(template: AlertTemplate) -> Fields:
    return {
        "description": template.description,
        "query_template": template.query_template,
        "default_config": dict(template.default_config),
        "parameters": {key: dict(spec) for key, spec in template.parameters.items()},
        "severity": template.severity,
        "for_duration": template.for_duration,
        "labels": dict(template.labels),
        "annotations": dict(template.annotations),
        "threshold_mode": template.threshold_mode,
    }


def export_alert_rule(rule: AlertRule) -> Fields:
    return {
        "config": dict(rule.config),
        "enabled": rule.enabled,
        "labels": dict(rule.labels),
        "annotations": dict(rule.annotations),
    }


def export_script_template(template: ScriptTemplate) -> Fields:
    return {
        "script_type": template.script_type,
        "script_content": template.script_content,
        "language": template.language,
        "default_config": dict(template.default_config),
        "version": template.version,
        "description": template.description,
        "timeout_seconds": template.timeout_seconds,
    }


def export_script_policy(policy: ScriptPolicy) -> Fields:
    return {
        "config": dict(policy.config),
        "priority": policy.priority,
        "is_active": policy.is_active,
    }


def export_channel(channel: NotificationChannel) -> Fields:
    """A channel; ``secret`` is its reference, or None when it has no secret."""
    data: Fields = {
        "type": channel.type,
        "settings": dict(channel.settings),
    }
    data["secret"] = {"ref": secret_ref(channel.name)} if channel.secret else None
    return data


def export_route(route: NotificationRoute) -> Fields:
    return {
        "matchers": [dict(m) for m in route.matchers],
        "receiver": route.receiver.name,
        "group_by": list(route.group_by) if route.group_by is not None else None,
        "group_wait": route.group_wait,
        "group_interval": route.group_interval,
        "repeat_interval": route.repeat_interval,
        "continue": route.continue_,
        "position": route.position,
    }


def key_alert_rule(rule: AlertRule) -> str:
    return rule_key(rule.template.name, rule.group_id)


def key_script_policy(policy: ScriptPolicy, hostname: str | None) -> str:
    """``hostname``: the policy's target's, for a target policy."""
    subject = policy.group_id if policy.scope == "group" else hostname
    return policy_key(policy.template.name, policy.scope, subject)
