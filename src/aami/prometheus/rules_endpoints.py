"""The rule management API: /api/v1/prometheus/..."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from aami.alerts import service as alerts
from aami.alerts.rendering import GroupRef, RenderError, TemplateSpec, render_rule
from aami.api.deps import AdminDep, PageDep, SessionDep
from aami.common.schemas import Page
from aami.errors import Conflict, Invalid
from aami.groups import service as groups
from aami.prometheus.client import PrometheusError
from aami.prometheus.publisher import Publisher, PublishResult
from aami.prometheus.repository import RulePublishRepository
from aami.prometheus.rule_files import RuleFileStore
from aami.targets import service as targets

router = APIRouter(prefix="/prometheus", tags=["prometheus rules"])


class PublishRead(BaseModel):
    id: int | None
    trigger: str
    actor: str
    started_at: datetime
    finished_at: datetime | None
    files_written: list[str]
    files_removed: list[str]
    files_rejected: dict[str, str]
    rule_count: int
    validation: str
    reload: str
    result: str
    error: str | None
    timings: dict[str, float]


class PublishOutcome(PublishRead):
    scopes: list[str] | None
    files_unchanged: int
    rule_counts: dict[str, int]
    validation_output: str
    confirmed: bool | None
    missing_groups: list[str]


class RuleFileRead(BaseModel):
    name: str
    group_id: str | None
    path: str
    rule_count: int
    sha256: str
    last_published: datetime


def _publisher(request: Request) -> Publisher:
    publisher: Publisher = request.app.state.publisher
    return publisher


def _outcome(result: PublishResult) -> PublishOutcome:
    if result.result == "not_leader":
        raise Conflict(result.error or "this replica does not publish rule files")
    return PublishOutcome.model_validate(result.as_dict())


@router.post("/rules/regenerate", response_model=PublishOutcome)
def regenerate_all(request: Request, principal: AdminDep) -> PublishOutcome:
    """Render every rule file now, write what changed, validate, reload; return the result."""
    return _outcome(_publisher(request).publish(None, actor=principal.name, trigger="regenerate"))


@router.post("/rules/regenerate/{group_id}", response_model=PublishOutcome)
def regenerate_group(
    group_id: str, request: Request, session: SessionDep, principal: AdminDep
) -> PublishOutcome:
    """Render one group's rule file now (``global`` for the global rules)."""
    scope = "" if group_id == "global" else groups.get_or_raise(session, ref=group_id).id
    return _outcome(
        _publisher(request).publish({scope}, actor=principal.name, trigger="regenerate")
    )


@router.get("/rules/files", response_model=list[RuleFileRead])
def rule_files(request: Request, _: AdminDep) -> list[RuleFileRead]:
    """The generated rule files: group, path, rule count, sha256, when last written."""
    store: RuleFileStore = request.app.state.rule_store
    return [
        RuleFileRead(
            name=f.name,
            group_id=f.group_id,
            path=f.path,
            rule_count=f.rule_count,
            sha256=f.sha256,
            last_published=f.modified_at,
        )
        for f in store.info()
    ]


@router.get("/rules/history", response_model=Page[PublishRead])
def publish_history(session: SessionDep, _: AdminDep, page: PageDep) -> Page[PublishRead]:
    """Every publish, newest first."""
    rows, total = RulePublishRepository(session).find(offset=page.offset, limit=page.limit)
    return Page.of(
        [PublishRead.model_validate(r, from_attributes=True) for r in rows],
        page=page.page,
        limit=page.limit,
        total=total,
    )


@router.get("/rules/effective/{target_id}")
def effective_rules(target_id: str, session: SessionDep, _: AdminDep) -> dict[str, Any]:
    """The rendered rules that apply to a target: its primary group's and the global ones."""
    target = targets.get_or_raise(session, ref=target_id)
    return {
        "target_id": target.id,
        "hostname": target.hostname,
        "group_id": target.primary_group_id,
        "rules": alerts.effective_rules(session, target.primary_group_id),
    }


@router.get("/rules/preview")
def preview(
    session: SessionDep,
    _: AdminDep,
    template_id: Annotated[str | None, Query(description="template id or name")] = None,
    query_template: Annotated[str | None, Query(max_length=20_000)] = None,
    group_id: Annotated[str | None, Query(description="group id or name; none = global")] = None,
    config: Annotated[str, Query(description="JSON object of config keys")] = "{}",
) -> dict[str, Any]:
    """Render a template (stored, or given as ``query_template``) without saving anything."""
    try:
        overrides = json.loads(config)
    except json.JSONDecodeError as exc:
        raise Invalid(f"config: not JSON ({exc.msg})") from None
    if not isinstance(overrides, dict):
        raise Invalid("config: must be a JSON object")
    if template_id is not None:
        spec = alerts.spec_of(alerts.get_template_or_raise(session, ref=template_id))
        if query_template is not None:
            spec = dataclasses.replace(spec, query_template=query_template)
    elif query_template is not None:
        spec = TemplateSpec(name="Preview", query_template=query_template)
    else:
        raise Invalid("give template_id or query_template")
    group = groups.get_or_raise(session, ref=group_id) if group_id else None
    try:
        rule = render_rule(spec, overrides, GroupRef(group.id, group.name) if group else None)
    except RenderError as exc:
        return {"valid": False, "error": str(exc), "rule": None}
    return {"valid": True, "error": None, "rule": rule}


@router.post("/reload", response_model=PublishOutcome)
def reload(request: Request, principal: AdminDep) -> PublishOutcome:
    """Reload Prometheus now and confirm the rule groups it loaded."""
    return _outcome(_publisher(request).reload_now(actor=principal.name))


@router.get("/status")
def prometheus_status(request: Request, session: SessionDep, _: AdminDep) -> dict[str, Any]:
    """Reachability, readiness, the last publish, and rule groups loaded vs expected."""
    publisher = _publisher(request)
    store: RuleFileStore = request.app.state.rule_store
    expected = {f"aami-{f.group_id or 'global'}": f.rule_count for f in store.info()}
    reachable = publisher.client.healthy()
    loaded: dict[str, int] = {}
    error = None
    if reachable:
        try:
            root = str(store.root.resolve())
            loaded = {
                g.name: g.rules for g in publisher.client.rule_groups() if g.file.startswith(root)
            }
        except PrometheusError as exc:
            error = str(exc)
    last = RulePublishRepository(session).latest()
    return {
        "url": publisher.client.base_url,
        "reachable": reachable,
        "ready": publisher.client.ready() if reachable else False,
        "error": error,
        "reload_enabled": publisher.reload_enabled,
        "validate_rules": publisher.validate,
        "reload_pending": publisher.reload_pending,
        "publisher": "leader" if publisher.is_leader else "standby",
        "pending_changes": publisher.pending_scopes,
        "rule_path": str(store.root),
        "rule_groups": {
            "expected": expected,
            "loaded": loaded,
            "missing": sorted(set(expected) - set(loaded)),
            "stale": sorted(g for g in expected if g in loaded and loaded[g] != expected[g]),
            "in_sync": bool(reachable) and expected == loaded,
        },
        "last_publish": (
            PublishRead.model_validate(last, from_attributes=True).model_dump(mode="json")
            if last
            else None
        ),
    }
