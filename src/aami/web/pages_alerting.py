"""Alert templates (with the live preview) and the per-group alert rules."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from typing import Any

import yaml
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from aami.alerts import service as alerts
from aami.alerts.models import AlertRule, AlertTemplate
from aami.alerts.parameters import describe
from aami.alerts.rendering import FOR_KEY, SEVERITIES, SEVERITY_KEY, TemplateSpec, placeholders
from aami.alerts.schemas import (
    AlertRuleCreate,
    AlertRuleRead,
    AlertRuleUpdate,
    AlertTemplateCreate,
    AlertTemplateUpdate,
)
from aami.api.state import services
from aami.errors import NotFound
from aami.groups import service as groups
from aami.groups.models import Group
from aami.prometheus import reads
from aami.prometheus import service as prometheus
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
    safe_next,
)
from aami.web.forms import (
    Errors,
    FieldError,
    FormData,
    format_config,
    format_kv,
    parse_config,
    parse_json_object,
    parse_kv,
    parse_scalar,
    validation_errors,
)
from aami.web.paging import PAGE_SIZE, Pager, page_number, search_text
from aami.web.prometheus import graph_url, matches, rule_state

router = APIRouter(route_class=UiRoute)

TEMPLATE_FIELDS = (
    "id",
    "name",
    "description",
    "query_template",
    "default_config",
    "parameters",
    "severity",
    "for_duration",
    "labels",
    "annotations",
)
BUILTIN_KEYS = frozenset({"group_id", "group", FOR_KEY, SEVERITY_KEY})


def _all_groups(session: Session) -> list[Group]:
    rows, _ = groups.list_groups(session, limit=1000)
    return list(rows)


# ---- templates -------------------------------------------------------------------------


def _parameters_text(parameters: dict[str, Any]) -> str:
    """The declarations as JSON, each without its empty fields."""
    if not parameters:
        return ""
    compact = {
        key: {name: value for name, value in spec.items() if value not in (None, "")}
        for key, spec in parameters.items()
    }
    return json.dumps(compact, indent=2, ensure_ascii=False)


def _template_values(template: AlertTemplate | None) -> dict[str, str]:
    if template is None:
        return {
            "id": "",
            "name": "",
            "description": "",
            "query_template": "",
            "default_config": "",
            "parameters": "",
            "severity": "warning",
            "for_duration": "5m",
            "labels": "",
            "annotations": "",
        }
    return {
        "id": template.id,
        "name": template.name,
        "description": template.description,
        "query_template": template.query_template,
        "default_config": format_config(template.default_config),
        "parameters": _parameters_text(template.parameters),
        "severity": template.severity,
        "for_duration": template.for_duration,
        "labels": format_kv(template.labels),
        "annotations": format_kv(template.annotations),
    }


def _read_template(form: FormData) -> tuple[dict[str, str], dict[str, Any], Errors]:
    values = {name: form.get(name) for name in TEMPLATE_FIELDS}
    errors: Errors = {}
    data: dict[str, Any] = {
        "name": form.text("name"),
        "description": form.text("description"),
        "query_template": form.get("query_template").strip(),
        "severity": form.text("severity") or "warning",
        "for_duration": form.text("for_duration") or "5m",
    }
    if form.text("id"):
        data["id"] = form.text("id")
    if form.text("parameters"):
        try:
            data["parameters"] = parse_json_object(form.get("parameters"), "parameters")
        except FieldError as exc:
            errors[exc.field] = exc.message
    for name, parse in (
        ("default_config", parse_config),
        ("labels", parse_kv),
        ("annotations", parse_kv),
    ):
        try:
            data[name] = parse(form.get(name), name)
        except FieldError as exc:
            errors[exc.field] = exc.message
    return values, data, errors


def build_preview(request: Request, session: Session, form: FormData) -> dict[str, Any]:
    """Render the template being edited for one group, and ask Prometheus what it matches.

    ``valid`` is whether the template would be accepted as it stands (the check run when
    it is saved); ``rule`` is the rule it renders for the chosen group (or globally).
    """
    result: dict[str, Any] = {
        "valid": False,
        "error": None,
        "note": None,
        "rule": None,
        "yaml": None,
        "scope": "global",
        "matches": None,
    }
    _values, data, errors = _read_template(form)
    if not data["query_template"]:
        result["error"] = "query_template: type a PromQL query"
        return result
    if not data["name"]:
        data["name"] = "Preview"
    if errors:
        result["error"] = "; ".join(f"{field}: {message}" for field, message in errors.items())
        return result
    try:
        model = AlertTemplateCreate.model_validate({k: v for k, v in data.items() if k != "id"})
    except ValidationError as exc:
        messages = validation_errors(exc, TEMPLATE_FIELDS)
        result["error"] = "; ".join(f"{k}: {v}" if k else v for k, v in messages.items())
        return result
    spec = TemplateSpec(
        name=model.name,
        query_template=model.query_template,
        default_config=model.default_config,
        severity=model.severity,
        for_duration=model.for_duration,
        labels=model.labels,
        annotations=model.annotations,
    )
    group_ref = form.text("preview_group")
    try:
        found = prometheus.preview(session, spec=spec, group=group_ref or None, draft=True)
    except NotFound:
        result["error"] = f"preview group {group_ref!r} does not exist"
        return result
    result["valid"] = found.valid
    result["scope"] = found.scope
    result["error"] = str(found.problem) if found.problem else None
    if found.sampled is not None:
        result["note"] = f"{found.sampled}. Shown with sample values; Prometheus was not asked."
    if found.rule is None:
        return result
    result["rule"] = found.rule
    result["yaml"] = yaml.safe_dump(found.rule, sort_keys=False, allow_unicode=True)
    if found.sampled is None:
        result["matches"] = matches(request, found.rule["expr"]).as_dict()
    return result


@router.post("/preview")
def preview(request: Request, form: FormDep, session: DbDep) -> JSONResponse:
    """The live preview of the template editor (JSON for its fetch)."""
    return JSONResponse(build_preview(request, session, form))


@router.get("/alert-templates")
def template_list(request: Request, _: LoginDep, session: DbDep, q: str = "") -> Response:
    number, q = page_number(request), search_text(q)
    found, total = alerts.list_templates(
        session, q=q or None, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    rows = list(found)
    return page(
        request,
        "alert_templates/list.html",
        nav="alert-templates",
        title="Alert templates",
        templates=rows,
        q=q,
        pager=Pager(request, number, total),
    )


def _template_form(
    request: Request,
    session: Session,
    *,
    template: AlertTemplate | None,
    values: dict[str, str],
    errors: Errors,
    preview: dict[str, Any] | None = None,
    preview_group: str | None = None,
    delete_error: str = "",
    status_code: int = 200,
) -> Response:
    all_groups = _all_groups(session)
    if preview_group is None:
        preview_group = all_groups[0].id if all_groups else ""
    rules = []
    if template is not None:
        found, _ = alerts.list_rules(session, template=template.id, limit=200)
        rules = [alerts.read_rule(r) for r in found]
    return page(
        request,
        "alert_templates/form.html",
        status_code=status_code,
        nav="alert-templates",
        title=f"Alert template {template.name}" if template else "New alert template",
        template=template,
        values=values,
        errors=errors,
        severities=SEVERITIES,
        groups=all_groups,
        preview=preview,
        preview_group=preview_group,
        rules=rules,
        delete_error=delete_error,
    )


@router.get("/alert-templates/new")
def template_new(request: Request, _: LoginDep, session: DbDep) -> Response:
    return _template_form(request, session, template=None, values=_template_values(None), errors={})


@router.post("/alert-templates/new")
def template_create(request: Request, form: FormDep, session: DbDep) -> Response:
    """Save a new template, or (action=preview) only show what it renders."""
    values, data, errors = _read_template(form)
    if form.text("action") == "preview":
        return _template_form(
            request,
            session,
            template=None,
            values=values,
            errors={},
            preview=build_preview(request, session, form),
            preview_group=form.text("preview_group"),
        )
    status = 422
    if not errors:
        template, errors, status = attempt(
            session,
            lambda: alerts.create_template(
                session, actor=ACTOR, data=AlertTemplateCreate.model_validate(data)
            ),
            TEMPLATE_FIELDS,
        )
        if template is not None:
            return redirect(f"{PREFIX}/alert-templates/{template.id}", "created")
    return _template_form(
        request,
        session,
        template=None,
        values=values,
        errors=errors,
        preview_group=form.text("preview_group"),
        status_code=status,
    )


@router.get("/alert-templates/{ref}")
def template_detail(request: Request, ref: str, _: LoginDep, session: DbDep) -> Response:
    template = alerts.get_template_or_raise(session, ref=ref)
    return _template_form(
        request, session, template=template, values=_template_values(template), errors={}
    )


@router.post("/alert-templates/{ref}")
def template_update(request: Request, ref: str, form: FormDep, session: DbDep) -> Response:
    template = alerts.get_template_or_raise(session, ref=ref)
    values, data, errors = _read_template(form)
    values["id"] = template.id
    if form.text("action") == "preview":
        return _template_form(
            request,
            session,
            template=template,
            values=values,
            errors={},
            preview=build_preview(request, session, form),
            preview_group=form.text("preview_group"),
        )
    data.pop("id", None)
    if not errors and not form.text("confirmed"):
        confirmation = _confirm_template(request, session, template, values, data, form)
        if confirmation is not None:
            return confirmation
    status = 422
    if not errors:
        updated, errors, status = attempt(
            session,
            lambda: alerts.update_template(
                session,
                actor=ACTOR,
                template=template,
                data=AlertTemplateUpdate.model_validate(data),
            ),
            TEMPLATE_FIELDS,
        )
        if updated is not None:
            return redirect(f"{PREFIX}/alert-templates/{updated.id}", "saved")
    return _template_form(
        request,
        session,
        template=template,
        values=values,
        errors=errors,
        preview_group=form.text("preview_group"),
        status_code=status,
    )


def _confirm_template(
    request: Request,
    session: Session,
    template: AlertTemplate,
    values: dict[str, str],
    data: dict[str, Any],
    form: FormData,
) -> Response | None:
    """The page that shows, before a change to a template with rules is saved, each rule
    rendered before and after; None when there is nothing to confirm (no rule), or the
    change would be refused anyway (the save then says why)."""
    try:
        update = AlertTemplateUpdate.model_validate(data)
    except ValidationError:
        return None
    changes = update.changes()
    if "parameters" in changes:
        changes["parameters"] = update.model_dump(include={"parameters"})["parameters"]
    impact = prometheus.template_impact(session, template=template, changes=changes)
    if not impact.rules or not impact.valid:
        return None
    return page(
        request,
        "alert_templates/confirm.html",
        nav="alert-templates",
        title=f"Save template {template.name}?",
        template=template,
        impact=reads.impact_read(impact),
        hidden={**values, "preview_group": form.text("preview_group")},
    )


@router.post("/alert-templates/{ref}/delete")
def template_delete(request: Request, ref: str, _: FormDep, session: DbDep) -> Response:
    template = alerts.get_template_or_raise(session, ref=ref)
    _done, errors, status = attempt(
        session,
        done(lambda: alerts.delete_template(session, actor=ACTOR, template=template)),
        (),
    )
    if errors:
        return _template_form(
            request,
            session,
            template=template,
            values=_template_values(template),
            errors={},
            delete_error=errors[""],
            status_code=status,
        )
    return redirect(f"{PREFIX}/alert-templates", "deleted")


# ---- rules -----------------------------------------------------------------------------


def config_keys(template: AlertTemplate) -> list[str]:
    """The keys a rule of this template may set: its defaults, then its placeholders."""
    keys = [key for key in template.default_config if key not in BUILTIN_KEYS]
    texts = [template.query_template, *template.labels.values(), *template.annotations.values()]
    for text in texts:
        for key in placeholders(text):
            if key not in keys and key not in BUILTIN_KEYS:
                keys.append(key)
    return keys


def _rule_fields(keys: list[str]) -> tuple[str, ...]:
    return (
        "template_id",
        "group_id",
        "enabled",
        "labels",
        "annotations",
        "config",
        "extra_config",
        FOR_KEY,
        SEVERITY_KEY,
        *(f"config.{key}" for key in keys),
    )


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# Prometheus's duration grammar, loosely (the service checks it exactly): a hint for the
# browser, which does not block the form (novalidate) but marks the field.
_DURATION_PATTERN = "0|([0-9]+(ms|[ywdhms]))+"


def _number_attrs(spec: dict[str, Any]) -> dict[str, str]:
    attrs = {"step": "1" if spec["type"] == "integer" else "any"}
    for name in ("min", "max"):
        if spec.get(name) is not None:
            attrs[name] = _scalar_text(spec[name])
    return attrs


def typed_input(template: AlertTemplate, key: str) -> dict[str, Any]:
    """How the rule form asks for one key: input type, attributes, unit, choices, help."""
    spec: dict[str, Any] | None = template.parameters.get(key)
    default = template.default_config.get(key)
    kind = spec["type"] if spec else "label_value"
    unit = spec.get("unit", "") if spec else ""
    field: dict[str, Any] = {
        "label": f"{key} ({unit})" if unit else key,
        "control": "input",
        "type": "text",
        "attrs": {},
        "options": [],
    }
    help_parts = [spec["description"]] if spec and spec.get("description") else []
    if spec is not None:
        help_parts.append(describe(template.name, key, spec).split(": ", 1)[1] + ".")
    if default is not None:
        help_parts.append(f"Empty: the template's default, {json.dumps(default)}.")
    else:
        help_parts.append("No default: the rule must set it.")
    field["help"] = " ".join(help_parts)
    if kind in ("number", "integer") and spec is not None:
        field.update(type="number", attrs=_number_attrs(spec))
    elif kind == "enum" and spec is not None:
        choices = [_scalar_text(choice) for choice in spec.get("choices") or []]
        field.update(control="select", options=[(c, c) for c in choices])
    elif kind == "duration":
        field["attrs"] = {"pattern": _DURATION_PATTERN}
    return field


def _parse_typed(text: str, template: AlertTemplate, key: str) -> object:
    """A typed value from the form's text: a number for a number, the choice for an enum;
    text that does not read as its type is passed on for the service to explain."""
    spec = template.parameters.get(key)
    if spec is None:
        return parse_scalar(text, template.default_config.get(key))
    if spec["type"] in ("number", "integer"):
        return parse_scalar(text, 0)
    if spec["type"] == "enum":
        for choice in spec.get("choices") or []:
            if _scalar_text(choice) == text.strip():
                return choice
    return text.strip()


def _rule_values(
    template: AlertTemplate, rule: AlertRule | None, group: str = ""
) -> dict[str, str]:
    keys = config_keys(template)
    config = dict(rule.config) if rule else {}
    values = {
        "template_id": template.id,
        "group_id": (rule.group_id or "") if rule else group,
        "enabled": "on" if (rule is None or rule.enabled) else "",
        "labels": format_kv(rule.labels) if rule else "",
        "annotations": format_kv(rule.annotations) if rule else "",
        FOR_KEY: _scalar_text(config.pop(FOR_KEY, "")),
        SEVERITY_KEY: _scalar_text(config.pop(SEVERITY_KEY, "")),
    }
    for key in keys:
        values[f"config.{key}"] = _scalar_text(config.pop(key, ""))
    values["extra_config"] = format_config(config)
    return values


def _read_rule(
    form: FormData, template: AlertTemplate
) -> tuple[dict[str, str], dict[str, Any], Errors]:
    keys = config_keys(template)
    fields = _rule_fields(keys)
    values = {name: form.get(name) for name in fields if form.has(name)}
    values["template_id"] = template.id
    values["enabled"] = "on" if form.has("enabled") else ""
    errors: Errors = {}
    config: dict[str, Any] = {}
    for key in keys:
        text = form.text(f"config.{key}")
        if text:
            config[key] = _parse_typed(text, template, key)
    for key in (FOR_KEY, SEVERITY_KEY):
        if form.text(key):
            config[key] = form.text(key)
    try:
        extra = parse_config(form.get("extra_config"), "extra_config")
    except FieldError as exc:
        errors[exc.field] = exc.message
        extra = {}
    clash = sorted(set(extra) & set(config))
    if clash:
        errors["extra_config"] = f"{clash[0]!r} is set above already"
    config.update(extra)
    data: dict[str, Any] = {
        "template_id": template.id,
        "group_id": form.text("group_id") or None,
        "config": config,
        "enabled": form.has("enabled"),
    }
    for name in ("labels", "annotations"):
        try:
            data[name] = parse_kv(form.get(name), name)
        except FieldError as exc:
            errors[exc.field] = exc.message
    return values, data, errors


@router.get("/rules")
def rule_list(
    request: Request,
    _: LoginDep,
    session: DbDep,
    group: str = "",
    template: str = "",
) -> Response:
    """Alert rules, by group (``global`` for the rules that apply to every node)."""
    number = page_number(request)
    found, total = alerts.list_rules(
        session,
        group=None if group in ("", "global") else group,
        scope="global" if group == "global" else None,
        template=template or None,
        offset=(number - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    templates, _total = alerts.list_templates(session, limit=1000)
    return page(
        request,
        "rules/list.html",
        nav="rules",
        title="Alert rules",
        rules=[alerts.read_rule(r) for r in found],
        group=group,
        template=template,
        groups=_all_groups(session),
        templates=templates,
        pager=Pager(request, number, total),
    )


def _publish_path(request: Request, session: Session, scope: str) -> dict[str, Any]:
    """Saved (desired revision) -> written (file) -> loaded (Prometheus) for one rule scope,
    measured now from the publisher's own status."""
    app = services(request)
    try:
        report = prometheus.sync_report(session, app.reconciler, app.rule_publisher)
    except OSError as exc:
        return {"scope": scope or "global", "found": False, "error": str(exc)}
    item = report["scopes"].get(scope)
    return {
        "scope": scope or "global",
        "found": item is not None,
        **(item or {}),
        "error": (item or {}).get("error") or (None if report["in_sync"] else report["last_error"]),
    }


