"""What the Prometheus API returns: service discovery, the rule files it generates, the
rules that apply to a target, a preview, and the publishing status."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aami.alerts.schemas import RenderedRuleRead
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
