"""The configuration document: its format, its keys, the secret references it holds
instead of secrets, and parsing it into normalised fields per entry.

The document (``apiVersion: aami/v1``, ``kind: Configuration``) holds every group,
target (exporters inline), alert template and rule, script template and policy,
notification channel and route. Each section maps an entry's key to its fields, sorted
by key; the keys are names a person chooses, never ids the server generates:

- ``groups``: the group id (chosen when the group is made);
- ``targets``: the hostname;
- ``alert_templates``, ``script_templates``, ``notification_channels``,
  ``notification_routes``: the name;
- ``alert_rules``: ``<template name>@<group id>``, or ``<template name>@global``;
- ``script_policies``: ``<script template name>@global``, ``@group:<group id>`` or
  ``@target:<hostname>``.

Entries refer to each other by these keys too (a target's ``group_ids``, a route's
``receiver`` channel name). Timestamps, hashes, tokens, audit and publish history are
not part of the document, and neither is any secret: a channel's secret is a reference,
``secret: {ref: "env:AAMI_SECRET_X"}``, resolved from the server's environment on apply
(unset: the channel keeps its secret).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from aami.alertmanager.models import NotificationChannel
from aami.alertmanager.schemas import ChannelCreate, RouteCreate
from aami.alerts.parameters import infer_parameters
from aami.alerts.rendering import ALERT_NAME
from aami.alerts.schemas import AlertRuleCreate, AlertTemplateCreate
from aami.checks.schemas import ScriptPolicyCreate, ScriptTemplateCreate
from aami.common.ids import is_valid_id
from aami.common.messages import validation_message
from aami.errors import Invalid
from aami.groups.schemas import GroupCreate
from aami.targets.models import EXPORTER_DEFAULT_PORTS
from aami.targets.schemas import TargetCreate

__all__ = [
    "API_VERSION",
    "GLOBAL",
    "KEEP",
    "KIND",
    "SECTIONS",
    "Desired",
    "Fields",
    "Keep",
    "PolicyKey",
    "RuleKey",
    "body_fields",
    "check_references",
    "entry_path",
    "parse",
    "policy_key",
    "resolve_secret",
    "rule_key",
    "secret_ref",
    "split_policy_key",
    "split_rule_key",
]

API_VERSION = "aami/v1"
KIND = "Configuration"
SECRET_PREFIX = "AAMI_SECRET_"
GLOBAL: Final = "global"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SCRIPT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_HOSTNAME = re.compile(r"^[a-z0-9][a-z0-9.-]{0,252}$")

# The sections in dependency order: what a section refers to comes before it.
SECTIONS: Final = (
    "groups",
    "targets",
    "alert_templates",
    "alert_rules",
    "script_templates",
    "script_policies",
    "notification_channels",
    "notification_routes",
)

Fields = dict[str, Any]  # one entry's fields, as the document (or an export) has them
Desired = dict[str, dict[str, Fields]]  # section -> key -> normalised fields


def entry_path(section: str, key: str) -> str:
    """Where an entry is in the document: ``alert_rules["HighCPUUsage@prod"]``."""
    return f"{section}[{json.dumps(key, ensure_ascii=False)}]"


# ---- keys --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleKey:
    """An alert rule's key: its template's name and its group (None: global)."""

    template: str
    group_id: str | None


@dataclass(frozen=True)
class PolicyKey:
    """A script policy's key: its script template's name, scope and subject."""

    template: str
    scope: str  # global, group or target
    subject: str | None  # the group id or the target's hostname


def rule_key(template: str, group_id: str | None) -> str:
    return f"{template}@{group_id if group_id is not None else GLOBAL}"


def policy_key(template: str, scope: str, subject: str | None) -> str:
    return f"{template}@{GLOBAL}" if scope == GLOBAL else f"{template}@{scope}:{subject}"


def split_rule_key(key: str) -> RuleKey:
    """``HighCPUUsage@prod`` -> (HighCPUUsage, prod); ``NodeDown@global`` -> (NodeDown, None)."""
    template, at, scope = key.partition("@")
    if not at or not ALERT_NAME.match(template) or not (scope == GLOBAL or is_valid_id(scope)):
        raise Invalid(
            f"alert_rules: {key!r} is not a rule's key; write <template name>@<group id> or "
            f"<template name>@global, e.g. HighCPUUsage@prod"
        )
    return RuleKey(template, None if scope == GLOBAL else scope)


def split_policy_key(key: str) -> PolicyKey:
    """``mount-check@global``, ``mount-check@group:prod``, ``mount-check@target:node-1``."""
    template, at, scope = key.partition("@")
    kind, colon, subject = scope.partition(":")
    valid = bool(at) and bool(_SCRIPT_NAME.match(template))
    if valid and kind == GLOBAL and not colon:
        return PolicyKey(template, GLOBAL, None)
    if valid and kind == "group" and is_valid_id(subject):
        return PolicyKey(template, kind, subject)
    if valid and kind == "target" and _HOSTNAME.match(subject):
        return PolicyKey(template, kind, subject)
    raise Invalid(
        f"script_policies: {key!r} is not a policy's key; write <script template name>@global, "
        "<name>@group:<group id> or <name>@target:<hostname>, e.g. mount-check@group:prod"
    )


# ---- secrets -----------------------------------------------------------------------------


def secret_ref(channel_name: str) -> str:
    """The environment reference an exported channel's secret gets."""
    return "env:" + SECRET_PREFIX + re.sub(r"[^A-Z0-9]", "_", channel_name.upper())