def _in_prometheus(request: Request, session: Session, read: AlertRuleRead) -> dict[str, Any]:
    """What the rule page shows of Prometheus: its evaluation, the graph link and the path
    of the latest change."""
    scope = read.group_id or ""
    found: dict[str, Any] = {
        "path": _publish_path(request, session, scope),
        "state": None,
        "graph": None,
    }
    if read.rendered is not None:
        found["state"] = rule_state(
            request, scope=scope, alert=read.rendered.alert, expr=read.rendered.expr
        )
        found["graph"] = graph_url(request, read.rendered.expr)
    return found


def _rule_form(
    request: Request,
    session: Session,
    *,
    template: AlertTemplate,
    rule: AlertRule | None,
    values: dict[str, str],
    errors: Errors,
    delete_error: str = "",
    check: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    read = alerts.read_rule(rule) if rule else None
    values.setdefault("hours", DEFAULT_HOURS)
    values.setdefault("step", "")
    return page(
        request,
        "rules/form.html",
        status_code=status_code,
        nav="rules",
        title=f"Alert rule {rule.id}" if rule else f"New rule from {template.name}",
        template=template,
        rule=rule,
        read=read,
        evaluator=_in_prometheus(request, session, read) if read else None,
        keys=config_keys(template),
        inputs={key: typed_input(template, key) for key in config_keys(template)},
        values=values,
        errors=errors,
        severities=SEVERITIES,
        groups=_all_groups(session),
        delete_error=delete_error,
        for_key=FOR_KEY,
        severity_key=SEVERITY_KEY,
        check=check or {},
        seconds_text=seconds_text,
        number_text=number_text,
    )


# ---- checking a rule before it is saved: the preview and the backtest ------------------

CHECK_FIELDS = ("hours", "step")
DEFAULT_HOURS = "24"


def seconds_text(seconds: float) -> str:
    """``1h 2m 30s``: a firing time as read at a glance."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h"] if hours else []
    if minutes:
        parts.append(f"{minutes}m")
    if secs or not parts:
        parts.append(f"{secs}s")
    return " ".join(parts)


def number_text(value: float | None) -> str:
    """A series value as Prometheus writes it: ``70``, ``0.25``, ``+Inf``; ``NaN`` for none."""
    if value is None:
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.10g}"


def _number_field(form: FormData, name: str, errors: Errors) -> float | None:
    text = form.text(name)
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        errors[name] = f"{text!r} is not a number"
        return None


def _check(
    request: Request,
    session: Session,
    *,
    action: str,
    data: dict[str, Any],
    rule: AlertRule | None,
    hours: float | None,
    step: float | None,
) -> dict[str, Any]:
    """The preview or the backtest of the rule as the form states it (saving nothing)."""
    model = AlertRuleCreate.model_validate(data)
    draft = prometheus.draft_of(
        session,
        template=model.template_id,
        group=model.group_id,
        config=model.config,
        labels=model.labels,
        annotations=model.annotations,
    )
    if rule is not None:
        draft = dataclasses.replace(draft, saved=rule)
    client = services(request).prometheus
    if action == "preview":
        return {"preview": reads.rule_check_read(prometheus.preview_draft(draft, client=client))}
    found = prometheus.backtest(
        draft,
        client=client,
        hours=hours if hours is not None else float(DEFAULT_HOURS),
        step=step,
        now=time.time(),
    )
    return {"backtest": reads.backtest_read(found)}


def _rule_check(
    request: Request,
    session: Session,
    form: FormData,
    *,
    template: AlertTemplate,
    rule: AlertRule | None,
) -> Response:
    """The rule form again, with what its Preview or Backtest button asked for."""
    values, data, errors = _read_rule(form, template)
    values["hours"] = form.text("hours") or DEFAULT_HOURS
    values["step"] = form.text("step")
    hours = _number_field(form, "hours", errors)
    step = _number_field(form, "step", errors)
    found: dict[str, Any] | None = None
    status = 422
    if not errors:
        found, errors, status = attempt(
            session,
            lambda: _check(
                request,
                session,
                action=form.text("action"),
                data=data,
                rule=rule,
                hours=hours,
                step=step,
            ),
            (*_rule_fields(config_keys(template)), *CHECK_FIELDS),
        )
    return _rule_form(
        request,
        session,
        template=template,
        rule=rule,
        values=values,
        errors=errors,
        check=found,
        status_code=status if errors else 200,
    )


@router.get("/rules/new")
def rule_new(
    request: Request, _: LoginDep, session: DbDep, template: str = "", group: str = ""
) -> Response:
    """Choose a template, then fill in the rule's config for it."""
    found = alerts.get_template_or_raise(session, ref=template) if template else None
    if found is None:
        templates, _total = alerts.list_templates(session, limit=1000)
        return page(
            request,
            "rules/choose.html",
            nav="rules",
            title="New alert rule",
            templates=templates,
            groups=_all_groups(session),
            group=group,
        )
    return _rule_form(
        request,
        session,
        template=found,
        rule=None,
        values=_rule_values(found, None, group),
        errors={},
    )


@router.post("/rules/new")
def rule_create(request: Request, form: FormDep, session: DbDep) -> Response:
    """Create a rule; the service renders and parses it first and explains a refusal."""
    template = alerts.get_template_or_raise(session, ref=form.text("template_id"))
    if form.text("action") in ("preview", "backtest"):
        return _rule_check(request, session, form, template=template, rule=None)
    values, data, errors = _read_rule(form, template)
    status = 422
    if not errors:
        rule, errors, status = attempt(
            session,
            lambda: alerts.create_rule(
                session, actor=ACTOR, data=AlertRuleCreate.model_validate(data)
            ),
            _rule_fields(config_keys(template)),
        )
        if rule is not None:
            return redirect(f"{PREFIX}/rules/{rule.id}", "created")
    return _rule_form(
        request,
        session,
        template=template,
        rule=None,
        values=values,
        errors=errors,
        status_code=status,
    )


@router.get("/rules/{rule_id}")
def rule_detail(request: Request, rule_id: str, _: LoginDep, session: DbDep) -> Response:
    rule = alerts.get_rule_or_raise(session, rule_id=rule_id)
    return _rule_form(
        request,
        session,
        template=rule.template,
        rule=rule,
        values=_rule_values(rule.template, rule),
        errors={},
    )


@router.post("/rules/{rule_id}")
def rule_update(request: Request, rule_id: str, form: FormDep, session: DbDep) -> Response:
    rule = alerts.get_rule_or_raise(session, rule_id=rule_id)
    template = rule.template
    if form.text("action") in ("preview", "backtest"):
        return _rule_check(request, session, form, template=template, rule=rule)
    values, data, errors = _read_rule(form, template)
    data.pop("template_id")
    status = 422
    if not errors:
        updated, errors, status = attempt(
            session,
            lambda: alerts.update_rule(
                session,
                actor=ACTOR,
                rule=rule,
                data=AlertRuleUpdate.model_validate(data),
                replace_config=True,  # the form holds the whole config
            ),
            _rule_fields(config_keys(template)),
        )
        if updated is not None:
            return redirect(f"{PREFIX}/rules/{updated.id}", "saved")
    return _rule_form(
        request,
        session,
        template=template,
        rule=rule,
        values=values,
        errors=errors,
        status_code=status,
    )


def _back(form: FormData, default: str) -> str:
    nxt = form.text("next")
    return safe_next(nxt) if nxt else default


@router.post("/rules/{rule_id}/enable")
def rule_enable(request: Request, rule_id: str, form: FormDep, session: DbDep) -> Response:
    return _set_enabled(session, rule_id, form, enabled=True)


@router.post("/rules/{rule_id}/disable")
def rule_disable(request: Request, rule_id: str, form: FormDep, session: DbDep) -> Response:
    return _set_enabled(session, rule_id, form, enabled=False)


def _set_enabled(session: Session, rule_id: str, form: FormData, *, enabled: bool) -> Response:
    rule = alerts.get_rule_or_raise(session, rule_id=rule_id)
    # A refusal propagates: the session rolls back and the error is shown as a page.
    alerts.update_rule(session, actor=ACTOR, rule=rule, data=AlertRuleUpdate(enabled=enabled))
    return redirect(_back(form, f"{PREFIX}/rules/{rule_id}"), "enabled" if enabled else "disabled")


@router.post("/rules/{rule_id}/delete")
def rule_delete(request: Request, rule_id: str, form: FormDep, session: DbDep) -> Response:
    rule = alerts.get_rule_or_raise(session, rule_id=rule_id)
    group_id = rule.group_id
    alerts.delete_rule(session, actor=ACTOR, rule=rule)
    default = f"{PREFIX}/rules?group={group_id or 'global'}"
    nxt = form.text("next")
    if nxt.startswith(f"{PREFIX}/rules/{rule_id}"):
        nxt = ""
    return redirect(safe_next(nxt) if nxt else default, "deleted")
