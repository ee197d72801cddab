"""Bootstrap tokens: list, create (the secret is shown once, on the answer to the form) and
revoke. A token's hash is never shown."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from aami.db.base import utcnow
from aami.groups import service as groups
from aami.registration import service as registration
from aami.registration.schemas import BootstrapTokenCreate, BootstrapTokenRead
from aami.web.common import (
    ACTOR,
    PREFIX,
    DbDep,
    FormDep,
    LoginDep,
    UiRoute,
    attempt,
    done,
    page,
    redirect,
)
from aami.web.forms import Errors, FieldError, FormData, parse_kv
from aami.web.paging import PAGE_SIZE, Pager, page_number

router = APIRouter(route_class=UiRoute)

FIELDS = ("name", "group_id", "max_uses", "expires_hours", "labels", "allowed_labels")
_MAX_HOURS = 24 * 366


def _whole(form: FormData, name: str, errors: Errors, *, upper: int) -> int | None:
    text = form.text(name)
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= upper:
        errors[name] = f"{text[:20]!r} is not a whole number from 1 to {upper}"
        return None
    return int(text)


def _read(form: FormData) -> tuple[dict[str, str], dict[str, Any], Errors]:
    values = {name: form.get(name) for name in FIELDS}
    errors: Errors = {}
    data: dict[str, Any] = {
        "name": form.text("name"),
        "group_id": form.optional("group_id"),
        "max_uses": _whole(form, "max_uses", errors, upper=1_000_000),
        "allowed_labels": [k.strip() for k in form.get("allowed_labels").split(",") if k.strip()],
    }
    hours = _whole(form, "expires_hours", errors, upper=_MAX_HOURS)
    data["expires_at"] = utcnow() + timedelta(hours=hours) if hours else None
    try:
        data["labels"] = parse_kv(form.get("labels"), "labels")
    except FieldError as exc:
        errors[exc.field] = exc.message
    return values, data, errors


def _tokens_page(
    request: Request,
    session: Session,
    *,
    values: dict[str, str] | None = None,
    errors: Errors | None = None,
    created: tuple[BootstrapTokenRead, str] | None = None,
    status_code: int = 200,
) -> Response:
    number = page_number(request)
    rows, total = registration.list_tokens(
        session, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    group_rows, _ = groups.list_groups(session, limit=1000)
    return page(
        request,
        "tokens.html",
        status_code=status_code,
        nav="bootstrap-tokens",
        title="Bootstrap tokens",
        tokens=[BootstrapTokenRead.model_validate(t) for t in rows],
        now=utcnow(),
        groups=[(g.id, g.name) for g in group_rows],
        values=values or {},
        errors=errors or {},
        created=created,
        pager=Pager(request, number, total),
    )


@router.get("/bootstrap-tokens")
def tokens_page(request: Request, _: LoginDep, session: DbDep) -> Response:
    return _tokens_page(request, session)


@router.post("/bootstrap-tokens/new")
def token_create(request: Request, form: FormDep, session: DbDep) -> Response:
    """Create a token and show its secret, this once; a refusal shows the form again."""
    values, data, errors = _read(form)
    status = 422
    if not errors:
        made, errors, status = attempt(
            session,
            lambda: registration.create(
                session, actor=ACTOR, data=BootstrapTokenCreate.model_validate(data)
            ),
            FIELDS,
        )
        if made is not None:
            token, secret = made
            return _tokens_page(
                request, session, created=(BootstrapTokenRead.model_validate(token), secret)
            )
    return _tokens_page(request, session, values=values, errors=errors, status_code=status)


@router.post("/bootstrap-tokens/{token_id}/revoke")
def token_revoke(request: Request, token_id: str, _: FormDep, session: DbDep) -> Response:
    """Revoke a token: nodes can no longer register with it."""
    token = registration.get_or_raise(session, token_id=token_id)
    _done, errors, status = attempt(
        session, done(lambda: registration.delete(session, actor=ACTOR, token=token)), ()
    )
    if errors:
        return _tokens_page(request, session, errors=errors, status_code=status)
    return redirect(f"{PREFIX}/bootstrap-tokens", "revoked")
