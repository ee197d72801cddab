"""Alerts, silences, notification channels and routes."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from aami.alerts.rendering import DURATION
from aami.common.ids import EntityId
from aami.common.schemas import LABEL_NAME, PartialUpdate, ReadModel
from aami.publishing.schemas import PublisherRole, PublishRead, ScopeSyncRead

ChannelType = Literal["webhook", "slack", "email", "pagerduty"]
ReceiverName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9_-]*$")
]


class Matcher(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    value: str = Field(max_length=1000)
    is_regex: bool = False
    is_equal: bool = True

    @field_validator("name")
    @classmethod
    def _label(cls, value: str) -> str:
        if not LABEL_NAME.match(value):
            raise ValueError(f"{value!r} is not a valid label name")
        return value

    def promql(self) -> str:
        """The matcher as Alertmanager's filter syntax, e.g. ``instance="gpu-node-01"``."""
        op = (
            ("=~" if self.is_regex else "=") if self.is_equal else ("!~" if self.is_regex else "!=")
        )
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{op}"{escaped}"'


class AlertRead(BaseModel):
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    state: str
    silenced: bool
    inhibited: bool
    silenced_by: list[str]
    inhibited_by: list[str]
    receivers: list[str]
    generator_url: str | None = None


class AlertGroupRead(BaseModel):
    """An alert group as Alertmanager routed and grouped it."""

    labels: dict[str, str] = Field(description="the group's labels (its route's group_by)")
    receiver: str | None
    alerts: list[AlertRead]


class SilenceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    matchers: list[Matcher] = Field(min_length=1)
    starts_at: datetime | None = Field(default=None, description="default: now")
    ends_at: datetime | None = Field(default=None, description="or give duration")
    duration: str | None = Field(default=None, description="e.g. 2h; instead of ends_at")
    created_by: str = Field(min_length=1, max_length=200)
    comment: str = Field(min_length=1, max_length=2000)
    expire_on_resolve: bool = False


class MaintenanceSilence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hours: float = Field(gt=0, le=24 * 365)
    comment: str = Field(min_length=1, max_length=2000)
    created_by: str = Field(min_length=1, max_length=200)
    expire_on_resolve: bool = False


class SilenceRead(BaseModel):
    id: str
    matchers: list[Matcher]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    state: str
    expire_on_resolve: bool = False


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: EntityId | None = None
    name: ReceiverName
    type: ChannelType
    settings: dict[str, Any] = Field(default_factory=dict)
    secret: str | None = Field(
        default=None,
        description="Slack webhook URL, PagerDuty routing key, SMTP password or "
        "webhook bearer token; write-only",
        max_length=4000,
    )


class ChannelUpdate(PartialUpdate):
    nullable = frozenset({"secret"})

    settings: dict[str, Any] | None = None
    secret: str | None = Field(default=None, max_length=4000)


class ChannelRead(ReadModel):
    id: str
    name: str
    type: str
    settings: dict[str, Any]
    has_secret: bool
    created_at: datetime
    updated_at: datetime


def _duration(value: str | None) -> str | None:
    if value is not None and (not value or not DURATION.match(value)):
        raise ValueError(f"{value!r} is not a duration such as '30s' or '4h'")
    return value


class RouteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: EntityId | None = None
    name: str = Field(min_length=1, max_length=100)
    matchers: list[Matcher] = Field(min_length=1)
    receiver: str = Field(min_length=1, description="channel id or name")
    group_by: list[str] | None = None
    group_wait: str | None = None
    group_interval: str | None = None
    repeat_interval: str | None = None
    continue_: bool = Field(default=False, alias="continue")
    position: int = Field(default=100, description="routes are tried in ascending position")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    _check = field_validator("group_wait", "group_interval", "repeat_interval")(_duration)


class RouteUpdate(PartialUpdate):
    nullable = frozenset({"group_by", "group_wait", "group_interval", "repeat_interval"})
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    matchers: list[Matcher] | None = Field(default=None, min_length=1)
    receiver: str | None = None
    group_by: list[str] | None = None
    group_wait: str | None = None
    group_interval: str | None = None
    repeat_interval: str | None = None
    continue_: bool | None = Field(default=None, alias="continue")
    position: int | None = None

    _check = field_validator("group_wait", "group_interval", "repeat_interval")(_duration)


class RouteRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: str
    name: str
    matchers: list[Matcher]
    receiver: str
    group_by: list[str] | None
    group_wait: str | None
    group_interval: str | None
    repeat_interval: str | None
    continue_: bool = Field(alias="continue")
    position: int
    created_at: datetime
    updated_at: datetime


