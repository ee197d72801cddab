"""What the configuration-as-code API returns: the document (``GET /config/export``) and
the result of a plan or an apply.

The document's entities are described as ``export`` writes them; its sections are
mappings from id to fields, sorted by id. The models forbid keys they do not know, so an
exported field they miss fails loudly rather than vanishing from the document.
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
    "GroupEntry",
    "PlanResult",
    "PublishSummary",
    "RouteEntry",
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
    hostname: str
    ip_address: str
    group_ids: list[str] = Field(description="the primary group first")
    labels: dict[str, str]
    status: str
    exporters: list[ExporterEntry] = Field(description="sorted by port")


class AlertTemplateEntry(_Entry):
    name: str
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


class AlertRuleEntry(_Entry):
    template_id: str
    group_id: str | None = Field(description="null: a global rule")
    config: dict[str, Any]
    enabled: bool
    labels: dict[str, str]
    annotations: dict[str, str]


class ScriptTemplateEntry(_Entry):
    name: str
    script_type: str
    script_content: str
    language: str
    default_config: dict[str, Any]
    version: str
    description: str
    timeout_seconds: int


class ScriptPolicyEntry(_Entry):
    template_id: str
    scope: Literal["global", "group", "target"]
    group_id: str | None
    target_id: str | None
    config: dict[str, Any]
    priority: int
    is_active: bool


class SecretRef(_Entry):
    """Never the secret itself: where the server reads it on apply."""

    ref: str = Field(examples=["env:AAMI_SECRET_OPS_SLACK"])


class ChannelEntry(_Entry):
    name: str
    type: str
    settings: dict[str, Any]
    secret: SecretRef | None = Field(default=None, description="absent: the channel has none")


class RouteEntry(_Entry):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    matchers: list[dict[str, Any]] = Field(description="name, value, is_regex, is_equal")
    receiver: str = Field(description="the channel's id")
    group_by: list[str] | None
    group_wait: str | None
    group_interval: str | None
    repeat_interval: str | None
    continue_: bool = Field(alias="continue", serialization_alias="continue")
    position: int


class ConfigDocument(_Entry):
    """The whole configuration (no secrets, no timestamps): each section maps an entity's
    id to its fields, sorted by id. ``POST /config/plan`` and ``/apply`` take it back."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    api_version: Literal["aami/v1"] = Field(alias="apiVersion", serialization_alias="apiVersion")
    kind: Literal["Configuration"]
    groups: dict[str, GroupEntry]
    targets: dict[str, TargetEntry]
    alert_templates: dict[str, AlertTemplateEntry]
    alert_rules: dict[str, AlertRuleEntry]
    script_templates: dict[str, ScriptTemplateEntry]
    script_policies: dict[str, ScriptPolicyEntry]
    notification_channels: dict[str, ChannelEntry]
    notification_routes: dict[str, RouteEntry]


# ---- plan and apply --------------------------------------------------------------------


class ChangeRead(BaseModel):
    """One entity the document changes."""

    kind: SectionName
    id: str
    action: Action
    fields: list[str] | None = Field(
        default=None, description="update and replace: the fields that change"
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
        description="by section: the ids kept although the document does not list them "
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
