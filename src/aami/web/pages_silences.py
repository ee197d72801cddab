"""Alertmanager's silences: listed, created for a target or a group (also from a row of
the alerts page), and expired."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from aami.errors import AamiError
from aami.web.alertmanager import connect
from aami.web.common import ACTOR, PREFIX, DbDep, FormDep, LoginDep, UiRoute, page, redirect
from aami.web.forms import FormData, validation_errors
from aami.web.pages_alerts import SILENCE_KINDS, alert_filters, alerts_page

router = APIRouter(route_class=UiRoute)


def _silences_page(
    request: Request,
    session: Session,
    *,
    error: str = "",
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    am = connect(request)
    found, problem = am.silences(session)
    order = {"active": 0, "pending": 1, "expired": 2}
    return page(
        request,
        "silences.html",
        status_code=status_code,
        nav="silences",
        title="Silences",
        silences=sorted(found, key=lambda s: (order.get(s.state, 3), str(s.ends_at))),
        problem=problem,
        error=error,
        values=values or {"kind": "target", "value": "", "hours": "2", "comment": ""},
        kinds=SILENCE_KINDS,
    )


@router.get("/silences")
def silence_list(request: Request, _: LoginDep, session: DbDep) -> Response:
    return _silences_page(request, session)


def _silence_values(form: FormData) -> dict[str, str]:
    kind = form.text("kind") or "target"
    return {
        "kind": kind,
        # A row of the alerts page offers both its target and its group.
        "value": form.text(f"{kind}_value") or form.text("value"),
        "hours": form.text("hours"),
        "comment": form.text("comment"),
    }


@router.post("/silences")
def silence_create(request: Request, form: FormDep, session: DbDep) -> Response:
    """Silence a target or a group for some hours; the service's guardrails may refuse."""
    values = _silence_values(form)
    from_alerts = form.text("from") == "alerts"

    def again(error: str, status_code: int) -> Response:
        if from_alerts:
            return alerts_page(
                request,
                session,
                filters=alert_filters(
                    form.text("f_group"), form.text("f_severity"), form.text("f_target")
                ),
                error=error,
                values=values,
                status_code=status_code,
            )
        return _silences_page(request, session, error=error, values=values, status_code=status_code)

    if values["kind"] not in SILENCE_KINDS:
        return again("kind: silence a target or a group", 422)
    if not values["value"]:
        return again(f"{values['kind']}: say which {values['kind']} to silence", 422)
    try:
        hours = float(values["hours"])
    except ValueError:
        return again(f"hours: {values['hours']!r} is not a number of hours", 422)
    if not values["comment"]:
        return again("comment: say why, so whoever sees the silence knows", 422)
    try:
        _silence, problem = connect(request).silence(
            session,
            kind=values["kind"],
            value=values["value"],
            actor=ACTOR,
            hours=hours,
            comment=values["comment"],
        )
    except AamiError as exc:
        session.rollback()
        return again(exc.detail, exc.status_code)
    except ValidationError as exc:
        session.rollback()
        return again(
            "; ".join(f"{k}: {v}" if k else v for k, v in validation_errors(exc, ()).items()), 422
        )
    if problem:
        session.rollback()
        return again(problem, 503)
    return redirect(f"{PREFIX}/silences", "silenced")


@router.post("/silences/{silence_id}/expire")
def silence_expire(request: Request, silence_id: str, _: FormDep, session: DbDep) -> Response:
    try:
        _none, problem = connect(request).expire(session, silence_id, actor=ACTOR)
    except AamiError as exc:
        session.rollback()
        return _silences_page(request, session, error=exc.detail, status_code=exc.status_code)
    if problem:
        return _silences_page(request, session, error=problem, status_code=503)
    return redirect(f"{PREFIX}/silences", "expired")
