"""Group API schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from aami.common.ids import EntityId
from aami.common.schemas import Labels, PartialUpdate, ReadModel

GroupName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]


class GroupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: EntityId | None = Field(default=None, description="chosen id; generated when absent")
    name: GroupName
    description: str = Field(default="", max_length=2000)
    labels: Labels = Field(default_factory=dict)


class GroupUpdate(PartialUpdate):
    name: GroupName | None = None
    description: str | None = Field(default=None, max_length=2000)
    labels: Labels | None = None


class GroupRead(ReadModel):
    id: str
    name: str
    description: str
    labels: dict[str, str]
    created_at: datetime
    updated_at: datetime
