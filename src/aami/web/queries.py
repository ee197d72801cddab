"""Reads the UI needs that no service offers yet.

This is the one place the web layer reaches a repository: the publish history lives in
``RulePublishRepository`` and the only other reader is the API endpoint
(``prometheus/rules_endpoints.py``), with no service function between. When one is added
(``prometheus/service.py``), these two functions should call it instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from aami.prometheus.models import RulePublish
from aami.prometheus.repository import RulePublishRepository

__all__ = ["latest_publish", "publish_history"]


def publish_history(
    session: Session, *, offset: int, limit: int
) -> tuple[Sequence[RulePublish], int]:
    """Every publish, newest first, one page of them."""
    return RulePublishRepository(session).find(offset=offset, limit=limit)


def latest_publish(session: Session) -> RulePublish | None:
    """The most recent publish of any server replica."""
    return RulePublishRepository(session).latest()
