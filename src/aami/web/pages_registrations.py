"""Node registrations waiting for an admin: what each would change, approve or reject."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from aami.api.state import services
from aami.errors import AamiError
from aami.registration import service as registrations
from aami.web.common import ACTOR, DbDep, FormDep, LoginDep, UiRoute, page
from aami.web.paging import PAGE_SIZE, Pager, page_number

router = APIRouter(route_class=UiRoute)


def _registrations_page(
    request: Request,
    session: Session,
    *,
    done: str = "",
    error: str = "",
    status_code: int = 200,
) -> Response:
    number = page_number(request)
    rows, total = registrations.list_pending(
        session, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    return page(
        request,
        "registrations.html",
        status_code=status_code,
        nav="registrations",
        title="Registrations",
        pending=[registrations.read(session, r) for r in rows],
        pager=Pager(request, number, total),
        done=done,
        error=error,
    )


@router.get("/registrations")
def registrations_page(request: Request, _: LoginDep, session: DbDep) -> Response:
    return _registrations_page(request, session)


@router.post("/registrations/{registration_id}/approve")
def approve(request: Request, registration_id: str, _: FormDep, session: DbDep) -> Response:
    """Apply the registration; its node collects a new node token at its next poll."""
    try:
        registration = registrations.approve(
            session,
            actor=ACTOR,
            registration_id=registration_id,
            settings=services(request).settings,
        )
    except AamiError as exc:
        session.rollback()
        return _registrations_page(request, session, error=exc.detail, status_code=exc.status_code)
    return _registrations_page(
        request,
        session,
        done=f"Approved {registration.id}: {registration.hostname} is target "
        f"{registration.target_id}; the node collects its token at its next poll.",
    )


@router.post("/registrations/{registration_id}/reject")
def reject(request: Request, registration_id: str, form: FormDep, session: DbDep) -> Response:
    """Discard the registration; nothing changes, the node is told at its next poll."""
    reason = form.text("reason")[:500] or None
    try:
        registration = registrations.reject(
            session, actor=ACTOR, registration_id=registration_id, reason=reason
        )
    except AamiError as exc:
        session.rollback()
        return _registrations_page(request, session, error=exc.detail, status_code=exc.status_code)
    return _registrations_page(
        request, session, done=f"Rejected {registration.id} ({registration.hostname})."
    )
