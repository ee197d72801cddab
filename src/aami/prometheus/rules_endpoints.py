"""The rule management API: /api/v1/prometheus/..."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from aami.alerts import service as alerts
from aami.alerts.rendering import (
    MAX_QUERY_LENGTH,
    GroupRef,
    RenderError,
    TemplateSpec,
    UnsafeQuery,
    render_rule,
)
from aami.api.deps import AdminDep, PageDep, ReconcilerDep, RulePublisherDep, SessionDep
from aami.common.schemas import Page
from aami.errors import Invalid
from aami.groups import service as groups
from aami.publishing import service as publishing
from aami.publishing.reconciler import Job
from aami.publishing.schemas import PublishOutcome, PublishRead, PublishScheduled
from aami.publishing.types import PassResult, Result, Target, Trigger
from aami.targets import service as targets

router = APIRouter(prefix="/prometheus", tags=["prometheus rules"])


class RuleFileRead(BaseModel):
    name: str
    group_id: str | None
    path: str
    rule_count: int
    sha256: str
    revision: int | None
    fingerprint: str | None
    last_published: datetime


WaitQuery = Annotated[
    float,
    Query(
        ge=0,
        le=publishing.MAX_WAIT,
        description="seconds to wait for the pass; 202 if it is not done by then",
    ),
]


def _outcome(result: PassResult | None, response: Response) -> PublishOutcome | PublishScheduled:
    if result is None:
        response.status_code = 202
        return PublishScheduled(
            target=Target.PROMETHEUS.value,
            detail="the publisher runs it in the background: see GET /api/v1/prometheus/status "
            "and /rules/history",
        )
    return PublishOutcome.model_validate(result.as_dict())


@router.post("/rules/regenerate", response_model=PublishOutcome | PublishScheduled)
def regenerate_all(
    reconciler: ReconcilerDep, principal: AdminDep, response: Response, wait: WaitQuery = 0
) -> PublishOutcome | PublishScheduled:
    """Render every rule file, write what changed, validate, reload, confirm (in the
    background; ``wait`` for the result)."""
    job = Job(full=True, trigger=Trigger.REGENERATE, actor=principal.name)
    return _outcome(
        publishing.request_pass(reconciler, Target.PROMETHEUS, job, wait=wait), response
    )


@router.post("/rules/regenerate/{group_id}", response_model=PublishOutcome | PublishScheduled)
def regenerate_group(
    group_id: str,
    session: SessionDep,
    reconciler: ReconcilerDep,
    principal: AdminDep,
    response: Response,
    wait: WaitQuery = 0,
) -> PublishOutcome | PublishScheduled:
    """Render one group's rule file (``global`` for the global rules)."""
    scope = "" if group_id == "global" else groups.get_or_raise(session, ref=group_id).id
    job = Job(scopes={scope}, trigger=Trigger.REGENERATE, actor=principal.name)
    return _outcome(
        publishing.request_pass(reconciler, Target.PROMETHEUS, job, wait=wait), response
    )


@router.get("/rules/files", response_model=list[RuleFileRead])
def rule_files(publisher: RulePublisherDep, _: AdminDep) -> list[RuleFileRead]:
    """The generated rule files: group, path, rule count, stamp, sha256, when written."""
    return [
        RuleFileRead(
            name=f.name,
            group_id=f.group_id,
            path=f.path,
            rule_count=f.rule_count,
            sha256=f.sha256,
            revision=f.revision,
            fingerprint=f.fingerprint,
            last_published=f.modified_at,
        )
        for f in publisher.store.info()
    ]


@router.get("/rules/history", response_model=Page[PublishRead])
def publish_history(session: SessionDep, _: AdminDep, page: PageDep) -> Page[PublishRead]:
    """Every publish of rule files, newest first; repeated failures are one row (count)."""
    return publishing.history_page(session, target=Target.PROMETHEUS, page=page)


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
    query_template: Annotated[str | None, Query(max_length=MAX_QUERY_LENGTH)] = None,
    group_id: Annotated[str | None, Query(description="group id or name; none = global")] = None,
    config: Annotated[
        str, Query(max_length=MAX_QUERY_LENGTH, description="JSON object of config keys")
    ] = "{}",
) -> dict[str, Any]:
    """Render a template (stored, or given as ``query_template``) without saving anything;
    422 for a query the parser is not given (a comment, nesting or operators past the
    limits), ``valid: false`` and the reason for one that does not render."""
    try:
        overrides = json.loads(config)
    except json.JSONDecodeError as exc:
        raise Invalid(f"config: not JSON ({exc.msg})") from None
    except RecursionError:
        raise Invalid("config: nested too deep") from None
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
    except UnsafeQuery as exc:
        raise Invalid(str(exc)) from None
    except RenderError as exc:
        return {"valid": False, "error": str(exc), "rule": None}
    return {"valid": True, "error": None, "rule": rule}


@router.post("/reload", response_model=PublishOutcome | PublishScheduled)
def reload(
    reconciler: ReconcilerDep, principal: AdminDep, response: Response, wait: WaitQuery = 0
) -> PublishOutcome | PublishScheduled:
    """Reload Prometheus and confirm the rule groups it runs (in the background)."""
    job = Job(force_reload=True, trigger=Trigger.RELOAD, actor=principal.name)
    return _outcome(
        publishing.request_pass(reconciler, Target.PROMETHEUS, job, wait=wait), response
    )


@router.get("/status")
def prometheus_status(
    session: SessionDep,
    reconciler: ReconcilerDep,
    publisher: RulePublisherDep,
    _: AdminDep,
) -> dict[str, Any]:
    """Per rule group: the desired revision (database), the written one (file) and the
    loaded one (what Prometheus reports), measured now; ``in_sync`` when all agree."""
    client = publisher.client
    reachable = client.healthy()
    scopes = publisher.status_now()
    report = publishing.sync_report(
        session, reconciler, Target.PROMETHEUS, scopes, scope_of=publisher.store.scope_of
    )
    report["groups"] = {(scope or "global"): item for scope, item in report.pop("scopes").items()}
    report["out_of_sync"] = [s or "global" for s in report["out_of_sync"]]
    last = publishing.latest_read(session, Target.PROMETHEUS)
    return {
        "url": client.base_url,
        "reachable": reachable,
        "ready": client.ready() if reachable else False,
        "reload_enabled": publisher.reload_enabled,
        "validate_rules": publisher.validate,
        "rule_path": str(publisher.store.root),
        **report,
        "reload_pending": bool(last and last["result"] == Result.PENDING_RELOAD.value)
        and not report["in_sync"],
        "last_publish": last,
    }
