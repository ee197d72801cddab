"""Bootstrap token, registration and registration-queue schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from aami.common.ids import EntityId
from aami.common.schemas import LABEL_NAME, Labels, ReadModel
from aami.targets.schemas import Hostname, IpAddress

TokenName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
]


def _label_name(value: str) -> str:
    if not LABEL_NAME.match(value) or value.startswith("__"):
        raise ValueError(
            f"{value!r} is not a valid Prometheus label name "
            "([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
        )
    return value


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


LabelName = Annotated[str, StringConstraints(max_length=63), AfterValidator(_label_name)]


class BootstrapTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: EntityId | None = None
    name: TokenName
    max_uses: int | None = Field(default=None, ge=1, description="none = unlimited")
    expires_at: datetime | None = None
    group_id: str | None = Field(default=None, description="group id or name for new nodes")
    labels: Labels = Field(default_factory=dict)
    allowed_labels: Annotated[list[LabelName], AfterValidator(_unique)] = Field(
        default_factory=list,
        max_length=100,
        description="label keys a node registering with this token may set itself; "
        "empty = none (the token's own labels still apply)",
    )


class BootstrapTokenRead(ReadModel):
    id: str
    name: str
    max_uses: int | None
    uses: int
    expires_at: datetime | None
    group_id: str | None
    labels: dict[str, str]
    allowed_labels: list[str]
    created_at: datetime
    last_used_at: datetime | None


class BootstrapTokenCreated(BootstrapTokenRead):
    token: str = Field(description="shown once; only its hash is stored")


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hostname: Hostname
    ip_address: IpAddress = Field(
        description="the address Prometheus scrapes; it must be the one the request comes "
        "from (or an admin approves it)"
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="node-supplied target labels: keys from the bootstrap token's "
        "allowed_labels, within the server's limits",
    )
    node_exporter_port: int = Field(default=9100, ge=1, le=65535)
    node_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="this node's current node token: re-registering an existing hostname "
        "without it waits for an admin's approval",
    )


class RegisterResponse(BaseModel):
    target_id: str
    hostname: str
    group_ids: list[str]
    node_token: str = Field(description="lets this node read its own checks; shown once")


class RegistrationQueued(BaseModel):
    """The 202 answer: the registration waits for an admin; poll ``poll_url`` with
    ``Authorization: Bearer <poll_token>``."""

    status: Literal["pending"] = "pending"
    registration_id: str
    hostname: str
    reasons: list[str] = Field(description="why an admin must approve it")
    poll_url: str
    poll_token: str = Field(description="shown once; authenticates the polls")
    poll_interval_seconds: float
    expires_at: datetime


class RegistrationStatus(BaseModel):
    """A poll's answer: still ``pending``, or ``approved`` with the node token (once)."""

    status: Literal["pending", "approved"]
    registration_id: str
    hostname: str
    expires_at: datetime
    reasons: list[str]
    target_id: str | None = None
    group_ids: list[str] | None = None
    node_token: str | None = Field(default=None, description="present once, when approved")


class TargetNow(BaseModel):
    """What the registration would change: the target as it is now."""

    id: str
    ip_address: str
    group_ids: list[str]
    labels: dict[str, str]


class PendingRegistrationRead(BaseModel):
    id: str
    status: Literal["pending", "approved", "collected", "rejected"]
    hostname: str
    ip_address: str = Field(description="the address the node claims")
    source_address: str | None = Field(description="the address the request came from")
    labels: dict[str, str] = Field(description="node-supplied labels it would set")
    node_exporter_port: int
    bootstrap_token_id: str
    bootstrap_token_name: str
    group_id: str | None = Field(description="the group the bootstrap token adds")
    token_labels: dict[str, str] = Field(description="the bootstrap token's own labels")
    target_id: str | None = Field(description="the target it changes; none = a new node")
    target: TargetNow | None = Field(description="that target as it is now")
    reasons: list[str]
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None


class RegistrationDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500, description="recorded and shown")


def snapshot(read: PendingRegistrationRead) -> dict[str, Any]:
    """The audit trail's view of a registration: no secret (only the poll token's hash is
    kept, and not shown), and no key the audit would mistake for one."""
    return {
        "status": read.status,
        "hostname": read.hostname,
        "ip_address": read.ip_address,
        "source_address": read.source_address,
        "labels": read.labels,
        "node_exporter_port": read.node_exporter_port,
        "bootstrap": read.bootstrap_token_name,
        "group_id": read.group_id,
        "target_id": read.target_id,
        "reasons": read.reasons,
        "expires_at": read.expires_at.isoformat(),
        "decided_by": read.decided_by,
        "decision_reason": read.decision_reason,
    }
