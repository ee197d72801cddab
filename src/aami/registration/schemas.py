"""Bootstrap token and registration schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from aami.common.ids import EntityId
from aami.common.schemas import Labels, ReadModel
from aami.targets.schemas import Hostname, IpAddress

TokenName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
]


class BootstrapTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: EntityId | None = None
    name: TokenName
    max_uses: int | None = Field(default=None, ge=1, description="none = unlimited")
    expires_at: datetime | None = None
    group_id: str | None = Field(default=None, description="group id or name for new nodes")
    labels: Labels = Field(default_factory=dict)


class BootstrapTokenRead(ReadModel):
    id: str
    name: str
    max_uses: int | None
    uses: int
    expires_at: datetime | None
    group_id: str | None
    labels: dict[str, str]
    created_at: datetime
    last_used_at: datetime | None


class BootstrapTokenCreated(BootstrapTokenRead):
    token: str = Field(description="shown once; only its hash is stored")


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hostname: Hostname
    ip_address: IpAddress
    labels: Labels = Field(default_factory=dict)
    node_exporter_port: int = Field(default=9100, ge=1, le=65535)


class RegisterResponse(BaseModel):
    target_id: str
    hostname: str
    group_ids: list[str]
    node_token: str = Field(description="lets this node read its own checks; shown once")
