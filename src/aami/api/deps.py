"""FastAPI dependencies shared by every router: the app's services, the session, the
principal (the one place a request is authenticated) and pagination."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from aami.alertmanager.publisher import AlertmanagerPublisher
from aami.api.state import AppServices, services
from aami.auth.tokens import Principal, hash_token, matches
from aami.common.schemas import PageParams
from aami.config import Settings
from aami.db.session import session_scope
from aami.errors import Forbidden, Unauthorized
from aami.evaluators.repository import EvaluatorRepository
from aami.prometheus.client import PrometheusClient
from aami.prometheus.publisher import RulePublisher
from aami.prometheus.sd import SdCache
from aami.publishing.reconciler import Reconciler
from aami.registration.repository import NodeTokenRepository

__all__ = [
    "AdminDep",
    "AlertmanagerPublisherDep",
    "BearerDep",
    "HistoryWriterDep",
    "PageDep",
    "PrincipalDep",
    "PrometheusDep",
    "ReconcilerDep",
    "RulePublisherDep",
    "SdCacheDep",
    "SdReaderDep",
    "ServicesDep",
    "SessionDep",
    "SettingsDep",
    "authenticate",
    "revision_counters",
]

_bearer = HTTPBearer(auto_error=False, description="AAMI API token")
_MISSING = "missing bearer token: send 'Authorization: Bearer <token>'"


def get_services(request: Request) -> AppServices:
    return services(request)


ServicesDep = Annotated[AppServices, Depends(get_services)]


def get_settings(request: Request) -> Settings:
    return services(request).settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; it commits before the response is sent (so a client that
    reads right after a write sees it), services only flush."""
    session = services(request).sessionmaker()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The bearer token of the request, or 401."""
    if credentials is None or not credentials.credentials.strip():
        raise Unauthorized(_MISSING)
    return credentials.credentials.strip()


async def revision_counters(app: AppServices) -> dict[str, int]:
    """The change counters as this replica knows them, read again (off the event loop)
    when they are stale."""
    values = app.revisions.fresh()
    if values is None:
        values = await run_in_threadpool(app.revisions.read)
    return values


def _from_memory(app: AppServices, token: str, revision: int) -> Principal | None:
    """The admin token, the service-discovery token, or a node token checked at this
    ``node_tokens`` revision; None when the database must say."""
    settings = app.settings
    if matches(token, settings.admin_token or ""):
        return Principal(name="admin", role="admin")
    if settings.sd_token and matches(token, settings.sd_token):
        return Principal(name="prometheus-sd", role="sd")
    if settings.history_token and matches(token, settings.history_token):
        return Principal(name="alertmanager-history", role="history")
    target_id = app.node_tokens.get(hash_token(token), revision)
    if target_id is not None:
        return Principal(name=f"node:{target_id}", role="node", target_id=target_id)
    return None


def _from_database(app: AppServices, token: str, revision: int) -> Principal:
    """Look a node token, then an evaluator token, up; 401 when it is nobody's.
    ``revision`` was read before, so a node token revoked meanwhile is cached under the
    old revision and never believed. Evaluator tokens are not cached: a rules sync asks
    once per long poll."""
    token_hash = hash_token(token)
    with session_scope(app.sessionmaker) as session:
        target_id = NodeTokenRepository(session).target_for(token_hash)
        evaluator = None if target_id else EvaluatorRepository(session).name_for_token(token_hash)
    if evaluator is not None:
        return Principal(name=f"evaluator:{evaluator}", role="evaluator", evaluator=evaluator)
    if target_id is None:
        raise Unauthorized("invalid bearer token")
    app.node_tokens.put(token_hash, target_id, revision)
    return Principal(name=f"node:{target_id}", role="node", target_id=target_id)


async def authenticate(app: AppServices, token: str, revision: int) -> Principal:
    """Who ``token`` is, at this ``node_tokens`` revision: from memory when it can be, from
    the database (in a worker thread) when not; 401 when nobody."""
    principal = _from_memory(app, token, revision)
    if principal is None:
        principal = await run_in_threadpool(_from_database, app, token, revision)
    return principal


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Authenticate the request: the admin token, the service-discovery token, or a node
    token (which reads its own checks). The one way every API route authenticates; every
    node's poll of its checks comes through here, so it adds no dependency layer of its own
    (the bearer header is read once, by ``HTTPBearer``)."""
    if credentials is None or not credentials.credentials.strip():
        raise Unauthorized(_MISSING)
    app = services(request)
    counters = await revision_counters(app)
    return await authenticate(app, credentials.credentials.strip(), counters.get("node_tokens", 0))


def require_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if principal.role != "admin":
        raise Forbidden("this token may not change or read the configuration")
    return principal


def get_page(
    page: Annotated[int, Query(ge=1, description="1-based page number")] = 1,
    limit: Annotated[int, Query(ge=1, le=1000, description="items per page")] = 50,
) -> PageParams:
    return PageParams(page=page, limit=limit)


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
AdminDep = Annotated[Principal, Depends(require_admin)]


def require_sd_reader(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """The admin token, or the read-only service-discovery token Prometheus uses."""
    if principal.role not in ("admin", "sd"):
        raise Forbidden("this token may not read service discovery")
    return principal


SdReaderDep = Annotated[Principal, Depends(require_sd_reader)]


def require_history_writer(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """The admin token, or the history token Alertmanager posts its webhook with."""
    if principal.role not in ("admin", "history"):
        raise Forbidden("this token may not post alert history")
    return principal


HistoryWriterDep = Annotated[Principal, Depends(require_history_writer)]
BearerDep = Annotated[str, Depends(bearer_token)]
PageDep = Annotated[PageParams, Depends(get_page)]


def get_reconciler(request: Request) -> Reconciler:
    return services(request).reconciler


def get_rule_publisher(request: Request) -> RulePublisher:
    return services(request).rule_publisher


def get_alertmanager_publisher(request: Request) -> AlertmanagerPublisher:
    return services(request).alertmanager_publisher


def get_prometheus(request: Request) -> PrometheusClient:
    return services(request).prometheus


def get_sd_cache(request: Request) -> SdCache:
    return services(request).sd_cache


ReconcilerDep = Annotated[Reconciler, Depends(get_reconciler)]
RulePublisherDep = Annotated[RulePublisher, Depends(get_rule_publisher)]
AlertmanagerPublisherDep = Annotated[AlertmanagerPublisher, Depends(get_alertmanager_publisher)]
PrometheusDep = Annotated[PrometheusClient, Depends(get_prometheus)]
SdCacheDep = Annotated[SdCache, Depends(get_sd_cache)]