class Keep:
    """The channel keeps the secret it has."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = Keep()


def _secret_spec(where: str, body: Fields) -> Fields | None:
    """Validate the document's secret fields; return ``{"ref": ...}``, ``{"keep": True}`` or
    None (no secret)."""
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


def resolve_secret(
    channel_name: str, spec: Fields | None, current: NotificationChannel | None
) -> str | Keep | None:
    """The secret the channel must end with: a string, None, or KEEP (leave it)."""
    if spec is None:
        return None
    where = entry_path("notification_channels", channel_name)
    has_current = current is not None and bool(current.secret)
    if spec.get("keep"):
        if not has_current:
            raise Invalid(
                f"{where}: has_secret is true but the channel has no secret on this server; "
                "give secret: {ref: ...}"
            )
        return KEEP
    name = str(spec["ref"]).partition(":")[2]
    value = os.environ.get(name)
    if value:
        return value
    if has_current:
        return KEEP
    raise Invalid(
        f"{where}.secret: {name} is not set in the server's environment and the channel has "
        "no secret yet"
    )


# ---- normalising -------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One section's entries: the schema that validates them, the fields the key fills in
    (never written in the body) and the fields the body may have."""

    schema: type[BaseModel]
    key_fields: Callable[[str], Fields]  # the key -> the schema's fields it stands for
    body: frozenset[str]
    key_means: str  # what the key is, for messages
    extra: Callable[[str, Fields], Fields] | None = None  # further normalising

    def fields(self, section: str, key: str, body: Fields) -> tuple[BaseModel, Fields]:
        """The validated entry and its body's fields, normalised."""
        where = entry_path(section, key)
        unknown = sorted(set(body) - self.body)
        if unknown:
            raise Invalid(_unknown_fields(where, unknown, self))
        key_fields = self.key_fields(key)
        try:
            model = self.schema.model_validate({**body, **key_fields})
        except ValidationError as exc:
            raise Invalid(_errors(where, exc, set(key_fields))) from None
        data = model.model_dump(by_alias=True, exclude={"id", *key_fields})
        return model, self.extra(where, data) if self.extra is not None else data


def _unknown_fields(where: str, unknown: list[str], entry: Entry) -> str:
    first = unknown[0]
    hint = ""
    if first in ("id", "name", "hostname", "template_id", "group_id", "target_id", "scope"):
        hint = (
            f"; the key is {entry.key_means}, so {first} is not written in the entry (an "
            "export of an earlier version was keyed by ids: export again to get the new "
            "shape, see docs/concepts.md#configuration-as-code)"
        )
    return f"{where}.{first}: unknown field{hint}; the fields are {', '.join(sorted(entry.body))}"


def _errors(where: str, exc: ValidationError, key_fields: set[str]) -> str:
    messages = []
    for error in exc.errors():
        loc = error["loc"]
        if loc and loc[0] in key_fields:
            path = f"{where} (its key)"
        else:
            path = where + "".join(f".{p}" if isinstance(p, str) else f"[{p}]" for p in loc)
        messages.append(f"{path}: {validation_message(error)}")
    return "; ".join(messages)


def _exporters(where: str, data: Fields) -> Fields:
    out = []
    for index, item in enumerate(data["exporters"]):
        port = item["port"]
        if port is None:
            port = EXPORTER_DEFAULT_PORTS.get(item["type"])
            if port is None:
                raise Invalid(f"{where}.exporters[{index}].port: a custom exporter needs a port")
        out.append({**item, "port": port})
    return {**data, "exporters": sorted(out, key=lambda e: int(e["port"]))}


def _template_parameters(where: str, data: Fields) -> Fields:
    """A template as the server stores it: declared parameters, inferred for the rest."""
    return {**data, "parameters": infer_parameters(data["default_config"], data["parameters"])}


def _rule_fields(key: str) -> Fields:
    parts = split_rule_key(key)
    return {"template_id": parts.template, "group_id": parts.group_id}


def _policy_fields(key: str) -> Fields:
    parts = split_policy_key(key)
    return {
        "template_id": parts.template,
        "scope": parts.scope,
        "group_id": parts.subject if parts.scope == "group" else None,
        "target_id": parts.subject if parts.scope == "target" else None,
    }


def _group_fields(key: str) -> Fields:
    if not is_valid_id(key) or key == GLOBAL:
        raise Invalid(
            f"groups: {key!r} is not a group id: lowercase letters, digits, '.', '_' and '-', "
            f"starting with a letter or digit, and not {GLOBAL!r} (rules name it)"
        )
    return {"id": key}


