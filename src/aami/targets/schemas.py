"""Target and exporter API schemas."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from aami.common.ids import EntityId
from aami.common.schemas import Labels, PartialUpdate, ReadModel

ExporterType = Literal["node_exporter", "dcgm_exporter", "custom"]
TargetStatus = Literal["active", "maintenance", "inactive"]

_HOSTNAME = re.compile(
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


def _hostname(value: str) -> str:
    name = value.strip().lower()
    if len(name) > 253 or not _HOSTNAME.match(name):
        raise ValueError(
            f"{value!r} is not a valid hostname (RFC 1123 labels of letters, digits and '-', "
            "separated by dots)"
        )
    return name


Hostname = Annotated[str, AfterValidator(_hostname)]


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None


IpAddress = Annotated[str, AfterValidator(_ip)]
MetricsPath = Annotated[str, StringConstraints(max_length=255, pattern=r"^/[A-Za-z0-9._~/-]*$")]
Port = Annotated[int, Field(ge=1, le=65535)]
# A group is named by its id or its unique name.
GroupRef = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ExporterInline(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: ExporterType = "node_exporter"
    port: Port | None = Field(default=None, description="default: 9100 node, 9400 dcgm")
    metrics_path: MetricsPath = "/metrics"
    enabled: bool = True


class ExporterCreate(ExporterInline):
    id: EntityId | None = None
    target_id: str = Field(min_length=1, max_length=253, description="target id or hostname")


class ExporterUpdate(PartialUpdate):
    type: ExporterType | None = None
    port: Port | None = None
    metrics_path: MetricsPath | None = None
    enabled: bool | None = None


class ExporterRead(ReadModel):
    id: str
    target_id: str
    type: str
    port: int
    metrics_path: str
    enabled: bool
    created_at: datetime
    updated_at: datetime


class TargetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: EntityId | None = None
    hostname: Hostname
    ip_address: IpAddress
    group_ids: list[GroupRef] = Field(
        default_factory=list, description="ordered; the first is the primary group"
    )
    labels: Labels = Field(default_factory=dict)
    status: TargetStatus = "active"
    exporters: list[ExporterInline] = Field(default_factory=list)


class TargetUpdate(PartialUpdate):
    hostname: Hostname | None = None
    ip_address: IpAddress | None = None
    group_ids: list[GroupRef] | None = None
    labels: Labels | None = None
    status: TargetStatus | None = None


class TargetRead(ReadModel):
    id: str
    hostname: str
    ip_address: str
    group_ids: list[str]
    primary_group_id: str | None
    labels: dict[str, str]
    status: str
    last_seen: datetime | None
    exporters: list[ExporterRead]
    created_at: datetime
    updated_at: datetime
