"""FastAPI dependencies shared by every router: session, principal, pagination."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from aami.auth.tokens import Principal, matches
from aami.common.schemas import PageParams
from aami.config import Settings
from aami.errors import Forbidden, Unauthorized

__all__ = ["AdminDep", "PageDep", "PrincipalDep", "SessionDep", "SettingsDep"]

_bearer = HTTPBearer(auto_error=False, description="AAMI API token")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; the request commits, services only flush."""
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Authenticate the bearer token of the request."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    admin_token: str = request.app.state.settings.admin_token
    if matches(credentials.credentials, admin_token):
        return Principal(name="admin", role="admin")
    raise Unauthorized("invalid bearer token")


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
SessionDep = Annotated[Session, Depends(get_session)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
AdminDep = Annotated[Principal, Depends(require_admin)]
PageDep = Annotated[PageParams, Depends(get_page)]
