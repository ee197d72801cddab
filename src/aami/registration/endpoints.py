"""/api/v1/bootstrap-tokens, /api/v1/bootstrap/register (and its polls) and the admins'
/api/v1/registrations queue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response, status
from fastapi.responses import JSONResponse

from aami.api.deps import AdminDep, BearerDep, PageDep, SessionDep, SettingsDep
from aami.common.schemas import Page
from aami.registration import service
from aami.registration.addresses import client_address
from aami.registration.schemas import (
    BootstrapTokenCreate,
    BootstrapTokenCreated,
    BootstrapTokenRead,
    PendingRegistrationRead,
    RegisterRequest,
    RegisterResponse,
    RegistrationDecision,
    RegistrationQueued,
    RegistrationStatus,
)

tokens_router = APIRouter(prefix="/bootstrap-tokens", tags=["registration"])
register_router = APIRouter(prefix="/bootstrap", tags=["registration"])
registrations_router = APIRouter(prefix="/registrations", tags=["registration"])


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
    """Revoke a bootstrap token (and drop the registrations queued with it)."""
    service.delete(
        session, actor=principal.name, token=service.get_or_raise(session, token_id=token_id)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _poll_url(registration_id: str) -> str:
    return f"/api/v1/bootstrap/registrations/{registration_id}"


@register_router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=RegisterResponse,
    responses={
        202: {
            "model": RegistrationQueued,
            "description": "queued for an admin's approval: an existing hostname without its "
            "node_token, or an ip_address other than the request's source",
        }
    },
)
def register(
    body: RegisterRequest,
    request: Request,
    session: SessionDep,
    token: BearerDep,
    settings: SettingsDep,
) -> Any:
    """Register a new node with a bootstrap token; re-register one with its current
    ``node_token`` too. Anything else is queued (202) until an admin approves it."""
    source = client_address(
        request.client.host if request.client else None,
        request.headers.getlist("x-forwarded-for"),
        settings.trusted_proxies,
    )
    outcome = service.register(session, secret=token, data=body, source=source, settings=settings)
    if isinstance(outcome, RegisterResponse):
        return outcome
    registration = outcome.registration
    queued = RegistrationQueued(
        registration_id=registration.id,
        hostname=registration.hostname,
        reasons=list(registration.reasons),
        poll_url=_poll_url(registration.id),
        poll_token=outcome.poll_token,
        poll_interval_seconds=service.POLL_INTERVAL,
        expires_at=registration.expires_at,
    )
    return JSONResponse(
        queued.model_dump(mode="json"),
        status_code=status.HTTP_202_ACCEPTED,
        headers={
            "Location": queued.poll_url,
            "Retry-After": str(int(service.POLL_INTERVAL)),
        },
    )


@register_router.get("/registrations/{registration_id}", response_model=RegistrationStatus)
def poll_registration(
    registration_id: str, session: SessionDep, token: BearerDep
) -> RegistrationStatus:
    """A queued node's poll, with ``Authorization: Bearer <poll_token>``: ``pending``, or
    ``approved`` with its node token (shown once); 403 once rejected, 404 once expired."""
    return service.poll(session, registration_id=registration_id, secret=token)


@registrations_router.get("/pending", response_model=Page[PendingRegistrationRead])
def list_pending(session: SessionDep, _: AdminDep, page: PageDep) -> Page[PendingRegistrationRead]:
    """Registrations waiting for an admin, oldest first, with what each would change."""
    rows, total = service.list_pending(session, offset=page.offset, limit=page.limit)
    return Page.of(
        [service.read(session, r) for r in rows], page=page.page, limit=page.limit, total=total
    )


@registrations_router.get("/{registration_id}", response_model=PendingRegistrationRead)
def get_registration(
    registration_id: str, session: SessionDep, _: AdminDep
) -> PendingRegistrationRead:
    """One queued registration (pending, approved, collected or rejected) until it expires."""
    return service.read(
        session, service.get_registration_or_raise(session, registration_id=registration_id)
    )


@registrations_router.post("/{registration_id}/approve", response_model=PendingRegistrationRead)
def approve_registration(
    registration_id: str, session: SessionDep, principal: AdminDep, settings: SettingsDep
) -> PendingRegistrationRead:
    """Apply the registration; its node collects a new node token with its next poll."""
    registration = service.approve(
        session, actor=principal.name, registration_id=registration_id, settings=settings
    )
    return service.read(session, registration)


@registrations_router.post("/{registration_id}/reject", response_model=PendingRegistrationRead)
def reject_registration(
    registration_id: str,
    session: SessionDep,
    principal: AdminDep,
    body: Annotated[RegistrationDecision | None, Body()] = None,
) -> PendingRegistrationRead:
    """Discard the registration: nothing is applied; its node is told at its next poll."""
    registration = service.reject(
        session,
        actor=principal.name,
        registration_id=registration_id,
        reason=body.reason if body is not None else None,
    )
    return service.read(session, registration)
