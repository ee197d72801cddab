"""What the Prometheus API returns: service discovery, the rule files it generates, the
rules that apply to a target, a preview, and the publishing status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from aami.alerts.schemas import Annotations, Config, ConfigPatch, RenderedRuleRead
from aami.common.schemas import Labels
from aami.prometheus.rule_files import RuleFileInfo
from aami.publishing.schemas import PublisherRole, PublishRead, ScopeSyncRead

__all__ = [
    "EffectiveRuleRead",
    "EffectiveRules",
    "PrometheusStatus",
    "RuleFileRead",
    "RulePreviewRead",
    "SdTargetGroup",
]


class SdTargetGroup(BaseModel):
    """One entry of ``GET /api/v1/sd/prometheus`` (Prometheus ``http_sd_configs``): one
    enabled exporter of a target."""

    targets: list[str] = Field(description="one `host:port`", examples=[["10.0.0.1:9100"]])
    labels: dict[str, str] = Field(
        description="instance, target_id, exporter_type; group, group_id and groups for a "
        "target in a group; __metrics_path__ when not /metrics; target_label_<name> per "
        "target label",
        examples=[{"instance": "gpu-node-01", "target_id": "gpu-node-01", "exporter_type": "node"}],
    )


class RuleFileRead(BaseModel):
    name: str
    group_id: str | None
    path: str
    rule_count: int
    sha256: str
    revision: int | None
    fingerprint: str | None
    last_published: datetime

    @classmethod
    def of(cls, info: RuleFileInfo) -> RuleFileRead:
        return cls(
            name=info.name,
            group_id=info.group_id,
            path=info.path,
            rule_count=info.rule_count,
            sha256=info.sha256,
            revision=info.revision,
            fingerprint=info.fingerprint,
            last_published=info.modified_at,
        )


class EffectiveRuleRead(BaseModel):
    """A rule that applies to a target, rendered: ``expr``, ``for`` and ``labels`` (and
    ``annotations`` when it has any); or, when it does not render, ``error``."""

    model_config = ConfigDict(populate_by_name=True)

    rule_id: str
    scope: Literal["group", "global"]
    alert: str
    expr: str | None = None
    for_: str | None = Field(default=None, alias="for", serialization_alias="for")
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    error: str | None = Field(default=None, description="why the rule does not render")


class EffectiveRules(BaseModel):
    """What ``GET /api/v1/prometheus/rules/effective/{target_id}`` returns."""

    target_id: str
    hostname: str
    group_id: str | None = Field(description="the target's primary group")
    rules: list[EffectiveRuleRead] = Field(description="its primary group's and the global ones")


class RulePreviewRead(BaseModel):
    """What ``GET /api/v1/prometheus/rules/preview`` returns."""

    valid: bool = Field(description="the rule renders")
    error: str | None = Field(description="why it does not")
    rule: RenderedRuleRead | None = Field(description="the rendered rule, when it renders")


class PrometheusStatus(BaseModel):
    """What ``GET /api/v1/prometheus/status`` returns: per rule group, the desired, written
    and loaded revisions, measured now, with the publisher's settings and state."""

    url: str
    reachable: bool
    ready: bool
    reload_enabled: bool
    validate_rules: bool
    rule_path: str
    in_sync: bool
    out_of_sync: list[str] = Field(description="the rule groups out of sync (`global`, ids)")
    publisher: PublisherRole = Field(description="this replica's role")
    holder: str = Field(description="the publisher lease's holder")
    epoch: int | None
    pending_changes: int
    consecutive_failures: int
    last_in_sync_at: str | None = Field(description="ISO 8601")
    seconds_since_in_sync: float | None
    last_error: str | None
    groups: dict[str, ScopeSyncRead] = Field(description="by rule group: `global` or group id")
    reload_pending: bool = Field(description="written, but Prometheus has not reloaded yet")
    last_publish: PublishRead | None


# ---- preview, backtest and template impact -----------------------------------------------

