"""What the rule management API returns about the files it generates."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from aami.prometheus.rule_files import RuleFileInfo

__all__ = ["RuleFileRead"]


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
