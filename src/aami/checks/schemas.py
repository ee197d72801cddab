"""Script template, script policy and effective check schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from aami.common.ids import EntityId
from aami.common.schemas import LABEL_NAME, PartialUpdate, ReadModel

Language = Literal["bash", "sh", "python"]
Scope = Literal["global", "group", "target"]
CheckName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9_-]*$")
]
ScriptContent = Annotated[str, StringConstraints(min_length=1, max_length=256 * 1024)]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=253)]


def _config(value: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        if not LABEL_NAME.match(key):
            raise ValueError(f"config key {key!r} must match [a-zA-Z_][a-zA-Z0-9_]*")
        if not isinstance(item, str | int | float | bool):
            raise ValueError(f"config key {key!r}: only strings, numbers and booleans are allowed")
        if isinstance(item, str) and "\x00" in item:
            raise ValueError(f"config key {key!r}: NUL characters cannot be passed to a script")
    return value


def _config_patch(value: dict[str, Any]) -> dict[str, Any]:
    """A config change: like a config, and ``null`` removes a key (JSON merge patch)."""
    _config({key: item for key, item in value.items() if item is not None})
    return value


Config = Annotated[dict[str, Any], AfterValidator(_config)]
ConfigPatch = Annotated[
    dict[str, Any],
    AfterValidator(_config_patch),
    Field(description="only the keys given change; a key set to null is removed"),
]


class ScriptTemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: EntityId | None = None
    name: CheckName
    script_type: Annotated[str, StringConstraints(min_length=1, max_length=63)] = "custom"
    script_content: ScriptContent
    language: Language = "bash"
    default_config: Config = Field(default_factory=dict)
    version: Annotated[str, StringConstraints(min_length=1, max_length=63)] = "1.0.0"
    description: str = Field(default="", max_length=5000)
    timeout_seconds: int = Field(default=30, ge=1, le=3600)


class ScriptTemplateUpdate(PartialUpdate):
    name: CheckName | None = None
    script_type: Annotated[str, StringConstraints(min_length=1, max_length=63)] | None = None
    script_content: ScriptContent | None = None
    language: Language | None = None
    default_config: Config | None = None
    version: Annotated[str, StringConstraints(min_length=1, max_length=63)] | None = None
    description: str | None = Field(default=None, max_length=5000)
    timeout_seconds: int | None = Field(default=None, ge=1, le=3600)


class ScriptTemplateRead(ReadModel):
    id: str
    name: str
    script_type: str
    script_content: str
    language: str
    default_config: dict[str, Any]
    version: str
    description: str
    timeout_seconds: int
    hash: str
    created_at: datetime
    updated_at: datetime


class ScriptPolicyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: EntityId | None = None
    template_id: Ref = Field(description="script template id or name")
    scope: Scope
    group_id: Ref | None = Field(default=None, description="group id or name (scope group)")
    target_id: Ref | None = Field(default=None, description="target id or hostname (target)")
    config: Config = Field(default_factory=dict)
    priority: int = Field(default=100, ge=-1_000_000, le=1_000_000)
    is_active: bool = True


class ScriptPolicyUpdate(PartialUpdate):
    config: ConfigPatch | None = None
    priority: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    is_active: bool | None = None


class ScriptPolicyRead(ReadModel):
    id: str
    template_id: str
    template_name: str
    scope: str
    group_id: str | None
    target_id: str | None
    config: dict[str, Any]
    priority: int
    is_active: bool
    created_at: datetime
    updated_at: datetime


class CheckSignature(BaseModel):
    """An Ed25519 signature of a check (see ``aami.agent.signing`` for the signed bytes)."""

    key_id: str = Field(description="first 16 hex digits of sha256 of the raw public key")
    signature: str = Field(description="base64")


class EffectiveCheck(BaseModel):
    """What a node runs: the seed's shape plus ``timeout_seconds`` and ``signatures``."""

    name: str
    script_type: str
    script_content: str
    language: str
    config: dict[str, Any]
    version: str
    hash: str
    timeout_seconds: int
    signatures: list[CheckSignature] = Field(
        default_factory=list, description="one per signing key; the agent needs one it pinned"
    )


class SigningKeyRead(BaseModel):
    """A key the server signs checks with, endorsed by the others it signs with."""

    key_id: str
    public_key: str = Field(description="base64 of the raw 32-byte Ed25519 public key")
    endorsements: list[CheckSignature]


class SigningKeys(BaseModel):
    """What ``GET /api/v1/checks/signing-keys`` returns: current key first."""

    algorithm: Literal["ed25519"]
    keys: list[SigningKeyRead]


class PolicyDecision(BaseModel):
    """A policy that reaches a target: the one that decided a check, or one considered."""

    policy_id: str
    scope: Scope
    priority: int
    is_active: bool
    group_id: str | None
    target_id: str | None


class ConfigSource(BaseModel):
    """One config key of a check: its value and the layer it came from."""

    value: Any
    layer: Literal["template", "global", "group", "target"]
    policy_id: str | None = Field(description="the policy that set it; null for the template")
    group_id: str | None


class ExplainedCheck(BaseModel):
    """A check that reaches a target or group, on or off, and where each value came from."""

    name: str
    template_id: str
    enabled: bool
    decided_by: PolicyDecision = Field(description="the strongest policy: on when it is active")
    config: dict[str, ConfigSource] = Field(description="by config key, in the script's order")
    policies: list[PolicyDecision] = Field(description="every policy considered, strongest first")


class TargetChecksExplained(BaseModel):
    """What ``GET /api/v1/checks/target/{target_id}/explain`` returns."""

    target_id: str
    hostname: str
    group_ids: list[str]
    checks: list[ExplainedCheck]


class GroupChecksExplained(BaseModel):
    """What ``GET /api/v1/checks/group/{group_id}`` returns."""

    group_id: str
    checks: list[ExplainedCheck]