class AlertmanagerCluster(BaseModel):
    status: str | None = Field(description="ready, settling or disabled")
    peers: list[str | None] = Field(description="the peers' names")


class AlertmanagerStatus(BaseModel):
    """What ``GET /api/v1/alertmanager/status`` returns. Reachable: ``ready``, ``version``,
    ``uptime``, ``cluster`` and ``config_path``; not: ``error``. Where AAMI manages the
    config (``managed``): ``config`` (desired, written and loaded, measured now), the same
    for each member of a cluster (``members``) and the publisher's state; where it does
    not, ``in_sync`` is null and nothing more."""

    url: str
    reachable: bool
    error: str | None = Field(default=None, description="why Alertmanager does not answer")
    ready: bool | None = None
    version: str | None = None
    uptime: str | None = None
    cluster: AlertmanagerCluster | None = None
    managed: bool = Field(description="AAMI writes Alertmanager's config file")
    config_path: str | None = None
    last_publish: PublishRead | None
    config: ScopeSyncRead | None = Field(
        default=None,
        description="a cluster's: loaded only when every member runs the same config, in "
        "sync only when every member is, the error names each member that is not",
    )
    members: dict[str, ScopeSyncRead] | None = Field(
        default=None, description="each Alertmanager of ALERTMANAGER_URL, by its URL"
    )
    in_sync: bool | None = Field(description="null where AAMI does not manage the config")
    out_of_sync: list[str] | None = None
    publisher: PublisherRole | None = Field(default=None, description="this replica's role")
    holder: str | None = Field(default=None, description="the publisher lease's holder")
    epoch: int | None = None
    pending_changes: int | None = None
    consecutive_failures: int | None = None
    last_in_sync_at: str | None = Field(default=None, description="ISO 8601")
    seconds_since_in_sync: float | None = None
    last_error: str | None = None


