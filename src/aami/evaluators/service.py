"""Evaluator verbs; raise the AAMI error family, flush but never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from aami.audit import service as audit
from aami.auth.tokens import Principal, generate_token, hash_token
from aami.db.base import utcnow
from aami.db.locking import lock_for_update
from aami.errors import Conflict, Forbidden, Invalid, NotFound
from aami.evaluators.models import LOCAL, Evaluator
from aami.evaluators.probe import Probe, probe
from aami.evaluators.repository import EvaluatorRepository
from aami.evaluators.rule_sets import RuleSet, RuleSetCache, rule_set
from aami.evaluators.schemas import (
    EvaluatorCreate,
    EvaluatorRead,
    EvaluatorReport,
    EvaluatorUpdate,
)
from aami.groups.repository import GroupRepository
from aami.prometheus.client import PrometheusClient

__all__ = [
    "Local",
    "create",
    "delete",
    "get_or_raise",
    "list_evaluators",
    "probe_evaluator",
    "read",
    "read_local",
    "report",
    "rotate_token",
    "served_rule_set",
    "update",
]

ENTITY = "evaluator"
TOKEN_PREFIX = "aami_ev"


def _snapshot(evaluator: Evaluator) -> dict[str, object]:
    return {
        "name": evaluator.name,
        "kind": evaluator.kind,
        "url": evaluator.url,
        "groups": evaluator.groups,
    }


def get_or_raise(session: Session, *, name: str) -> Evaluator:
    evaluator = EvaluatorRepository(session).get(name)
    if evaluator is None:
        if name == LOCAL:
            raise Invalid(
                f"{LOCAL!r} is AAMI's own Prometheus: it is published to directly "
                "(see GET /api/v1/prometheus/status), not through a rules sync"
            )
        raise NotFound.of(ENTITY, name)
    return evaluator


def list_evaluators(
    session: Session, *, offset: int, limit: int
) -> tuple[Sequence[Evaluator], int]:
    return EvaluatorRepository(session).find(offset=offset, limit=limit)


def _check_groups(session: Session, groups: list[str] | None) -> None:
    if not groups:
        if groups == []:
            raise Invalid("groups: list at least one group, or null for every group")
        return
    found = GroupRepository(session).get_many_by_ref(groups)
    missing = [g for g in groups if g not in found or found[g].id != g]
    if missing:
        raise Invalid(f"groups: no group with id {', '.join(repr(g) for g in missing[:10])}")


def create(session: Session, *, actor: str, data: EvaluatorCreate) -> tuple[Evaluator, str]:
    """A new evaluator and its token (the token is returned once, stored hashed)."""
    if data.name == LOCAL:
        raise Conflict(f"name {LOCAL!r} is AAMI's own Prometheus; choose another name")
    repo = EvaluatorRepository(session)
    if repo.get(data.name) is not None:
        raise Conflict(f"evaluator {data.name!r} already exists")
    _check_groups(session, data.groups)
    token = generate_token(TOKEN_PREFIX)
    evaluator = Evaluator(
        name=data.name,
        kind=data.kind,
        url=data.url,
        groups=data.groups,
        token_hash=hash_token(token),
    )
    repo.add(evaluator)
    audit.record(
        session,
        actor=actor,
        action="create",
        entity_type=ENTITY,
        entity_id=evaluator.name,
        after=_snapshot(evaluator),
    )
    return evaluator, token


def update(session: Session, *, actor: str, evaluator: Evaluator, data: EvaluatorUpdate) -> None:
    lock_for_update(session, evaluator)
    changes = data.changes()
    if "groups" in changes:
        _check_groups(session, changes["groups"])
    before = _snapshot(evaluator)
    for key, value in changes.items():
        setattr(evaluator, key, value)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="update",
        entity_type=ENTITY,
        entity_id=evaluator.name,
        before=before,
        after=_snapshot(evaluator),
    )


def delete(session: Session, *, actor: str, evaluator: Evaluator) -> None:
    before = _snapshot(evaluator)
    EvaluatorRepository(session).delete(evaluator)
    audit.record(
        session,
        actor=actor,
        action="delete",
        entity_type=ENTITY,
        entity_id=evaluator.name,
        before=before,
    )


def rotate_token(session: Session, *, actor: str, evaluator: Evaluator) -> str:
    """A new token for the evaluator; the old one stops working with this commit."""
    lock_for_update(session, evaluator)
    token = generate_token(TOKEN_PREFIX)
    evaluator.token_hash = hash_token(token)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="rotate_token",
        entity_type=ENTITY,
        entity_id=evaluator.name,
    )
    return token


def may_act_for(principal: Principal, name: str) -> None:
    """The admin, or the evaluator itself; any other token is refused."""
    if principal.role == "admin":
        return
    if principal.role == "evaluator" and principal.evaluator == name:
        return
    raise Forbidden(f"this token may not read or report for evaluator {name!r}")


def report(session: Session, *, evaluator: Evaluator, data: EvaluatorReport) -> None:
    """Record what the evaluator's rules sync confirmed it runs (and its error)."""
    evaluator.loaded_revision = data.loaded_revision
    evaluator.report_error = data.error
    evaluator.last_report_at = utcnow()
    session.flush()


