"""What the configuration-as-code API returns: the document (``GET /config/export``) and
the result of a plan or an apply.

The document's entries are described as ``export`` writes them; its sections are
mappings from each entry's key (a name, never a generated id: see
``aami.configcode.document``) to its fields, sorted by key. The models forbid keys they do
not know, so an exported field they miss fails loudly rather than vanishing from the
document.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aami.configcode.planning import Action

__all__ = [
    "AlertRuleEntry",
    "AlertTemplateEntry",
    "ApplyResult",
    "ChangeRead",
    "ChannelEntry",
    "ConfigDocument",
    "ExporterEntry",
    "FieldChangeRead",
    "GroupEntry",
    "PlanResult",
    "PublishSummary",
    "RenderedRuleRead",
    "RouteEntry",
    "RuleEffectRead",
    "RuleFilesChanged",
    "ScriptPolicyEntry",
    "ScriptTemplateEntry",
    "SecretRef",
    "TargetEntry",
]

SectionName = Literal[
    "groups",
    "targets",
    "alert_templates",
    "alert_rules",
    "script_templates",
    "script_policies",
    "notification_channels",
    "notification_routes",
]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- the document ----------------------------------------------------------------------


class GroupEntry(_Entry):
    name: str
    description: str
    labels: dict[str, str]


class ExporterEntry(_Entry):
    type: str
    port: int
    metrics_path: str
    enabled: bool


class TargetEntry(_Entry):
    ip_address: str
    group_ids: list[str] = Field(description="group ids, the primary group first")
    labels: dict[str, str]
    status: str
    exporters: list[ExporterEntry] = Field(description="sorted by port")


class AlertTemplateEntry(_Entry):
    description: str
    query_template: str
    default_config: dict[str, Any]
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="by config key: type, min, max, unit, description, choices; left out, "
        "inferred from default_config",
    )
    severity: str
    for_duration: str
    labels: dict[str, str]
    annotations: dict[str, str]
    threshold_mode: str = Field(default="per_group", description="per_group or compact")


class AlertRuleEntry(_Entry):
    config: dict[str, Any]
    enabled: bool
    labels: dict[str, str]
    annotations: dict[str, str]


class ScriptTemplateEntry(_Entry):
    script_type: str
    script_content: str
    language: str
    default_config: dict[str, Any]
    version: str
    description: str
    timeout_seconds: int


class ScriptPolicyEntry(_Entry):
    config: dict[str, Any]
    priority: int
    is_active: bool


class SecretRef(_Entry):
    """Never the secret itself: where the server reads it on apply."""

    ref: str = Field(examples=["env:AAMI_SECRET_OPS_SLACK"])


class ChannelEntry(_Entry):
    type: str
    settings: dict[str, Any]
    secret: SecretRef | None = Field(default=None, description="absent: the channel has none")


class RouteEntry(_Entry):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    matchers: list[dict[str, Any]] = Field(description="name, value, is_regex, is_equal")
    receiver: str = Field(description="the channel's name")
    group_by: list[str] | None
    group_wait: str | None
    group_interval: str | None
    repeat_interval: str | None
    continue_: bool = Field(alias="continue", serialization_alias="continue")
    position: int


class ConfigDocument(_Entry):
    """The whole configuration (no secrets, no ids, no timestamps): each section maps an
    entry's key to its fields, sorted by key. ``POST /config/plan`` and ``/apply`` take it
    back."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    api_version: Literal["aami/v1"] = Field(alias="apiVersion", serialization_alias="apiVersion")
    kind: Literal["Configuration"]
    groups: dict[str, GroupEntry] = Field(description="by group id")
    targets: dict[str, TargetEntry] = Field(description="by hostname")
    alert_templates: dict[str, AlertTemplateEntry] = Field(description="by name")
    alert_rules: dict[str, AlertRuleEntry] = Field(
        description="by `<template name>@<group id>` or `<template name>@global`",
        examples=[{"HighCPUUsage@prod": {"config": {"threshold": 90}}}],
    )
    script_templates: dict[str, ScriptTemplateEntry] = Field(description="by name")
    script_policies: dict[str, ScriptPolicyEntry] = Field(
        description="by `<script template name>@global`, `@group:<group id>` or "
        "`@target:<hostname>`"
    )
    notification_channels: dict[str, ChannelEntry] = Field(description="by name")
    notification_routes: dict[str, RouteEntry] = Field(description="by name")


# ---- plan and apply --------------------------------------------------------------------


class FieldChangeRead(BaseModel):
    """One field of an entry that changes, old and new value; a key absent on one side was
    not set there (a config key added or removed)."""

    field: str = Field(examples=["config.threshold"], description="its path in the entry")
    old: Any = Field(default=None, description="absent: not set before")
    new: Any = Field(default=None, description="absent: not set after")


class RenderedRuleRead(BaseModel):
    """An alert rule as Prometheus gets it, or why it does not render."""

    model_config = ConfigDict(populate_by_name=True)

    enabled: bool = Field(description="false: not written to its rule file")
    alert: str | None = Field(default=None, examples=["HighCPUUsage_Production"])
    expr: str | None = Field(default=None, description="the rendered PromQL expression")
    for_: str | None = Field(default=None, alias="for", serialization_alias="for")
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    error: str | None = Field(default=None, description="why the rule does not render")


class RuleEffectRead(BaseModel):
    """An alert rule whose Prometheus rule the change alters."""

    rule: str = Field(examples=["HighCPUUsage@prod"], description="its key in alert_rules")
    rule_file: str = Field(examples=["group-prod.yml"])
    before: RenderedRuleRead | None = Field(description="null: the rule did not exist")
    after: RenderedRuleRead | None = Field(description="null: the rule is deleted")


class ChangeRead(BaseModel):
    """One entry the document changes."""

    kind: SectionName
    key: str = Field(description="the entry's key in its section", examples=["HighCPUUsage@prod"])
    action: Action
    fields: list[FieldChangeRead] | None = Field(
        default=None, description="update: each field that changes, old and new"
    )
    rules: list[RuleEffectRead] | None = Field(
        default=None,
        description="alert rules, templates and groups: each alert rule whose rendered "
        "Prometheus rule changes, before and after",
    )


class RuleFilesChanged(BaseModel):
    written: list[str]
    removed: list[str]


class PlanResult(BaseModel):
    """What applying the document changes (``POST /config/plan``) or changed (``/apply``)."""

    changed: bool
    prune: bool
    changes: list[ChangeRead]
    unchanged: dict[SectionName, int] = Field(description="by section: entities left as they are")
    not_in_document: dict[SectionName, list[str]] = Field(
        description="by section: the keys kept although the document does not list them "
        "(deleted with prune)"
    )
    rule_files: RuleFilesChanged


class PublishSummary(BaseModel):
    """The publish of the rule files the apply asked for: its outcome, or only ``result:
    scheduled`` when it was not done within ``wait``."""

    id: int | None = None
    result: str
    files_written: list[str] | None = None
    files_removed: list[str] | None = None
    validation: str | None = None
    reload: str | None = None
    error: str | None = None


class ApplyResult(PlanResult):
    publish: PublishSummary