# A label value for the route tester: printable text (a newline or NUL cannot be typed into
# one line of the form, and amtool's matcher syntax has no escape for most of them).
_ROUTE_TEST_LABELS = 50
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RouteTestRequest(BaseModel):
    """The labels of an alert whose route is asked for."""

    model_config = ConfigDict(extra="forbid")

    labels: dict[str, str] = Field(
        default_factory=dict,
        max_length=_ROUTE_TEST_LABELS,
        description="the alert's labels; none = an alert with no labels (the default route)",
        examples=[{"alertname": "NodeDown", "severity": "critical", "group": "production"}],
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for name, label_value in value.items():
            if len(name) > 100 or not LABEL_NAME.match(name):
                raise ValueError(
                    f"{name[:100]!r} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, "
                    "at most 100 characters)"
                )
            if len(label_value) > 1000:
                raise ValueError(f"the value of {name} is longer than 1000 characters")
            if _CONTROL.search(label_value):
                raise ValueError(f"the value of {name} contains a control character")
        return value


class MatchedRoute(BaseModel):
    """One route the alert stops at, and the way down the routing tree to it."""

    receiver: str
    path: list[str] = Field(
        description="the routes from the root (``default-route``) to this one, each as its "
        'matchers, e.g. ``{severity="critical"}``'
    )
    managed_route: str | None = Field(
        default=None,
        description="the name of the AAMI-managed route on that path; none = the shipped "
        "config's routes",
    )


class RouteTestResult(BaseModel):
    """Where Alertmanager would send an alert with these labels (``amtool config routes
    test`` on the config AAMI renders)."""

    labels: dict[str, str]
    receivers: list[str] = Field(description="in the order Alertmanager notifies them")
    routes: list[MatchedRoute] = Field(description="the matched routes, one per receiver")


# ---- alert history (Alertmanager's webhook, version 4) ---------------------------------
# Bounds a real notification never reaches; anything past them is refused (422), so one
# hostile body cannot fill the table. The body as a whole is capped by the request guard.
_MAX_WEBHOOK_ALERTS = 1000
_MAX_LABELS = 100
_MAX_LABEL_VALUE = 2048
_MAX_ANNOTATION_VALUE = 16384
_FINGERPRINT = r"^[0-9a-f]{1,64}$"
AlertStatus = Literal["firing", "resolved"]


def _no_nul(value: str) -> str:
    # PostgreSQL stores no NUL character in text; Alertmanager never sends one.
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


def _label_map(value: dict[str, str], *, names: bool, longest: int) -> dict[str, str]:
    for name, text in value.items():
        if len(name) > 200 or "\x00" in name or (names and not LABEL_NAME.match(name)):
            raise ValueError(f"{name[:100]!r} is not a valid label name")
        if len(text) > longest:
            raise ValueError(f"the value of {name} is longer than {longest} characters")
        if "\x00" in text:
            raise ValueError(f"the value of {name} contains a NUL character")
    return value


def _labels(value: dict[str, str]) -> dict[str, str]:
    return _label_map(value, names=True, longest=_MAX_LABEL_VALUE)


def _annotations(value: dict[str, str]) -> dict[str, str]:
    return _label_map(value, names=False, longest=_MAX_ANNOTATION_VALUE)


class WebhookAlert(BaseModel):
    """One alert of a webhook notification, as Alertmanager's ``template.Alert`` writes it.
    A firing alert's ``endsAt`` is Go's zero time (``0001-01-01T00:00:00Z``): no end yet."""

    model_config = ConfigDict(populate_by_name=True)

    status: AlertStatus
    labels: dict[str, str] = Field(max_length=_MAX_LABELS)
    annotations: dict[str, str] = Field(default_factory=dict, max_length=_MAX_LABELS)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL", max_length=8192)
    fingerprint: str = Field(pattern=_FINGERPRINT)

    _check_labels = field_validator("labels")(_labels)
    _check_annotations = field_validator("annotations")(_annotations)
    _check_text = field_validator("generator_url")(_no_nul)

    @field_validator("starts_at")
    @classmethod
    def _started(cls, value: datetime) -> datetime:
        if value.year <= 1:
            raise ValueError("startsAt is Go's zero time: an alert that never started")
        return value

    @field_validator("ends_at")
    @classmethod
    def _ended(cls, value: datetime | None) -> datetime | None:
        return None if value is None or value.year <= 1 else value


class WebhookPayload(BaseModel):
    """Alertmanager's webhook notification (``webhook_config``, payload version 4).

    Fields Alertmanager may add in later versions are ignored; the ones below are checked.
    """

    model_config = ConfigDict(populate_by_name=True)

    version: Literal["4"]
    group_key: str = Field(alias="groupKey", max_length=16384)
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    status: AlertStatus
    receiver: str = Field(max_length=255)
    group_labels: dict[str, str] = Field(
        default_factory=dict, alias="groupLabels", max_length=_MAX_LABELS
    )
    common_labels: dict[str, str] = Field(
        default_factory=dict, alias="commonLabels", max_length=_MAX_LABELS
    )
    common_annotations: dict[str, str] = Field(
        default_factory=dict, alias="commonAnnotations", max_length=_MAX_LABELS
    )
    external_url: str = Field(default="", alias="externalURL", max_length=2000)
    alerts: list[WebhookAlert] = Field(max_length=_MAX_WEBHOOK_ALERTS)

    _check_labels = field_validator("group_labels", "common_labels")(_labels)
    _check_annotations = field_validator("common_annotations")(_annotations)
    _check_text = field_validator("group_key", "receiver", "external_url")(_no_nul)


class WebhookResult(BaseModel):
    """What a webhook notification added to the history."""

    received: int = Field(description="alerts in the notification")
    recorded: int = Field(description="transitions stored now")
    duplicates: int = Field(description="transitions already stored (a repeated notification)")


class AlertTransitionRead(ReadModel):
    """One transition of one alert: it started firing, or it resolved."""

    id: int
    fingerprint: str
    alertname: str
    status: AlertStatus
    at: datetime = Field(description="when it happened: starts_at (firing) or ends_at (resolved)")
    starts_at: datetime
    ends_at: datetime | None
    labels: dict[str, str]
    summary: str
    instance: str | None = Field(description="the target (its hostname), from the instance label")
    group_id: str | None
    severity: str | None
    receiver: str
    generator_url: str | None
    received_at: datetime


class AlertFlapsRead(BaseModel):
    """One alert (a fingerprint) over the window."""

    fingerprint: str
    alertname: str
    instance: str | None
    group_id: str | None
    severity: str | None
    fired: int = Field(description="times it started firing within the window")
    resolved: int = Field(description="times it resolved within the window")
    flaps: int = Field(description="times it fired again after resolving, within the window")
    last_status: AlertStatus
    last_change: datetime


class HistoryScopeRead(BaseModel):
    """A target's or a group's alerts over the window."""

    name: str = Field(description="the target's hostname or the group's id")
    alerts: int = Field(description="distinct alerts (fingerprints)")
    fired: int
    resolved: int
    flaps: int


class AlertHistorySummary(BaseModel):
    """Fired, resolved and flap counts over a window, per alert, per target, per group.

    A flap is an alert (the same fingerprint) starting to fire again after it resolved,
    the resolution and the new firing both within the window."""

    since: datetime
    window_seconds: float
    alerts: list[AlertFlapsRead] = Field(description="most flaps first, at most ``limit``")
    targets: list[HistoryScopeRead]
    groups: list[HistoryScopeRead]
