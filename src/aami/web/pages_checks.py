"""Check scripts (script templates) and the policies that apply them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from aami.checks import service as checks
from aami.checks.models import ScriptPolicy, ScriptTemplate
from aami.checks.schemas import (
    ScriptPolicyCreate,
    ScriptPolicyUpdate,
    ScriptTemplateCreate,
    ScriptTemplateUpdate,
)
from aami.groups import service as groups
from aami.groups.models import Group
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
from aami.web.forms import Errors, FieldError, FormData, format_config, parse_config
from aami.web.paging import PAGE_SIZE, Pager, page_number, search_text

router = APIRouter(route_class=UiRoute)

SCRIPT_FIELDS = (
    "id",
    "name",
    "script_type",
    "language",
    "script_content",
    "default_config",
    "version",
    "description",
    "timeout_seconds",
)
POLICY_FIELDS = ("id", "template_id", "scope", "group_id", "target_id", "config", "priority")
LANGUAGES = ("bash", "sh", "python")
SCOPES = ("global", "group", "target")


def _all_groups(session: Session) -> list[Group]:
    rows, _ = groups.list_groups(session, limit=1000)
    return list(rows)


def _int(form: FormData, name: str, errors: Errors) -> int | None:
    text = form.text(name)
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        errors[name] = f"{text!r} is not a whole number"
        return None


# ---- script templates ------------------------------------------------------------------


def _script_values(template: ScriptTemplate | None) -> dict[str, str]:
    if template is None:
        return {
            "id": "",
            "name": "",
            "script_type": "custom",
            "language": "bash",
            "script_content": "#!/bin/bash\n",
            "default_config": "",
            "version": "1.0.0",
            "description": "",
            "timeout_seconds": "30",
        }
    return {
        "id": template.id,
        "name": template.name,
        "script_type": template.script_type,
        "language": template.language,
        "script_content": template.script_content,
        "default_config": format_config(template.default_config),
        "version": template.version,
        "description": template.description,
        "timeout_seconds": str(template.timeout_seconds),
    }


def _read_script(form: FormData) -> tuple[dict[str, str], dict[str, Any], Errors]:
    values = {name: form.get(name) for name in SCRIPT_FIELDS}
    errors: Errors = {}
    data: dict[str, Any] = {
        "name": form.text("name"),
        "script_type": form.text("script_type") or "custom",
        "language": form.text("language") or "bash",
        # The script is hashed as stored: keep it as typed.
        "script_content": form.get("script_content"),
        "version": form.text("version") or "1.0.0",
        "description": form.text("description"),
    }
    if form.text("id"):
        data["id"] = form.text("id")
    timeout = _int(form, "timeout_seconds", errors)
    if timeout is not None:
        data["timeout_seconds"] = timeout
    try:
        data["default_config"] = parse_config(form.get("default_config"), "default_config")
    except FieldError as exc:
        errors[exc.field] = exc.message
    return values, data, errors


@router.get("/scripts")
def script_list(request: Request, _: LoginDep, session: DbDep, q: str = "") -> Response:
    """Script templates, filtered by any part of id, name, type, description or language."""
    number, q = page_number(request), search_text(q)
    rows, total = checks.list_templates(
        session, q=q or None, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    return page(
        request,
        "scripts/list.html",
        nav="scripts",
        title="Script templates",
        templates=list(rows),
        q=q,
        pager=Pager(request, number, total),
    )


def _script_form(
    request: Request,
    session: Session,
    *,
    template: ScriptTemplate | None,
    values: dict[str, str],
    errors: Errors,
    delete_error: str = "",
    status_code: int = 200,
) -> Response:
    policies: list[Any] = []
    if template is not None:
        found, _ = checks.list_policies(session, template=template.id, limit=200)
        policies = list(found)
    return page(
        request,
        "scripts/form.html",
        status_code=status_code,
        nav="scripts",
        title=f"Script {template.name}" if template else "New script template",
        template=template,
        values=values,
        errors=errors,
        languages=LANGUAGES,
        policies=policies,
        delete_error=delete_error,
    )


@router.get("/scripts/new")
def script_new(request: Request, _: LoginDep, session: DbDep) -> Response:
    return _script_form(request, session, template=None, values=_script_values(None), errors={})


@router.post("/scripts/new")
def script_create(request: Request, form: FormDep, session: DbDep) -> Response:
    values, data, errors = _read_script(form)
    status = 422
    if not errors:
        template, errors, status = attempt(
            session,
            lambda: checks.create_template(
                session, actor=ACTOR, data=ScriptTemplateCreate.model_validate(data)
            ),
            SCRIPT_FIELDS,
        )
        if template is not None:
            return redirect(f"{PREFIX}/scripts/{template.id}", "created")
    return _script_form(
        request, session, template=None, values=values, errors=errors, status_code=status
    )


@router.get("/scripts/{ref}")
def script_detail(request: Request, ref: str, _: LoginDep, session: DbDep) -> Response:
    template = checks.get_template_or_raise(session, ref=ref)
    return _script_form(
        request, session, template=template, values=_script_values(template), errors={}
    )


@router.post("/scripts/{ref}")
def script_update(request: Request, ref: str, form: FormDep, session: DbDep) -> Response:
    template = checks.get_template_or_raise(session, ref=ref)
    values, data, errors = _read_script(form)
    values["id"] = template.id
    data.pop("id", None)
    status = 422
    if not errors:
        updated, errors, status = attempt(
            session,
            lambda: checks.update_template(
                session,
                actor=ACTOR,
                template=template,
                data=ScriptTemplateUpdate.model_validate(data),
            ),
            SCRIPT_FIELDS,
        )
        if updated is not None:
            return redirect(f"{PREFIX}/scripts/{updated.id}", "saved")
    return _script_form(
        request, session, template=template, values=values, errors=errors, status_code=status
    )


@router.post("/scripts/{ref}/delete")
def script_delete(request: Request, ref: str, _: FormDep, session: DbDep) -> Response:
    template = checks.get_template_or_raise(session, ref=ref)
    _done, errors, status = attempt(
        session,
        done(lambda: checks.delete_template(session, actor=ACTOR, template=template)),
        (),
    )
    if errors:
        return _script_form(
            request,
            session,
            template=template,
            values=_script_values(template),
            errors={},
            delete_error=errors[""],
            status_code=status,
        )
    return redirect(f"{PREFIX}/scripts", "deleted")


# ---- script policies -------------------------------------------------------------------


def _policy_values(policy: ScriptPolicy | None, **preset: str) -> dict[str, str]:
    if policy is None:
        return {
            "id": "",
            "template_id": preset.get("template", ""),
            "scope": preset.get("scope", "") or "global",
            "group_id": preset.get("group", ""),
            "target_id": preset.get("target", ""),
            "config": "",
            "priority": "100",
            "is_active": "on",
        }
    return {
        "id": policy.id,
        "template_id": policy.template_id,
        "scope": policy.scope,
        "group_id": policy.group_id or "",
        "target_id": policy.target_id or "",
        "config": format_config(policy.config),
        "priority": str(policy.priority),
        "is_active": "on" if policy.is_active else "",
    }


def _read_policy(form: FormData) -> tuple[dict[str, str], dict[str, Any], Errors]:
    values = {name: form.get(name) for name in POLICY_FIELDS}
    values["is_active"] = "on" if form.has("is_active") else ""
    errors: Errors = {}
    data: dict[str, Any] = {"is_active": form.has("is_active")}
    priority = _int(form, "priority", errors)
    if priority is not None:
        data["priority"] = priority
    try:
        data["config"] = parse_config(form.get("config"), "config")
    except FieldError as exc:
        errors[exc.field] = exc.message
    return values, data, errors


@router.get("/policies")
def policy_list(request: Request, _: LoginDep, session: DbDep, scope: str = "") -> Response:
    """Script policies by scope: global, per group, per target."""
    wanted = [scope] if scope in SCOPES else list(SCOPES)
    sections = []
    for name in wanted:
        found, total = checks.list_policies(session, scope=name, limit=500)
        sections.append({"scope": name, "policies": list(found), "total": total})
    return page(
        request,
        "policies/list.html",
        nav="policies",
        title="Script policies",
        sections=sections,
        scope=scope,
        scopes=SCOPES,
    )


def _policy_form(
    request: Request,
    session: Session,
    *,
    policy: ScriptPolicy | None,
    values: dict[str, str],
    errors: Errors,
    status_code: int = 200,
) -> Response:
    templates, _ = checks.list_templates(session, limit=1000)
    return page(
        request,
        "policies/form.html",
        status_code=status_code,
        nav="policies",
        title=f"Script policy {policy.id}" if policy else "New script policy",
        policy=policy,
        values=values,
        errors=errors,
        templates=templates,
        groups=_all_groups(session),
        scopes=SCOPES,
    )


@router.get("/policies/new")
def policy_new(
    request: Request,
    _: LoginDep,
    session: DbDep,
    template: str = "",
    scope: str = "",
    group: str = "",
    target: str = "",
) -> Response:
    values = _policy_values(None, template=template, scope=scope, group=group, target=target)
    return _policy_form(request, session, policy=None, values=values, errors={})


@router.post("/policies/new")
def policy_create(request: Request, form: FormDep, session: DbDep) -> Response:
    values, data, errors = _read_policy(form)
    scope = form.text("scope")
    data.update(
        template_id=form.text("template_id"),
        scope=scope,
        group_id=(form.text("group_id") or None) if scope == "group" else None,
        target_id=(form.text("target_id") or None) if scope == "target" else None,
    )
    if form.text("id"):
        data["id"] = form.text("id")
    status = 422
    if not errors:
        policy, errors, status = attempt(
            session,
            lambda: checks.create_policy(
                session, actor=ACTOR, data=ScriptPolicyCreate.model_validate(data)
            ),
            POLICY_FIELDS,
        )
        if policy is not None:
            return redirect(f"{PREFIX}/policies/{policy.id}", "created")
    return _policy_form(
        request, session, policy=None, values=values, errors=errors, status_code=status
    )


@router.get("/policies/{policy_id}")
def policy_detail(request: Request, policy_id: str, _: LoginDep, session: DbDep) -> Response:
    policy = checks.get_policy_or_raise(session, policy_id=policy_id)
    return _policy_form(request, session, policy=policy, values=_policy_values(policy), errors={})


@router.post("/policies/{policy_id}")
def policy_update(request: Request, policy_id: str, form: FormDep, session: DbDep) -> Response:
    policy = checks.get_policy_or_raise(session, policy_id=policy_id)
    values, data, errors = _read_policy(form)
    fixed = _policy_values(policy)
    for name in ("id", "template_id", "scope", "group_id", "target_id"):
        values[name] = fixed[name]
    status = 422
    if not errors:
        updated, errors, status = attempt(
            session,
            lambda: checks.update_policy(
                session,
                actor=ACTOR,
                policy=policy,
                data=ScriptPolicyUpdate.model_validate(data),
                replace_config=True,  # the form holds the whole config
            ),
            POLICY_FIELDS,
        )
        if updated is not None:
            return redirect(f"{PREFIX}/policies/{updated.id}", "saved")
    return _policy_form(
        request, session, policy=policy, values=values, errors=errors, status_code=status
    )


@router.post("/policies/{policy_id}/delete")
def policy_delete(request: Request, policy_id: str, _: FormDep, session: DbDep) -> Response:
    policy = checks.get_policy_or_raise(session, policy_id=policy_id)
    checks.delete_policy(session, actor=ACTOR, policy=policy)
    return redirect(f"{PREFIX}/policies", "deleted")
