"""Alertmanager's silences: listed, created for a target or a group (also from a row of
the alerts page), made with the matcher editor (previewed first), and expired.

The editor is ``/ui/silences/new``; it takes its first matchers from the query string,
``?matcher=instance%3Dgpu-node-01&matcher=alertname%3DGPUHot`` (each ``name``, an operator
``=``, ``!=``, ``=~`` or ``!~``, and a value, quoted or not), and previews them at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from aami.alertmanager import silences
from aami.alertmanager.schemas import Matcher, SilenceCreate
from aami.common.durations import format_duration, parse_duration
from aami.common.schemas import LABEL_NAME
from aami.errors import AamiError, Invalid
from aami.web.alertmanager import NOT_INSTALLED, connect
from aami.web.common import ACTOR, PREFIX, DbDep, FormDep, LoginDep, UiRoute, page, redirect
from aami.web.forms import Errors, FormData, parse_bool, validation_errors
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


# ---- the matcher editor ----------------------------------------------------------------

OPERATORS = {
    "=": "= equals",
    "!=": "!= differs from",
    "=~": "=~ matches the regex",
    "!~": "!~ does not match the regex",
}
BLANK_ROWS = 3  # rows the editor shows at least; "Add matcher" adds one more
MAX_ROWS = 20
DEFAULT_DURATION = "2h"
# name, operator, value: ``instance=gpu-node-01`` or ``alertname=~"GPU.*"``.
_MATCHER_TEXT = re.compile(r"\A\s*([^=!~\s]*)\s*(=~|!~|!=|=)\s*(.*?)\s*\Z", re.DOTALL)
_ROW_FIELD = re.compile(r"\Am(\d+)_(?:name|op|value)\Z")


@dataclass
class Row:
    """One row of the matcher editor, as typed."""

    name: str = ""
    op: str = "="
    value: str = ""

    @property
    def blank(self) -> bool:
        return not self.name and not self.value


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_matcher_text(text: str) -> Row:
    """A matcher as written in a link or by amtool (``name="value"``), as an editor row;
    text without an operator becomes a row whose name the editor will question."""
    found = _MATCHER_TEXT.match(text)
    if found is None:
        return Row(name=text.strip())
    return Row(name=found.group(1), op=found.group(2), value=_unquote(found.group(3)))


def _padded(rows: list[Row]) -> list[Row]:
    """The rows with blank ones up to the editor's minimum (and at least one blank)."""
    rows = rows[:MAX_ROWS]
    want = min(MAX_ROWS, max(BLANK_ROWS, len(rows) + (0 if rows and rows[-1].blank else 1)))
    return rows + [Row() for _ in range(want - len(rows))]


def _rows_of(form: FormData) -> list[Row]:
    indices = sorted(
        {int(found.group(1)) for name in form.names() if (found := _ROW_FIELD.match(name))}
    )
    return [
        Row(
            name=form.text(f"m{i}_name"),
            op=form.text(f"m{i}_op") or "=",
            value=form.text(f"m{i}_value"),
        )
        for i in indices[:MAX_ROWS]
    ]


def _editor_values(source: Any) -> dict[str, str]:
    """The fields besides the matchers, from a form or a query string."""
    values = {
        "duration": source.get("duration", DEFAULT_DURATION).strip(),
        "ends_at": source.get("ends_at", "").strip(),
        "comment": source.get("comment", "").strip(),
        "created_by": source.get("created_by", ACTOR).strip(),
    }
    if parse_bool(source.get("expire_on_resolve", "")):
        values["expire_on_resolve"] = "on"
    return values


def _row_matcher(row: Row, index: int, errors: Errors) -> Matcher | None:
    """The row as a matcher, or None with its problems in ``errors``."""
    field = f"m{index}"
    if not row.name:
        errors[f"{field}_name"] = "give the label's name, e.g. instance or alertname"
    elif not LABEL_NAME.match(row.name):
        errors[f"{field}_name"] = (
            f"{row.name!r} is not a label name: letters, digits and underscores, "
            "not starting with a digit"
        )
    if row.op not in OPERATORS:
        errors[f"{field}_op"] = "choose one of =, !=, =~ and !~"
    if f"{field}_name" in errors or f"{field}_op" in errors:
        return None
    try:
        return Matcher(
            name=row.name,
            value=row.value,
            is_regex=row.op in ("=~", "!~"),
            is_equal=row.op in ("=", "=~"),
        )
    except ValidationError as exc:
        errors[f"{field}_value"] = "; ".join(validation_errors(exc, ()).values())
        return None


def _matchers(rows: list[Row], errors: Errors) -> tuple[list[Matcher], list[int]]:
    """The matchers of the filled rows, and the row each came from."""
    found: list[Matcher] = []
    where: list[int] = []
    for index, row in enumerate(rows):
        if row.blank:
            continue
        matcher = _row_matcher(row, index, errors)
        if matcher is not None:
            found.append(matcher)
            where.append(index)
    if not found and not errors:
        errors["matchers"] = "give at least one matcher, e.g. instance = gpu-node-01"
    return found, where


def _window(values: dict[str, str], errors: Errors, request: Request) -> dict[str, Any]:
    """The silence's end, as ``ends_at`` or ``duration``; the service checks its length."""
    chosen: dict[str, Any] = {}
    if values["ends_at"]:
        field = "ends_at"
        try:
            ends = datetime.fromisoformat(values["ends_at"])
        except ValueError:
            errors[field] = (
                f"{values['ends_at']!r} is not a date and time such as 2026-01-31T18:00 (UTC)"
            )
            return chosen
        chosen["ends_at"] = ends if ends.tzinfo else ends.replace(tzinfo=UTC)
    else:
        field = "duration"
        try:
            parse_duration(values["duration"])
        except ValueError as exc:
            errors[field] = f"{exc}, or give an end time"
            return chosen
        chosen["duration"] = values["duration"]
    try:
        silences.silence_window(connect(request).settings, datetime.now(UTC), **chosen)
    except Invalid as exc:
        errors[field] = exc.detail
    return chosen