_ENTRIES: Mapping[str, Entry] = {
    "groups": Entry(
        GroupCreate, _group_fields, frozenset({"name", "description", "labels"}), "the group id"
    ),
    "targets": Entry(
        TargetCreate,
        lambda key: {"hostname": key},
        frozenset({"ip_address", "group_ids", "labels", "status", "exporters"}),
        "the hostname",
        _exporters,
    ),
    "alert_templates": Entry(
        AlertTemplateCreate,
        lambda key: {"name": key},
        frozenset(AlertTemplateCreate.model_fields) - {"id", "name"},
        "the template's name",
        _template_parameters,
    ),
    "alert_rules": Entry(
        AlertRuleCreate,
        _rule_fields,
        frozenset({"config", "enabled", "labels", "annotations"}),
        "<template name>@<group id> or <template name>@global, e.g. HighCPUUsage@prod",
    ),
    "script_templates": Entry(
        ScriptTemplateCreate,
        lambda key: {"name": key},
        frozenset(ScriptTemplateCreate.model_fields) - {"id", "name"},
        "the script template's name",
    ),
    "script_policies": Entry(
        ScriptPolicyCreate,
        _policy_fields,
        frozenset({"config", "priority", "is_active"}),
        "<script template name>@global, @group:<group id> or @target:<hostname>, e.g. "
        "mount-check@group:prod",
    ),
    "notification_channels": Entry(
        ChannelCreate,
        lambda key: {"name": key},
        frozenset({"type", "settings", "secret", "has_secret"}),  # secrets: _secret_spec
        "the channel's name",
    ),
    "notification_routes": Entry(
        RouteCreate,
        lambda key: {"name": key},
        frozenset(
            {
                "matchers",
                "receiver",
                "group_by",
                "group_wait",
                "group_interval",
                "repeat_interval",
                "continue",
                "position",
            }
        ),
        "the route's name",
    ),
}


def body_fields(section: str) -> frozenset[str]:
    """The fields an entry of ``section`` may have (besides its key)."""
    return _ENTRIES[section].body


def _normalise(section: str, key: str, body: Fields) -> tuple[str, Fields]:
    """The entry's key as the server keeps it and its normalised fields."""
    body = dict(body)
    secret = None
    if section == "notification_channels":
        secret = _secret_spec(entry_path(section, key), body)
    model, data = _ENTRIES[section].fields(section, key, body)
    if section == "notification_channels":
        data.pop("secret", None)
        data["secret"] = secret
    if isinstance(model, TargetCreate):
        key = model.hostname  # hostnames are kept in lowercase; the key is too
    return key, data


# ---- the document ------------------------------------------------------------------------


def _key(section: str, raw: object) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)  # YAML reads an unquoted 123 as a number
    if not isinstance(raw, str) or not raw:
        raise Invalid(f"{section}: {raw!r} is not a key; keys are names (strings)")
    return raw


def _section(name: str, section: object) -> dict[str, Fields]:
    if not isinstance(section, dict):
        raise Invalid(f"{name} must be a mapping from each entry's key to its fields")
    entities: dict[str, Fields] = {}
    for raw, body in section.items():
        key = _key(name, raw)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise Invalid(f"{entry_path(name, key)} must be a mapping of fields")
        normalised, data = _normalise(name, key, body)
        if normalised in entities:
            raise Invalid(f"{entry_path(name, key)}: {name} has {normalised!r} twice")
        entities[normalised] = data
    return dict(sorted(entities.items()))


def parse(document: object) -> Desired:
    """Validate the document's shape and every entry; return normalised sections."""
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
    return {name: _section(name, document.get(name) or {}) for name in SECTIONS}


def references(desired: Desired) -> list[tuple[str, str, str, str]]:
    """Every reference an entry makes: (section, key, referred section, referred key)."""
    found: list[tuple[str, str, str, str]] = []
    for key, data in desired["targets"].items():
        found += [("targets", key, "groups", group_id) for group_id in data["group_ids"]]
    for key in desired["alert_rules"]:
        rule = split_rule_key(key)
        found.append(("alert_rules", key, "alert_templates", rule.template))
        if rule.group_id is not None:
            found.append(("alert_rules", key, "groups", rule.group_id))
    for key in desired["script_policies"]:
        policy = split_policy_key(key)
        found.append(("script_policies", key, "script_templates", policy.template))
        if policy.subject is not None:
            section = "groups" if policy.scope == "group" else "targets"
            found.append(("script_policies", key, section, policy.subject))
    for key, data in desired["notification_routes"].items():
        found.append(("notification_routes", key, "notification_channels", data["receiver"]))
    return found


KINDS: Final[Mapping[str, str]] = {
    "groups": "group",
    "targets": "target",
    "alert_templates": "alert template",
    "script_templates": "script template",
    "notification_channels": "notification channel",
}


def check_references(desired: Desired, existing: Mapping[str, Sequence[str]]) -> None:
    """Refuse a reference to an entry neither the document nor the server has."""
    for section, key, target, name in references(desired):
        if name in desired[target] or name in existing[target]:
            continue
        raise Invalid(
            f"{entry_path(section, key)}: unknown {KINDS[target]} {name!r}: "
            f"neither the document's {target} nor the server has it"
        )
