"""FastAPI dependencies shared by every router: session, principal, pagination."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from aami.alertmanager.publisher import AlertmanagerPublisher
from aami.auth.tokens import NodeTokenCache, Principal, hash_token, matches
from aami.common.schemas import PageParams
from aami.config import Settings
from aami.db.session import RevisionCache
from aami.errors import Forbidden, Unauthorized
from aami.prometheus.publisher import RulePublisher
from aami.publishing.reconciler import Reconciler
from aami.registration.repository import NodeTokenRepository

__all__ = [
    "AdminDep",
    "AlertmanagerPublisherDep",
    "BearerDep",
    "PageDep",
    "PrincipalDep",
    "ReconcilerDep",
    "RulePublisherDep",
    "SdReaderDep",
    "SessionDep",
    "SettingsDep",
]

_bearer = HTTPBearer(auto_error=False, description="AAMI API token")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; it commits before the response is sent (so a client that
    reads right after a write sees it), services only flush."""
    session: Session = request.app.state.sessionmaker()
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
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    return credentials.credentials


def node_token_revision(app: Any) -> int:
    """The ``node_tokens`` counter as this replica knows it (blocking when it is stale)."""
    revisions: RevisionCache = app.state.revisions
    values = revisions.fresh()
    if values is None:
        values = revisions.read()
    return values.get("node_tokens", 0)


def principal_from_memory(app: Any, token: str, revision: int) -> Principal | None:
    """The admin token, or a node token checked at this ``node_tokens`` revision; None when
    the database must say."""
    settings: Settings = app.state.settings
    if matches(token, settings.admin_token or ""):
        return Principal(name="admin", role="admin")
    if settings.sd_token and matches(token, settings.sd_token):
        return Principal(name="prometheus-sd", role="sd")
    cache: NodeTokenCache = app.state.node_tokens
    target_id = cache.get(hash_token(token), revision)
    if target_id is not None:
        return Principal(name=f"node:{target_id}", role="node", target_id=target_id)
    return None


def principal_from_database(app: Any, session: Session, token: str, revision: int) -> Principal:
    """Look a node token up; 401 when it is nobody's. ``revision`` was read before."""
    token_hash = hash_token(token)
    target_id = NodeTokenRepository(session).target_for(token_hash)
    if target_id is None:
        raise Unauthorized("invalid bearer token")
    app.state.node_tokens.put(token_hash, target_id, revision)
    return Principal(name=f"node:{target_id}", role="node", target_id=target_id)


def get_principal(
    request: Request,
    token: Annotated[str, Depends(bearer_token)],
    session: Annotated[Session, Depends(get_session, scope="function")],
) -> Principal:
    """Authenticate the request: the admin token, or a node token (reads its own checks)."""
    revision = node_token_revision(request.app)
    return principal_from_memory(request.app, token, revision) or principal_from_database(
        request.app, session, token, revision
    )


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
BearerDep = Annotated[str, Depends(bearer_token)]
PageDep = Annotated[PageParams, Depends(get_page)]


def get_reconciler(request: Request) -> Reconciler:
    reconciler: Reconciler = request.app.state.reconciler
    return reconciler


def get_rule_publisher(request: Request) -> RulePublisher:
    publisher: RulePublisher = request.app.state.rule_publisher
    return publisher


def get_alertmanager_publisher(request: Request) -> AlertmanagerPublisher:
    publisher: AlertmanagerPublisher = request.app.state.alertmanager_publisher
    return publisher


ReconcilerDep = Annotated[Reconciler, Depends(get_reconciler)]
RulePublisherDep = Annotated[RulePublisher, Depends(get_rule_publisher)]
AlertmanagerPublisherDep = Annotated[AlertmanagerPublisher, Depends(get_alertmanager_publisher)]
