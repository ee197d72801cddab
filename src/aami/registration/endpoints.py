"""/api/v1/bootstrap-tokens and /api/v1/bootstrap/register."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from aami.api.deps import AdminDep, BearerDep, PageDep, SessionDep
from aami.common.schemas import Page
from aami.registration import service
from aami.registration.schemas import (
    BootstrapTokenCreate,
    BootstrapTokenCreated,
    BootstrapTokenRead,
    RegisterRequest,
    RegisterResponse,
)

tokens_router = APIRouter(prefix="/bootstrap-tokens", tags=["registration"])
register_router = APIRouter(prefix="/bootstrap", tags=["registration"])


@tokens_router.post("", status_code=status.HTTP_201_CREATED, response_model=BootstrapTokenCreated)
def create_token(
    body: BootstrapTokenCreate, session: SessionDep, principal: AdminDep
) -> BootstrapTokenCreated:
    """Create a bootstrap token; ``token`` is in this response only."""
    token, secret = service.create(session, actor=principal.name, data=body)
    return BootstrapTokenCreated(
        **BootstrapTokenRead.model_validate(token).model_dump(), token=secret
    )


@tokens_router.get("", response_model=Page[BootstrapTokenRead])
def list_tokens(session: SessionDep, _: AdminDep, page: PageDep) -> Page[BootstrapTokenRead]:
    """List bootstrap tokens (never their secrets)."""
    rows, total = service.list_tokens(session, offset=page.offset, limit=page.limit)
    return Page.of(
        [BootstrapTokenRead.model_validate(t) for t in rows],
        page=page.page,
        limit=page.limit,
        total=total,
    )


@tokens_router.get("/{token_id}", response_model=BootstrapTokenRead)
def get_token(token_id: str, session: SessionDep, _: AdminDep) -> BootstrapTokenRead:
    """Get a bootstrap token (not its secret)."""
    return BootstrapTokenRead.model_validate(service.get_or_raise(session, token_id=token_id))


@tokens_router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_token(token_id: str, session: SessionDep, principal: AdminDep) -> Response:
    """Revoke a bootstrap token."""
    service.delete(
        session, actor=principal.name, token=service.get_or_raise(session, token_id=token_id)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@register_router.post(
    "/register", status_code=status.HTTP_201_CREATED, response_model=RegisterResponse
)
def register(body: RegisterRequest, session: SessionDep, token: BearerDep) -> RegisterResponse:
    """Register (or re-register, by hostname) the calling node with a bootstrap token."""
    return service.register(session, secret=token, data=body)
