"""/api/v1/alert-templates and /api/v1/alert-rules."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from aami.alerts import service
from aami.alerts.schemas import (
    AlertRuleCreate,
    AlertRuleRead,
    AlertRuleUpdate,
    AlertTemplateCreate,
    AlertTemplateRead,
    AlertTemplateUpdate,
    Severity,
)
from aami.api.deps import AdminDep, PageDep, PrometheusDep, SessionDep
from aami.common.filters import search_param
from aami.common.schemas import Page
from aami.prometheus import reads
from aami.prometheus import service as prometheus
from aami.prometheus.schemas import (
    BacktestBody,
    BacktestRead,
    DraftBacktestBody,
    RuleCheckRead,
    RulePreviewBody,
    TemplateImpactRead,
)

templates_router = APIRouter(prefix="/alert-templates", tags=["alert templates"])
seed_router = APIRouter(tags=["seed"])
rules_router = APIRouter(prefix="/alert-rules", tags=["alert rules"])


@templates_router.post("", status_code=status.HTTP_201_CREATED, response_model=AlertTemplateRead)
def create_template(
    body: AlertTemplateCreate, session: SessionDep, principal: AdminDep
) -> AlertTemplateRead:
    """Create a template; it is rendered with its defaults and parsed first."""
    return AlertTemplateRead.model_validate(
        service.create_template(session, actor=principal.name, data=body)
    )


@templates_router.get("", response_model=Page[AlertTemplateRead])
def list_templates(
    session: SessionDep,
    _: AdminDep,
    page: PageDep,
    name: Annotated[str | None, Query(max_length=200)] = None,
    severity: Severity | None = None,
    q: Annotated[
        str | None, search_param("id, name, description, query_template or labels")
    ] = None,
) -> Page[AlertTemplateRead]:
    """List templates by name."""
    rows, total = service.list_templates(
        session, name=name, severity=severity, q=q, offset=page.offset, limit=page.limit
    )
    return Page.of(
        [AlertTemplateRead.model_validate(t) for t in rows],
        page=page.page,
        limit=page.limit,
        total=total,
    )


@templates_router.get("/{template_id}", response_model=AlertTemplateRead)
def get_template(template_id: str, session: SessionDep, _: AdminDep) -> AlertTemplateRead:
    """Get a template by id or name."""
    return AlertTemplateRead.model_validate(service.get_template_or_raise(session, ref=template_id))


@templates_router.put("/{template_id}", response_model=AlertTemplateRead)
def update_template(
    template_id: str, body: AlertTemplateUpdate, session: SessionDep, principal: AdminDep
) -> AlertTemplateRead:
    """Change the fields sent; every rule using the template must still render."""
    template = service.get_template_or_raise(session, ref=template_id)
    return AlertTemplateRead.model_validate(
        service.update_template(session, actor=principal.name, template=template, data=body)
    )


@templates_router.post("/{template_id}/impact", response_model=TemplateImpactRead)
def template_impact(
    template_id: str, body: AlertTemplateUpdate, session: SessionDep, _: AdminDep
) -> TemplateImpactRead:
    """What ``PUT`` with this body would do to every rule of the template: each rule
    rendered before and after, and what changes; ``valid: false`` when the save would be
    refused. Saves nothing."""
    template = service.get_template_or_raise(session, ref=template_id)
    changes = body.changes()
    if "parameters" in changes:
        changes["parameters"] = body.model_dump(include={"parameters"})["parameters"]
    return reads.impact_read(
        prometheus.template_impact(session, template=template, changes=changes)
    )


@templates_router.delete("/{template_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_template(template_id: str, session: SessionDep, principal: AdminDep) -> Response:
    """Delete a template no rule uses."""
    service.delete_template(
        session,
        actor=principal.name,
        template=service.get_template_or_raise(session, ref=template_id),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@rules_router.post("", status_code=status.HTTP_201_CREATED, response_model=AlertRuleRead)
def create_rule(body: AlertRuleCreate, session: SessionDep, principal: AdminDep) -> AlertRuleRead:
    """Create a rule: a template applied to a group (or globally) with its config."""
    return service.read_rule(service.create_rule(session, actor=principal.name, data=body))


@rules_router.post("/preview", response_model=RuleCheckRead)
def preview_draft(
    body: RulePreviewBody, session: SessionDep, client: PrometheusDep, _: AdminDep
) -> RuleCheckRead:
    """A rule being edited (template, group, config), rendered as it would be published,
    and what Prometheus says of it now: the series that would fire, the nearest misses,
    or that the metric does not exist. Saves nothing."""
    draft = prometheus.draft_of(
        session,
        template=body.template_id,
        group=body.group_id,
        config=body.config,
        labels=body.labels,
        annotations=body.annotations,
    )
    return reads.rule_check_read(prometheus.preview_draft(draft, client=client, near=body.near))


@rules_router.post("/backtest", response_model=BacktestRead)
def backtest_draft(
    body: DraftBacktestBody, session: SessionDep, client: PrometheusDep, _: AdminDep
) -> BacktestRead:
    """What a rule being edited would have done over the last ``hours``, beside the
    current config (the saved rule of that template and group, or the template's
    defaults)."""
    draft = prometheus.draft_of(
        session,
        template=body.template_id,
        group=body.group_id,
        config=body.config,
        labels=body.labels,
        annotations=body.annotations,
    )
    found = prometheus.backtest(
        draft, client=client, hours=body.hours, step=body.step, now=time.time()
    )
    return reads.backtest_read(found)


@rules_router.get("", response_model=Page[AlertRuleRead])
def list_rules(
    session: SessionDep,
    _: AdminDep,
    page: PageDep,
    template_id: Annotated[str | None, Query(description="template id or name")] = None,
    group_id: Annotated[str | None, Query(description="group id or name")] = None,
    scope: Literal["group", "global"] | None = None,
    enabled: bool | None = None,
) -> Page[AlertRuleRead]:
    """List rules with their rendered form."""
    rows, total = service.list_rules(
        session,
        template=template_id,
        group=group_id,
        scope=scope,
        enabled=enabled,
        offset=page.offset,
        limit=page.limit,
    )
    return Page.of(
        [service.read_rule(r) for r in rows], page=page.page, limit=page.limit, total=total
    )


@rules_router.get("/{rule_id}", response_model=AlertRuleRead)
def get_rule(rule_id: str, session: SessionDep, _: AdminDep) -> AlertRuleRead:
    """Get a rule."""
    return service.read_rule(service.get_rule_or_raise(session, rule_id=rule_id))


@rules_router.get("/{rule_id}/preview", response_model=RuleCheckRead)
def preview_rule(
    rule_id: str,
    session: SessionDep,
    client: PrometheusDep,
    _: AdminDep,
    near: Annotated[int, Query(ge=0, le=50, description="nearest misses to list")] = 5,
) -> RuleCheckRead:
    """The saved rule as published, and what Prometheus says of it now."""
    draft = prometheus.draft_of_rule(session, rule_id=rule_id)
    return reads.rule_check_read(prometheus.preview_draft(draft, client=client, near=near))


@rules_router.post("/{rule_id}/backtest", response_model=BacktestRead)
def backtest_rule(
    rule_id: str, body: BacktestBody, session: SessionDep, client: PrometheusDep, _: AdminDep
) -> BacktestRead:
    """What the rule would have done over the last ``hours`` (1-168) with its config
    changed by ``config`` (a merge patch: only the keys given change, null removes one),
    beside what its saved config would have done: per series and in all, how many times it
    fired, for how long in all and at the longest.

    The rendered expression is run as a range query at ``step`` seconds (default 15,
    raised so that a series has at most 11,000 points; a smaller ``step`` is refused).
    ``for`` is modelled on that grid: consecutive points where the expression returns the
    series are one run, a missing point ends it, a run fires from its first point at least
    ``for`` after its start, and each point at which it fires counts for one step.
    Prometheus not answering is reported in each column's ``error``, not as a failure."""
    draft = prometheus.draft_of_rule(session, rule_id=rule_id, config=body.config)
    found = prometheus.backtest(
        draft, client=client, hours=body.hours, step=body.step, now=time.time()
    )
    return reads.backtest_read(found)


@rules_router.put("/{rule_id}", response_model=AlertRuleRead)
def update_rule(
    rule_id: str, body: AlertRuleUpdate, session: SessionDep, principal: AdminDep
) -> AlertRuleRead:
    """Change the fields sent; ``enabled: false`` takes the rule out of its file."""
    rule = service.get_rule_or_raise(session, rule_id=rule_id)
    return service.read_rule(
        service.update_rule(session, actor=principal.name, rule=rule, data=body)
    )


@rules_router.delete("/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rule(rule_id: str, session: SessionDep, principal: AdminDep) -> Response:
    """Delete a rule."""
    service.delete_rule(
        session, actor=principal.name, rule=service.get_rule_or_raise(session, rule_id=rule_id)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@seed_router.post("/seed")
def seed(session: SessionDep, principal: AdminDep) -> dict[str, dict[str, list[str]]]:
    """Load the default templates; those that exist (by name) are left as they are."""
    from aami.checks.service import seed_templates as seed_scripts

    return {
        "alert_templates": service.seed_templates(session, actor=principal.name),
        "script_templates": seed_scripts(session, actor=principal.name),
    }
