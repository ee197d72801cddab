"""The API's view of publishing: history rows and the outcome of a requested pass."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["PublishOutcome", "PublishRead", "PublishScheduled", "PublisherRole", "ScopeSyncRead"]


class PublishRead(BaseModel):
    id: int | None
    target: str
    trigger: str
    actor: str
    holder: str
    epoch: int | None
    started_at: datetime
    finished_at: datetime | None
    files_written: list[str]
    files_removed: list[str]
    files_rejected: dict[str, str]
    rule_count: int
    validation: str
    reload: str
    result: str
    error: str | None
    count: int
    timings: dict[str, float]


class PublishOutcome(PublishRead):
    scopes: list[str] | None
    files_unchanged: int
    rule_counts: dict[str, int]
    validation_output: str
    confirmed: bool | None
    missing_groups: list[str]


class PublishScheduled(BaseModel):
    result: Literal["scheduled"] = "scheduled"
    target: str
    detail: str


PublisherRole = Literal["leader", "standby"]


class ScopeSyncRead(BaseModel):
    """One scope (a rule group, or the Alertmanager config), measured now: the desired
    revision (database), the written one (file) and the loaded one (the consumer)."""

    desired_revision: int | None = Field(description="null: nothing is wanted, no file")
    written_revision: int | None
    written_fingerprint: str | None
    written_intact: bool | None = Field(description="null when no file is written")
    loaded_revision: int | None
    loaded_fingerprint: str | None
    in_sync: bool
    error: str | None = Field(description="why it is out of sync, when that is known")
