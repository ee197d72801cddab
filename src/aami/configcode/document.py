"""The configuration document: its format, its sections, the secret references it holds
instead of secrets, and parsing it into normalised fields per entity.

The document (``apiVersion: aami/v1``, ``kind: Configuration``) holds every group,
target (exporters inline), alert template and rule, script template and policy,
notification channel and route, each section a mapping from id to fields, sorted by id.
Timestamps, hashes, tokens, audit and publish history are not part of it, and neither
is any secret: a channel's secret is a reference, ``secret: {ref: "env:AAMI_SECRET_X"}``,
resolved from the server's environment on apply (unset: the channel keeps its secret).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from aami.alertmanager.models import NotificationChannel
from aami.alertmanager.schemas import ChannelCreate, RouteCreate
from aami.alerts.parameters import infer_parameters
from aami.alerts.schemas import AlertRuleCreate, AlertTemplateCreate
from aami.checks.schemas import ScriptPolicyCreate, ScriptTemplateCreate
from aami.common.ids import is_valid_id
from aami.errors import Invalid
from aami.groups.schemas import GroupCreate
from aami.targets.models import EXPORTER_DEFAULT_PORTS
from aami.targets.schemas import TargetCreate

__all__ = [
    "API_VERSION",
    "KEEP",
    "KIND",
    "SECTIONS",
    "Desired",
    "Fields",
    "Keep",
    "parse",
    "resolve_secret",
    "secret_ref",
]

API_VERSION = "aami/v1"
KIND = "Configuration"
SECRET_PREFIX = "AAMI_SECRET_"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

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

Fields = dict[str, Any]  # one entity's fields, as the document (or an export) has them
Desired = dict[str, dict[str, Fields]]  # section -> id -> normalised fields
Normaliser = Callable[[str, str, Fields], Fields]


# ---- secrets -----------------------------------------------------------------------------


def secret_ref(channel_name: str) -> str:
    """The environment reference an exported channel's secret gets."""
    return "env:" + SECRET_PREFIX + re.sub(r"[^A-Z0-9]", "_", channel_name.upper())


class Keep:
    """The channel keeps the secret it has."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = Keep()


def _secret_spec(channel_id: str, body: Fields) -> Fields | None:
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


def resolve_secret(
    channel_id: str, spec: Fields | None, current: NotificationChannel | None
) -> str | Keep | None:
    """The secret the channel must end with: a string, None, or KEEP (leave it)."""
    if spec is None:
        return None
    has_current = current is not None and bool(current.secret)
    if spec.get("keep"):
        if not has_current:
            raise Invalid(
                f"notification_channels.{channel_id}: has_secret is true but the channel has "
                "no secret on this server; give secret: {ref: ...}"
            )
        return KEEP
    name = str(spec["ref"]).partition(":")[2]
    value = os.environ.get(name)
    if value:
        return value
    if has_current:
        return KEEP
    raise Invalid(
        f"notification_channels.{channel_id}.secret: {name} is not set in the server's "
        "environment and the channel has no secret yet"
    )


# ---- normalising -------------------------------------------------------------------------


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'value'}: {error['msg']}"
        for error in exc.errors()
    )


def _validate(schema: type[BaseModel], kind: str, entity_id: str, data: Fields) -> BaseModel:
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise Invalid(f"{kind}.{entity_id}: {_errors(exc)}") from None


def _normalise_with(schema: type[BaseModel]) -> Normaliser:
    def normalise(kind: str, entity_id: str, body: Fields) -> Fields:
        model = _validate(schema, kind, entity_id, {**body, "id": entity_id})
        return model.model_dump(by_alias=True, exclude={"id"})

    return normalise


def _exporters(exporters: Sequence[Fields], where: str) -> list[Fields]:
    out = []
    for index, item in enumerate(exporters):
        port = item["port"]
        if port is None:
            port = EXPORTER_DEFAULT_PORTS.get(item["type"])
            if port is None:
                raise Invalid(f"{where}.exporters[{index}].port: a custom exporter needs a port")
        out.append({**item, "port": port})
    return sorted(out, key=lambda e: int(e["port"]))


def _normalise_target(kind: str, entity_id: str, body: Fields) -> Fields:
    model = _validate(TargetCreate, kind, entity_id, {**body, "id": entity_id})
    data = model.model_dump(exclude={"id"})
    data["exporters"] = _exporters(data["exporters"], f"{kind}.{entity_id}")
    return data


def _normalise_alert_template(kind: str, entity_id: str, body: Fields) -> Fields:
    """A template as the server stores it: declared parameters, inferred for the rest."""
    data = _normalise_with(AlertTemplateCreate)(kind, entity_id, body)
    data["parameters"] = infer_parameters(data["default_config"], data["parameters"])
    return data


def _normalise_channel(kind: str, entity_id: str, body: Fields) -> Fields:
    body = dict(body)
    secret = _secret_spec(entity_id, body)
    model = _validate(ChannelCreate, kind, entity_id, {**body, "id": entity_id})
    data = model.model_dump(exclude={"id", "secret"})
    data["secret"] = secret
    return data


_NORMALISERS: Mapping[str, Normaliser] = {
    "groups": _normalise_with(GroupCreate),
    "targets": _normalise_target,
    "alert_templates": _normalise_alert_template,
    "alert_rules": _normalise_with(AlertRuleCreate),
    "script_templates": _normalise_with(ScriptTemplateCreate),
    "script_policies": _normalise_with(ScriptPolicyCreate),
    "notification_channels": _normalise_channel,
    "notification_routes": _normalise_with(RouteCreate),
}


# ---- the document ------------------------------------------------------------------------


def parse(document: object) -> Desired:
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
    parsed: Desired = {}
    for name in SECTIONS:
        normalise = _NORMALISERS[name]
        section = document.get(name) or {}
        if not isinstance(section, dict):
            raise Invalid(f"{name} must be a mapping from id to fields")
        entities: dict[str, Fields] = {}
        for entity_id, body in sorted(section.items()):
            if not isinstance(entity_id, str) or not is_valid_id(entity_id):
                raise Invalid(f"{name}: {entity_id!r} is not a valid id")
            if not isinstance(body, dict):
                raise Invalid(f"{name}.{entity_id} must be a mapping of fields")
            if body.get("id", entity_id) != entity_id:
                raise Invalid(f"{name}.{entity_id}: id {body['id']!r} differs from its key")
            body = {k: v for k, v in body.items() if k != "id"}
            entities[entity_id] = normalise(name, entity_id, body)
        parsed[name] = entities
    return parsed