def served_rule_set(session: Session, cache: RuleSetCache, evaluator: Evaluator) -> RuleSet:
    """The evaluator's rule set, or Conflict when a scope it needs does not render (the
    evaluators keep their last rules rather than lose that scope's)."""
    found = rule_set(session, cache, evaluator.groups)
    if found.errors:
        broken = "; ".join(f"{scope or 'global'}: {why}" for scope, why in found.errors)
        raise Conflict(
            f"the rule set cannot be rendered ({broken}); evaluators keep their last rules"
        )
    return found


PROBE_TIMEOUT = 5.0


def probe_evaluator(session: Session, cache: RuleSetCache, evaluator: Evaluator) -> Probe:
    """What the evaluator says it runs, against what it should (asked from here)."""
    wanted = rule_set(session, cache, evaluator.groups)
    client = PrometheusClient(evaluator.url, timeout=PROBE_TIMEOUT, retries=1)
    try:
        return probe(wanted, client)
    finally:
        client.close()


@dataclass(frozen=True, slots=True)
class Local:
    """What the reconciler measured of AAMI's own Prometheus (None: not known here)."""

    url: str
    in_sync: bool | None


def _stale(evaluator: Evaluator, now: datetime, stale_after: float) -> bool:
    last = evaluator.last_report_at
    return last is None or now - last > timedelta(seconds=stale_after)


def read(
    session: Session, cache: RuleSetCache, evaluator: Evaluator, *, stale_after: float
) -> EvaluatorRead:
    """The evaluator with its desired and loaded state, measured now."""
    wanted = rule_set(session, cache, evaluator.groups)
    stale = _stale(evaluator, utcnow(), stale_after)
    in_sync = (
        not stale
        and not wanted.errors
        and evaluator.report_error is None
        and evaluator.loaded_revision == wanted.revision
    )
    return EvaluatorRead(
        name=evaluator.name,
        kind=evaluator.kind,
        url=evaluator.url,
        groups=evaluator.groups,
        builtin=False,
        desired_revision=wanted.revision,
        loaded_revision=evaluator.loaded_revision,
        in_sync=in_sync,
        stale=stale,
        last_report_at=evaluator.last_report_at,
        report_error=evaluator.report_error,
        render_errors={scope or "global": why for scope, why in wanted.errors},
        rule_files=len(wanted.files),
        created_at=evaluator.created_at,
        updated_at=evaluator.updated_at,
    )


def read_local(session: Session, cache: RuleSetCache, local: Local) -> EvaluatorRead:
    """AAMI's own Prometheus as an evaluator of every group: the same files, its sync as
    the publisher measured it (from what Prometheus reports it loaded)."""
    wanted = rule_set(session, cache, None)
    return EvaluatorRead(
        name=LOCAL,
        kind="prometheus",
        url=local.url,
        groups=None,
        builtin=True,
        desired_revision=wanted.revision,
        loaded_revision=None,
        in_sync=local.in_sync,
        stale=False,
        last_report_at=None,
        report_error=None,
        render_errors={scope or "global": why for scope, why in wanted.errors},
        rule_files=len(wanted.files),
        created_at=None,
        updated_at=None,
    )
