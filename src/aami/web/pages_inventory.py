"""Groups, targets and their exporters."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from aami.alerts import service as alerts
from aami.checks import service as checks
from aami.groups import service as groups
from aami.groups.models import Group
from aami.groups.schemas import GroupCreate, GroupUpdate
from aami.targets import service as targets
from aami.targets.models import EXPORTER_DEFAULT_PORTS, Target
from aami.targets.schemas import ExporterCreate, ExporterUpdate, TargetCreate, TargetUpdate
from aami.web.alertmanager import connect
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
from aami.web.forms import Errors, FieldError, FormData, format_kv, parse_kv
from aami.web.paging import PAGE_SIZE, Pager, page_number, search_text
from aami.web.prometheus import scrape_health

router = APIRouter(route_class=UiRoute)

GROUP_FIELDS = ("id", "name", "description", "labels")
TARGET_FIELDS = (
    "id",
    "hostname",
    "ip_address",
    "group_ids",
    "labels",
    "status",
    "exporters",
    "node_exporter_port",
    "dcgm_exporter_port",
)
EXPORTER_FIELDS = ("type", "port", "metrics_path", "target_id")
STATUSES = ("active", "maintenance", "inactive")
EXPORTER_TYPES = ("node_exporter", "dcgm_exporter", "custom")


def _all_groups(session: Session) -> list[Group]:
    rows, _ = groups.list_groups(session, limit=1000)
    return list(rows)


# ---- groups ----------------------------------------------------------------------------


def _group_values(group: Group | None) -> dict[str, str]:
    if group is None:
        return {"id": "", "name": "", "description": "", "labels": ""}
    return {
        "id": group.id,
        "name": group.name,
        "description": group.description,
        "labels": format_kv(group.labels),
    }


def _read_group(form: FormData) -> tuple[dict[str, str], dict[str, Any], Errors]:
    values = {name: form.get(name) for name in GROUP_FIELDS}
    data: dict[str, Any] = {"name": form.text("name"), "description": form.text("description")}
    if form.text("id"):
        data["id"] = form.text("id")
    errors: Errors = {}
    try:
        data["labels"] = parse_kv(form.get("labels"), "labels")
    except FieldError as exc:
        errors[exc.field] = exc.message
    return values, data, errors


@router.get("/groups")
def group_list(request: Request, _: LoginDep, session: DbDep, q: str = "") -> Response:
    """Groups, filtered by any part of their id, name, description or labels."""
    number, q = page_number(request), search_text(q)
    rows, total = groups.list_groups(
        session, q=q or None, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    return page(
        request,
        "groups/list.html",
        nav="groups",
        title="Groups",
        groups=list(rows),
        q=q,
        pager=Pager(request, number, total),
    )


@router.get("/groups/new")
def group_new(request: Request, _: LoginDep) -> Response:
    return page(
        request,
        "groups/form.html",
        nav="groups",
        title="New group",
        values=_group_values(None),
        errors={},
    )


@router.post("/groups/new")
def group_create(request: Request, form: FormDep, session: DbDep) -> Response:
    """Create a group; a refusal shows the form again with the reason."""
    values, data, errors = _read_group(form)
    status = 422
    if not errors:
        group, errors, status = attempt(
            session,
            lambda: groups.create(session, actor=ACTOR, data=GroupCreate.model_validate(data)),
            GROUP_FIELDS,
        )
        if group is not None:
            return redirect(f"{PREFIX}/groups/{group.id}", "created")
    return page(
        request,
        "groups/form.html",
        status_code=status,
        nav="groups",
        title="New group",
        values=values,
        errors=errors,
    )


def _group_page(
    request: Request,
    session: Session,
    group: Group,
    *,
    values: dict[str, str],
    errors: Errors,
    delete_error: str = "",
    status_code: int = 200,
) -> Response:
    members, member_total = targets.list_targets(session, group=group.id, limit=100)
    policies, _ = checks.list_policies(session, group=group.id, limit=100)
    return page(
        request,
        "groups/detail.html",
        status_code=status_code,
        nav="groups",
        title=f"Group {group.name}",
        group=group,
        values=values,
        errors=errors,
        delete_error=delete_error,
        members=members,
        member_total=member_total,
        rules=[alerts.read_rule(r) for r in alerts.rules_of_group(session, group.id)],
        policies=policies,
    )


@router.get("/groups/{ref}")
def group_detail(request: Request, ref: str, _: LoginDep, session: DbDep) -> Response:
    """A group: its form, its targets, its rules and its script policies."""
    group = groups.get_or_raise(session, ref=ref)
    return _group_page(request, session, group, values=_group_values(group), errors={})


@router.post("/groups/{ref}")
def group_update(request: Request, ref: str, form: FormDep, session: DbDep) -> Response:
    group = groups.get_or_raise(session, ref=ref)
    values, data, errors = _read_group(form)
    data.pop("id", None)
    status = 422
    if not errors:
        updated, errors, status = attempt(
            session,
            lambda: groups.update(
                session, actor=ACTOR, group=group, data=GroupUpdate.model_validate(data)
            ),
            GROUP_FIELDS,
        )
        if updated is not None:
            return redirect(f"{PREFIX}/groups/{updated.id}", "saved")
    values["id"] = group.id
    return _group_page(request, session, group, values=values, errors=errors, status_code=status)


@router.post("/groups/{ref}/delete")
def group_delete(request: Request, ref: str, _: FormDep, session: DbDep) -> Response:
    """Delete a group; a group in use stays, and the page says what uses it."""
    group = groups.get_or_raise(session, ref=ref)
    _done, errors, status = attempt(
        session, done(lambda: groups.delete(session, actor=ACTOR, group=group)), ()
    )
    if errors:
        return _group_page(
            request,
            session,
            group,
            values=_group_values(group),
            errors={},
            delete_error=errors[""],
            status_code=status,
        )
    return redirect(f"{PREFIX}/groups", "deleted")


# ---- targets ---------------------------------------------------------------------------


def _target_values(target: Target | None) -> dict[str, str]:
    if target is None:
        return {
            "id": "",
            "hostname": "",
            "ip_address": "",
            "group_ids": "",
            "labels": "",
            "status": "active",
            "node_exporter": "on",
            "node_exporter_port": str(EXPORTER_DEFAULT_PORTS["node_exporter"]),
            "dcgm_exporter": "",
            "dcgm_exporter_port": str(EXPORTER_DEFAULT_PORTS["dcgm_exporter"]),
        }
    return {
        "id": target.id,
        "hostname": target.hostname,
        "ip_address": target.ip_address,
        "group_ids": ", ".join(target.group_ids),
        "labels": format_kv(target.labels),
        "status": target.status,
    }


def _port(form: FormData, name: str, errors: Errors) -> int | None:
    text = form.text(name)
    if not text:
        return None
    if not text.isdigit():
        errors[name] = f"{text!r} is not a port number"
        return None
    return int(text)


def _read_target(form: FormData, *, create: bool) -> tuple[dict[str, str], dict[str, Any], Errors]:
    values = {name: form.get(name) for name in TARGET_FIELDS if form.has(name)}
    errors: Errors = {}
    data: dict[str, Any] = {
        "hostname": form.text("hostname"),
        "ip_address": form.text("ip_address"),
        "group_ids": [ref.strip() for ref in form.get("group_ids").split(",") if ref.strip()],
        "status": form.text("status") or "active",
    }
    try:
        data["labels"] = parse_kv(form.get("labels"), "labels")
    except FieldError as exc:
        errors[exc.field] = exc.message
    if create:
        if form.text("id"):
            data["id"] = form.text("id")
        exporters = []
        for kind in ("node_exporter", "dcgm_exporter"):
            values[kind] = "on" if form.has(kind) else ""
            if form.has(kind):
                exporters.append({"type": kind, "port": _port(form, f"{kind}_port", errors)})
        data["exporters"] = exporters
    return values, data, errors


@router.get("/targets")
def target_list(
    request: Request,
    _: LoginDep,
    session: DbDep,
    q: str = "",
    group: str = "",
    status: str = "",
) -> Response:
    """Targets, filtered by group, status and any part of hostname, address, id or labels."""
    number, q = page_number(request), search_text(q)
    rows, total = targets.list_targets(
        session,
        group=group or None,
        status=status if status in STATUSES else None,
        q=q or None,
        offset=(number - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    return page(
        request,
        "targets/list.html",
        nav="targets",
        title="Targets",
        targets=list(rows),
        q=q,
        group=group,
        status=status,
        statuses=STATUSES,
        groups=_all_groups(session),
        pager=Pager(request, number, total),
    )


def _target_form(
    request: Request,
    session: Session,
    *,
    values: dict[str, str],
    errors: Errors,
    status_code: int = 200,
) -> Response:
    return page(
        request,
        "targets/form.html",
        status_code=status_code,
        nav="targets",
        title="New target",
        values=values,
        errors=errors,
        statuses=STATUSES,
        groups=_all_groups(session),
    )


@router.get("/targets/new")
def target_new(request: Request, _: LoginDep, session: DbDep, group: str = "") -> Response:
    values = _target_values(None)
    values["group_ids"] = group
    return _target_form(request, session, values=values, errors={})


@router.post("/targets/new")
def target_create(request: Request, form: FormDep, session: DbDep) -> Response:
    values, data, errors = _read_target(form, create=True)
    status = 422
    if not errors:
        target, errors, status = attempt(
            session,
            lambda: targets.create(session, actor=ACTOR, data=TargetCreate.model_validate(data)),
            TARGET_FIELDS,
        )
        if target is not None:
            return redirect(f"{PREFIX}/targets/{target.id}", "created")
    return _target_form(request, session, values=values, errors=errors, status_code=status)


def _target_page(
    request: Request,
    session: Session,
    target: Target,
    *,
    values: dict[str, str] | None = None,
    errors: Errors | None = None,
    exporter_values: dict[str, str] | None = None,
    exporter_errors: Errors | None = None,
    delete_error: str = "",
    status_code: int = 200,
) -> Response:
    am = connect(request)
    firing, am_problem = am.alerts(session, target=target.hostname)
    group_names = {m.group_id: m.group.name for m in target.memberships}
    return page(
        request,
        "targets/detail.html",
        status_code=status_code,
        nav="targets",
        title=f"Target {target.hostname}",
        target=target,
        group_names=group_names,
        values=values or _target_values(target),
        errors=errors or {},
        exporter_values=exporter_values
        or {"type": "custom", "port": "", "metrics_path": "/metrics"},
        exporter_errors=exporter_errors or {},
        exporter_types=EXPORTER_TYPES,
        delete_error=delete_error,
        statuses=STATUSES,
        groups=_all_groups(session),
        rules=alerts.effective_rules(session, target.primary_group_id),
        checks=checks.explain(session, target_id=target.id, group_ids=target.group_ids),
        alerts=firing,
        am_problem=am_problem,
        scrapes=scrape_health(request, target),
    )


@router.get("/targets/{ref}")
def target_detail(request: Request, ref: str, _: LoginDep, session: DbDep) -> Response:
    """A target: groups, labels, exporters, effective rules and checks, firing alerts."""
    return _target_page(request, session, targets.get_or_raise(session, ref=ref))


@router.post("/targets/{ref}")
def target_update(request: Request, ref: str, form: FormDep, session: DbDep) -> Response:
    target = targets.get_or_raise(session, ref=ref)
    values, data, errors = _read_target(form, create=False)
    status = 422
    if not errors:
        updated, errors, status = attempt(
            session,
            lambda: targets.update(
                session, actor=ACTOR, target=target, data=TargetUpdate.model_validate(data)
            ),
            TARGET_FIELDS,
        )
        if updated is not None:
            return redirect(f"{PREFIX}/targets/{updated.id}", "saved")
    return _target_page(request, session, target, values=values, errors=errors, status_code=status)


@router.post("/targets/{ref}/delete")
def target_delete(request: Request, ref: str, _: FormDep, session: DbDep) -> Response:
    target = targets.get_or_raise(session, ref=ref)
    _done, errors, status = attempt(
        session, done(lambda: targets.delete(session, actor=ACTOR, target=target)), ()
    )
    if errors:
        return _target_page(request, session, target, delete_error=errors[""], status_code=status)
    return redirect(f"{PREFIX}/targets", "deleted")


@router.post("/targets/{ref}/exporters")
def exporter_create(request: Request, ref: str, form: FormDep, session: DbDep) -> Response:
    """Add an exporter to a target."""
    target = targets.get_or_raise(session, ref=ref)
    values = {name: form.get(name) for name in EXPORTER_FIELDS if form.has(name)}
    errors: Errors = {}
    port = _port(form, "port", errors)
    status = 422
    if not errors:
        data = {
            "target_id": target.id,
            "type": form.text("type") or "node_exporter",
            "port": port,
            "metrics_path": form.text("metrics_path") or "/metrics",
        }
        exporter, errors, status = attempt(
            session,
            lambda: targets.create_exporter(
                session, actor=ACTOR, data=ExporterCreate.model_validate(data)
            ),
            EXPORTER_FIELDS,
        )
        if exporter is not None:
            return redirect(f"{PREFIX}/targets/{target.id}#exporters", "created")
    return _target_page(
        request,
        session,
        target,
        exporter_values=values,
        exporter_errors=errors,
        status_code=status,
    )


@router.post("/exporters/{exporter_id}/toggle")
def exporter_toggle(request: Request, exporter_id: str, _: FormDep, session: DbDep) -> Response:
    """Enable or disable an exporter (a disabled one leaves service discovery)."""
    exporter = targets.get_exporter_or_raise(session, exporter_id=exporter_id)
    enabled = not exporter.enabled
    targets.update_exporter(
        session, actor=ACTOR, exporter=exporter, data=ExporterUpdate(enabled=enabled)
    )
    return redirect(
        f"{PREFIX}/targets/{exporter.target_id}#exporters", "enabled" if enabled else "disabled"
    )


@router.post("/exporters/{exporter_id}/delete")
def exporter_delete(request: Request, exporter_id: str, _: FormDep, session: DbDep) -> Response:
    exporter = targets.get_exporter_or_raise(session, exporter_id=exporter_id)
    target_id = exporter.target_id
    targets.delete_exporter(session, actor=ACTOR, exporter=exporter)
    return redirect(f"{PREFIX}/targets/{target_id}#exporters", "deleted")
