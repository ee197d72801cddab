"""Evaluator API schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from aami.common.ids import EntityId
from aami.common.schemas import PartialUpdate

__all__ = [
    "EvaluatorCreate",
    "EvaluatorCreated",
    "EvaluatorLoaded",
    "EvaluatorRead",
    "EvaluatorReport",
    "EvaluatorToken",
    "EvaluatorUpdate",
    "LoadedGroupRead",
    "RuleFileOut",
    "RuleSetRead",
]

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
EvaluatorName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Kind = Literal["prometheus", "vmalert"]
Revision = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
GroupList = Annotated[list[EntityId], Field(max_length=10_000)]


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must not carry a query, a fragment or credentials")
    return value.rstrip("/")


def _unique(groups: list[str] | None) -> list[str] | None:
    if groups is None:
        return None
    seen = set()
    for group in groups:
        if group in seen:
            raise ValueError(f"group {group!r} is listed twice")
        seen.add(group)
    return groups


class EvaluatorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: EvaluatorName = Field(description="lowercase letters, digits and '-'")
    kind: Kind = "prometheus"
    url: str = Field(max_length=500, description="where the evaluator answers (its API)")
    groups: GroupList | None = Field(
        default=None, description="the group ids it evaluates; null: every group"
    )

    _url = field_validator("url")(_check_url)
    _groups = field_validator("groups")(_unique)


class EvaluatorUpdate(PartialUpdate):
    nullable = frozenset({"groups"})

    kind: Kind | None = None
    url: str | None = Field(default=None, max_length=500)
    groups: GroupList | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    _groups = field_validator("groups")(_unique)


class EvaluatorRead(BaseModel):
    name: str
    kind: str
    url: str
    groups: list[str] | None
    builtin: bool = Field(
        description="the Prometheus whose rule directory AAMI writes itself (read-only)"
    )
    desired_revision: str | None = Field(description="the rule set it should run")
    loaded_revision: str | None = Field(
        description="the rule set it last confirmed it runs (reported by its rules sync)"
    )
    in_sync: bool | None = Field(
        description="it runs the desired rules and reported recently; null: not known here"
    )
    stale: bool = Field(description="no report within evaluator_stale_after")
    last_report_at: datetime | None
    report_error: str | None
    render_errors: dict[str, str] = Field(
        description="scopes whose rules do not render: the set is not served until fixed"
    )
    rule_files: int
    created_at: datetime | None
    updated_at: datetime | None


class EvaluatorCreated(EvaluatorRead):
    token: str = Field(description="the evaluator's token, shown this once")


class EvaluatorToken(BaseModel):
    name: str
    token: str = Field(description="the new token, shown this once; the old one stops working")


class EvaluatorReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    loaded_revision: Revision | None = Field(
        description="the rule set the evaluator was confirmed to run; null: none yet"
    )
    error: str | None = Field(default=None, max_length=2000)


class LoadedGroupRead(BaseModel):
    group: str
    desired_revision: int | None = Field(description="null: the group should not be loaded")
    loaded_revision: int | None = Field(description="null: the evaluator does not run it")
    in_sync: bool


class EvaluatorLoaded(BaseModel):
    name: str
    url: str
    reachable: bool
    error: str | None
    in_sync: bool = Field(description="every AAMI rule group it runs carries the desired stamp")
    groups: list[LoadedGroupRead]


class RuleFileOut(BaseModel):
    name: str
    content: str
    sha256: str


class RuleSetRead(BaseModel):
    evaluator: str
    kind: str
    revision: str
    files: list[RuleFileOut]