Ref = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class RuleDraftBody(BaseModel):
    """A rule being edited, not saved: its template, group and config."""

    model_config = ConfigDict(extra="forbid")

    template_id: Ref = Field(description="template id or name")
    group_id: Ref | None = Field(default=None, description="group id or name; none = global")
    config: Config = Field(default_factory=dict)
    labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)


Near = Annotated[int, Field(ge=0, le=50, description="nearest misses to list")]
Hours = Annotated[int, Field(ge=1, le=168, description="the last N hours (1\u2013168)")]
Step = Annotated[
    float | None,
    Field(
        default=None,
        ge=1,
        le=3600,
        description="seconds between points; default 15, raised so that a series has at "
        "most 11,000 points",
    ),
]


class RulePreviewBody(RuleDraftBody):
    near: Near = 5


class BacktestBody(BaseModel):
    """A backtest of a saved rule with a proposed config."""

    model_config = ConfigDict(extra="forbid")

    config: ConfigPatch = Field(default_factory=dict)
    hours: Hours = 24
    step: Step = None


class DraftBacktestBody(RuleDraftBody):
    """A backtest of a rule being edited: ``config`` is the proposed one."""

    hours: Hours = 24
    step: Step = None


class SeriesValueRead(BaseModel):
    labels: dict[str, str]
    value: float | None = Field(description="the value now; null for NaN")
    distance: float | None = Field(
        default=None, description="a near miss: how far the value is from firing"
    )


class ComparisonRead(BaseModel):
    lhs: str = Field(description="the left-hand side, as the parser prints it")
    op: str
    threshold: float


class EvaluationRead(BaseModel):
    """What Prometheus answers now for the rendered expression."""

    state: Literal["firing", "all_below", "no_such_metric", "unreachable", "query_error"]
    summary: str
    series_count: int = Field(description="series the selection (the comparison's lhs) returns")
    firing_count: int
    firing: list[SeriesValueRead] = Field(description="the series that would fire (first 50)")
    near_misses: list[SeriesValueRead] = Field(description="nearest to the threshold first")
    near_misses_available: bool
    near_misses_note: str | None = Field(description="why near misses are not available")
    comparison: ComparisonRead | None
    absent_metrics: list[str] = Field(description="metric names Prometheus has no series of")


class RuleCheckRead(BaseModel):
    """What the rule preview returns: the rule as it will be published and, when it
    renders, what Prometheus says of it now."""

    valid: bool = Field(description="the rule renders")
    scope: str
    error: str | None
    rule: RenderedRuleRead | None
    evaluation: EvaluationRead | None


class BacktestSeriesRead(BaseModel):
    labels: dict[str, str]
    episodes: int
    firing_seconds: float
    longest_seconds: float
    firing_at_end: bool


class BacktestRunRead(BaseModel):
    config: dict[str, Any]
    expr: str | None
    for_: str | None = Field(alias="for", serialization_alias="for")
    error: str | None
    episodes: int
    firing_seconds: float
    longest_seconds: float
    series_seen: int = Field(
        description="series for which the condition held at some point, fired or not"
    )
    series_fired: int
    series: list[BacktestSeriesRead] = Field(description="the series that fired (first 100)")

    model_config = ConfigDict(populate_by_name=True)


class BacktestRead(BaseModel):
    """The rule's current config and the proposed one over the same step grid."""

    start: datetime
    end: datetime
    hours: int
    step_seconds: float
    model: str = Field(description="how `for` is modelled on the grid")
    current_source: str = Field(description="`saved rule <id>` or `template defaults`")
    current: BacktestRunRead
    proposed: BacktestRunRead


class RuleImpactRead(BaseModel):
    rule_id: str
    group_id: str | None
    group_name: str | None
    enabled: bool
    before: RenderedRuleRead | None
    after: RenderedRuleRead | None
    before_error: str | None
    after_error: str | None
    changed: list[str] = Field(
        description="alert, expr, for, severity, labels, annotations; renders or breaks"
    )


class TemplateImpactRead(BaseModel):
    """What saving the change would do to every rule of the template."""

    template_id: str
    valid: bool = Field(description="the change would be accepted")
    error: str | None
    rules: list[RuleImpactRead]
