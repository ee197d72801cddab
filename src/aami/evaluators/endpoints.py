"""/api/v1/evaluators: the rule evaluators AAMI publishes to, and the routes their rules
sync uses (the rule set, long-polled; the report of what it loaded)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from aami.api.deps import AdminDep, PageDep, PrincipalDep, SessionDep
from aami.api.state import AppServices, services
from aami.common.http_cache import conditional_response, etag_matches
from aami.common.schemas import Page
from aami.db.session import session_scope
from aami.evaluators import service
from aami.evaluators.models import LOCAL, Evaluator
from aami.evaluators.rule_sets import RuleSet
from aami.evaluators.schemas import (
    EvaluatorCreate,
    EvaluatorCreated,
    EvaluatorLoaded,
    EvaluatorRead,
    EvaluatorReport,
    EvaluatorToken,
    EvaluatorUpdate,
    LoadedGroupRead,
    RuleSetRead,
)
from aami.publishing.types import Target

router = APIRouter(prefix="/evaluators", tags=["evaluators"])

MAX_WAIT = 60.0
POLL_INTERVAL = 0.5


def _read(app: AppServices, session: SessionDep, evaluator: Evaluator) -> EvaluatorRead:
    return service.read(
        session, app.rule_sets, evaluator, stale_after=app.settings.evaluator_stale_after
    )


def _local(app: AppServices, session: SessionDep) -> EvaluatorRead:
    reconciler = app.reconciler
    state = reconciler.states.get(Target.PROMETHEUS)
    known = reconciler.is_leader and state is not None and state.sync is not None
    local = service.Local(
        url=app.settings.prometheus_url, in_sync=state.in_sync if known and state else None
    )
    return service.read_local(session, app.rule_sets, local)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=EvaluatorCreated)
def create_evaluator(
    body: EvaluatorCreate, request: Request, session: SessionDep, principal: AdminDep
) -> EvaluatorCreated:
    """Declare an evaluator; its token is in the answer, this once."""
    evaluator, token = service.create(session, actor=principal.name, data=body)
    read = _read(services(request), session, evaluator)
    return EvaluatorCreated(**read.model_dump(), token=token)


@router.get("", response_model=Page[EvaluatorRead])
def list_evaluators(
    request: Request, session: SessionDep, _: AdminDep, page: PageDep
) -> Page[EvaluatorRead]:
    """Every evaluator, AAMI's own Prometheus (``local``) first, with what each should
    run, what it reported it runs, and whether that is in sync."""
    app = services(request)
    # ``local`` is the first item of the list: page 1 holds it and limit - 1 others.
    first = page.offset == 0
    rows, total = service.list_evaluators(
        session,
        offset=0 if first else page.offset - 1,
        limit=page.limit - 1 if first else page.limit,
    )
    items = [_read(app, session, row) for row in rows]
    if first:
        items.insert(0, _local(app, session))
    return Page.of(items, page=page.page, limit=page.limit, total=total + 1)


@router.get("/{name}", response_model=EvaluatorRead)
def get_evaluator(name: str, request: Request, session: SessionDep, _: AdminDep) -> EvaluatorRead:
    app = services(request)
    if name == LOCAL:
        return _local(app, session)
    return _read(app, session, service.get_or_raise(session, name=name))


@router.put("/{name}", response_model=EvaluatorRead)
def update_evaluator(
    name: str, body: EvaluatorUpdate, request: Request, session: SessionDep, principal: AdminDep
) -> EvaluatorRead:
    """Change the fields sent; the others stay."""
    evaluator = service.get_or_raise(session, name=name)
    service.update(session, actor=principal.name, evaluator=evaluator, data=body)
    return _read(services(request), session, evaluator)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_evaluator(name: str, session: SessionDep, principal: AdminDep) -> Response:
    """Forget the evaluator; its token stops working. Its rules stay where its sync put
    them until someone removes them."""
    service.delete(
        session, actor=principal.name, evaluator=service.get_or_raise(session, name=name)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{name}/token", response_model=EvaluatorToken)
def rotate_token(name: str, session: SessionDep, principal: AdminDep) -> EvaluatorToken:
    """A new token; the old one stops working."""
    evaluator = service.get_or_raise(session, name=name)
    token = service.rotate_token(session, actor=principal.name, evaluator=evaluator)
    return EvaluatorToken(name=evaluator.name, token=token)


def _current(app: AppServices, name: str) -> tuple[RuleSet, str]:
    """The evaluator's rule set now, and its kind."""
    with session_scope(app.sessionmaker) as session:
        evaluator = service.get_or_raise(session, name=name)
        return service.served_rule_set(session, app.rule_sets, evaluator), evaluator.kind


@router.get("/{name}/loaded", response_model=EvaluatorLoaded)
def evaluator_loaded(
    name: str, request: Request, session: SessionDep, _: AdminDep
) -> EvaluatorLoaded:
    """Ask the evaluator itself (its URL's ``/api/v1/rules``) which AAMI rule groups it runs,
    and compare their stamps with the desired ones: AAMI's own measurement, beside what
    its rules sync reports."""
    app = services(request)
    evaluator = service.get_or_raise(session, name=name)
    found = service.probe_evaluator(session, app.rule_sets, evaluator)
    return EvaluatorLoaded(
        name=evaluator.name,
        url=evaluator.url,
        reachable=found.reachable,
        error=found.error,
        in_sync=found.in_sync,
        groups=[LoadedGroupRead.model_validate(asdict(group)) for group in found.groups],
    )


@router.get(
    "/{name}/rules",
    responses={
        200: {"model": RuleSetRead, "description": "the evaluator's rule files"},
        304: {"description": "unchanged (after waiting up to `wait` seconds)"},
    },
)
async def evaluator_rules(
    name: str,
    request: Request,
    principal: PrincipalDep,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT,
            description="with If-None-Match naming the current set: hold the request until "
            "the set changes or this many seconds pass (then 304)",
        ),
    ] = 0,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The evaluator's rule set: every file it must have, nothing else (its token, or the
    admin token)."""
    service.may_act_for(principal, name)
    app = services(request)
    deadline = time.monotonic() + wait
    while True:
        current, kind = await run_in_threadpool(_current, app, name)
        remaining = deadline - time.monotonic()
        if not etag_matches(if_none_match, current.etag) or remaining <= 0:
            break
        if await request.is_disconnected():
            return Response(status_code=304, headers={"ETag": current.etag})
        await asyncio.sleep(min(POLL_INTERVAL, remaining))
    if etag_matches(if_none_match, current.etag):
        return conditional_response(b"", current.etag, if_none_match)
    return conditional_response(current.body(name, kind), current.etag, if_none_match)


@router.post("/{name}/status", response_model=EvaluatorRead)
def report_status(
    name: str,
    body: EvaluatorReport,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> EvaluatorRead:
    """What the evaluator was confirmed to run (its token, or the admin token)."""
    service.may_act_for(principal, name)
    evaluator = service.get_or_raise(session, name=name)
    service.report(session, evaluator=evaluator, data=body)
    return _read(services(request), session, evaluator)
