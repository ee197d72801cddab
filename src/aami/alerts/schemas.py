"""Alert template and alert rule API schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from aami.alerts.rendering import ALERT_NAME, DURATION
from aami.common.ids import EntityId
from aami.common.schemas import LABEL_NAME, Labels, PartialUpdate, ReadModel

Severity = Literal["critical", "warning", "info"]
Scalar = str | int | float | bool
ParameterType = Literal["number", "integer", "duration", "enum", "label_value"]
ThresholdMode = Literal["per_group", "compact"]
THRESHOLD_MODE_DOC = (
    "per_group (default): one rule per group, alert named Template_Group; compact: one rule "
    "for the template, named as the template, comparing against the aami_threshold series "
    "AAMI serves, so a threshold change needs no Prometheus reload (422 when the query or "
    "the rules cannot be published that way, saying why)"
)


def _alert_name(value: str) -> str:
    if not ALERT_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid Prometheus alert name: letters, digits and '_', "
            "not starting with a digit"
        )
    return value


def _duration(value: str) -> str:
    if not value or not DURATION.match(value):
        raise ValueError(f"{value!r} is not a Prometheus duration such as '30s', '5m' or '1h30m'")
    return value


def _config(value: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        if not LABEL_NAME.match(key):
            raise ValueError(f"config key {key!r} must match [a-zA-Z_][a-zA-Z0-9_]*")
        if not isinstance(item, str | int | float | bool):
            raise ValueError(f"config key {key!r}: only strings, numbers and booleans are allowed")
    return value


def _config_patch(value: dict[str, Any]) -> dict[str, Any]:
    """A config change: like a config, and ``null`` removes a key (JSON merge patch)."""
    _config({key: item for key, item in value.items() if item is not None})
    return value


def _parameter_names(value: dict[str, TemplateParameter]) -> dict[str, TemplateParameter]:
    for key in value:
        if not LABEL_NAME.match(key):
            raise ValueError(f"parameter name {key!r} must match [a-zA-Z_][a-zA-Z0-9_]*")
    return value


def _annotations(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if not LABEL_NAME.match(key):
            raise ValueError(f"annotation name {key!r} must match [a-zA-Z_][a-zA-Z0-9_]*")
    return value


class TemplateParameter(BaseModel):
    """What one config key of a template takes. Bounds are inclusive; ``choices`` only for
    an enum."""

    model_config = ConfigDict(extra="forbid")

    type: ParameterType
    min: int | float | None = Field(default=None, description="number, integer: lowest value")
    max: int | float | None = Field(default=None, description="number, integer: highest value")
    unit: str = Field(default="", max_length=32, examples=["%", "°C", "bytes"])
    description: str = Field(default="", max_length=2000)
    choices: list[Scalar] | None = Field(
        default=None, max_length=100, description="enum: the values allowed"
    )


AlertName = Annotated[str, StringConstraints(max_length=200), AfterValidator(_alert_name)]
Duration = Annotated[str, StringConstraints(max_length=32), AfterValidator(_duration)]
Config = Annotated[dict[str, Any], AfterValidator(_config)]
ConfigPatch = Annotated[
    dict[str, Any],
    AfterValidator(_config_patch),
    Field(description="only the keys given change; a key set to null is removed"),
]
Parameters = Annotated[dict[str, TemplateParameter], AfterValidator(_parameter_names)]
Annotations = Annotated[dict[str, str], AfterValidator(_annotations)]
QueryTemplate = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class AlertTemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: EntityId | None = None
    name: AlertName
    description: str = Field(default="", max_length=5000)
    query_template: QueryTemplate
    default_config: Config = Field(default_factory=dict)
    parameters: Parameters | None = Field(
        default=None,
        description="by config key; keys of default_config left out are inferred from "
        "their default (number, duration, enum [true, false], label_value)",
    )
    severity: Severity = "warning"
    for_duration: Duration = "5m"
    labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)
    threshold_mode: ThresholdMode = Field(default="per_group", description=THRESHOLD_MODE_DOC)


class AlertTemplateUpdate(PartialUpdate):
    name: AlertName | None = None
    description: str | None = Field(default=None, max_length=5000)
    query_template: QueryTemplate | None = None
    default_config: Config | None = None
    parameters: Parameters | None = None
    severity: Severity | None = None
    for_duration: Duration | None = None
    labels: Labels | None = None
    annotations: Annotations | None = None
    threshold_mode: ThresholdMode | None = Field(default=None, description=THRESHOLD_MODE_DOC)


class AlertTemplateRead(ReadModel):
    id: str
    name: str
    description: str
    query_template: str
    default_config: dict[str, Any]
    parameters: dict[str, TemplateParameter]
    severity: str
    for_duration: str
    labels: dict[str, str]
    annotations: dict[str, str]
    threshold_mode: ThresholdMode = "per_group"
    created_at: datetime
    updated_at: datetime


class AlertRuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: EntityId | None = None
    template_id: Ref = Field(description="template id or name")
    group_id: Ref | None = Field(default=None, description="group id or name; none = global")
    config: Config = Field(default_factory=dict)
    enabled: bool = True
    labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)


class AlertRuleUpdate(PartialUpdate):
    nullable = frozenset({"group_id"})

    group_id: Ref | None = None
    config: ConfigPatch | None = None
    enabled: bool | None = None
    labels: Labels | None = None
    annotations: Annotations | None = None


class RenderedRuleRead(BaseModel):
    alert: str
    expr: str
    for_: str = Field(alias="for", serialization_alias="for")
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)

    model_config = ConfigDict(populate_by_name=True)


class AlertRuleRead(ReadModel):
    id: str
    template_id: str
    template_name: str
    group_id: str | None
    group_name: str | None
    scope: Literal["group", "global"]
    config: dict[str, Any]
    enabled: bool
    labels: dict[str, str]
    annotations: dict[str, str]
    rendered: RenderedRuleRead | None
    render_error: str | None = None
    created_at: datetime
    updated_at: datetime