@dataclass
class Editor:
    """What the editor page shows: rows, other fields, errors, and the preview."""

    rows: list[Row]
    values: dict[str, str]
    errors: Errors
    preview: silences.SilencePreview | None = None
    status_code: int = 200


def _editor_page(request: Request, editor: Editor) -> Response:
    am = connect(request)
    rows = _padded(editor.rows)
    values = dict(editor.values)
    for index, row in enumerate(rows):
        values.update({f"m{index}_name": row.name, f"m{index}_op": row.op})
        values[f"m{index}_value"] = row.value
    return page(
        request,
        "silences_new.html",
        status_code=editor.status_code,
        nav="silences",
        title="New silence",
        rows=rows,
        values=values,
        errors=editor.errors,
        preview=editor.preview,
        operators=OPERATORS,
        problem=None if am.installed else NOT_INSTALLED,
        max_rows=MAX_ROWS,
        max_duration=format_duration(am.settings.silence_max_duration),
    )


def _preview(request: Request, editor: Editor, *, creating: bool) -> list[Matcher] | None:
    """Check every field and ask Alertmanager what the matchers select; the matchers, or
    None when something is wrong (said in ``editor.errors``, every problem at once)."""
    errors = editor.errors
    matchers, where = _matchers(editor.rows, errors)
    rows_ok = not errors
    if creating:
        if not editor.values["comment"]:
            errors["comment"] = "say why, and who to ask, so whoever sees the silence knows"
        if not editor.values["created_by"]:
            errors["created_by"] = "say who creates the silence"
    if not matchers:
        return None
    am = connect(request)
    if am.client is None:
        errors[""] = NOT_INSTALLED
        editor.status_code = 503
        return None
    try:
        if rows_ok:
            editor.preview = silences.preview_silence(am.client, am.settings, matchers)
            problems = editor.preview.problems
        else:  # no preview of a partial silence, but the rows that read are checked
            problems = silences.matcher_problems(am.client, matchers)
    except AamiError as exc:
        errors[""] = exc.detail
        editor.status_code = exc.status_code
        return None
    for position, problem in problems.items():
        errors[f"m{where[position]}_value"] = problem
    if creating and editor.preview is not None and editor.preview.refusal:
        errors["matchers"] = editor.preview.refusal
    return matchers if rows_ok and not problems else None


def _create(
    request: Request, session: Session, editor: Editor, matchers: list[Matcher]
) -> Response | None:
    """Create the silence; None (with the reason in ``editor``) when it is refused."""
    am = connect(request)
    assert am.client is not None  # _preview found it
    values = editor.values
    try:
        data = SilenceCreate(
            matchers=matchers,
            **_window(values, {}, request),
            created_by=values["created_by"],
            comment=values["comment"],
            expire_on_resolve="expire_on_resolve" in values,
        )
        silences.create_silence(session, am.client, am.settings, actor=ACTOR, data=data)
    except ValidationError as exc:
        session.rollback()
        editor.errors.update(
            validation_errors(exc, ("comment", "created_by", "duration", "ends_at"))
        )
        editor.status_code = 422
        return None
    except AamiError as exc:
        session.rollback()
        editor.errors[""] = exc.detail
        editor.status_code = exc.status_code
        return None
    return redirect(f"{PREFIX}/silences", "silenced")


def _submit(request: Request, session: Session, editor: Editor, *, creating: bool) -> Response:
    window_errors: Errors = {}
    _window(editor.values, window_errors, request)
    matchers = _preview(request, editor, creating=creating)
    editor.errors.update(window_errors)
    if editor.errors:
        editor.status_code = max(editor.status_code, 422)
    elif creating and matchers:
        created = _create(request, session, editor, matchers)
        if created is not None:
            return created
    return _editor_page(request, editor)


@router.get("/silences/new")
def silence_editor(request: Request, _: LoginDep, session: DbDep) -> Response:
    """The matcher editor, filled from the query string (``matcher``, ``comment``,
    ``duration``, ``expire_on_resolve``); given matchers are previewed at once."""
    query = request.query_params
    editor = Editor(
        rows=[parse_matcher_text(text) for text in query.getlist("matcher")][:MAX_ROWS],
        values=_editor_values(query),
        errors={},
    )
    if not editor.rows:
        return _editor_page(request, editor)
    page_ = _submit(request, session, editor, creating=False)
    if page_.status_code == 422:
        page_.status_code = 200  # a link's matchers, questioned on the page
    return page_


@router.post("/silences/new")
def silence_editor_post(request: Request, form: FormDep, session: DbDep) -> Response:
    """Add or remove a matcher row, preview, or create (the button pressed says which)."""
    editor = Editor(rows=_rows_of(form), values=_editor_values(form), errors={})
    remove = form.text("remove")
    if remove.isdigit():
        if int(remove) < len(editor.rows):
            del editor.rows[int(remove)]
        return _editor_page(request, editor)
    action = form.text("action") or "preview"
    if action == "add":
        editor.rows.append(Row())
        return _editor_page(request, editor)
    return _submit(request, session, editor, creating=action == "create")
