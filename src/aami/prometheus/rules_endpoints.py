"""The rule management API: /api/v1/prometheus/..."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from aami.alerts.rendering import MAX_QUERY_LENGTH
from aami.api.deps import AdminDep, PageDep, ReconcilerDep, RulePublisherDep, SessionDep
from aami.common.schemas import Page
from aami.prometheus import service
from aami.prometheus.schemas import (
    EffectiveRules,
    PrometheusStatus,
    RuleFileRead,
    RulePreviewRead,
)
from aami.publishing import service as publishing
from aami.publishing.schemas import PublishOutcome, PublishRead, PublishScheduled
from aami.publishing.types import PassResult, Target

router = APIRouter(prefix="/prometheus", tags=["prometheus rules"])


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
    return _outcome(service.regenerate(reconciler, actor=principal.name, wait=wait), response)


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
    result = service.regenerate_group(
        session, reconciler, group=group_id, actor=principal.name, wait=wait
    )
    return _outcome(result, response)


@router.get("/rules/files", response_model=list[RuleFileRead])
def rule_files(publisher: RulePublisherDep, _: AdminDep) -> list[RuleFileRead]:
    """The generated rule files: group, path, rule count, stamp, sha256, when written."""
    return [RuleFileRead.of(info) for info in service.rule_files(publisher)]


@router.get("/rules/history", response_model=Page[PublishRead])
def publish_history(session: SessionDep, _: AdminDep, page: PageDep) -> Page[PublishRead]:
    """Every publish of rule files, newest first; repeated failures are one row (count)."""
    return service.history_page(session, page=page)


@router.get(
    "/rules/effective/{target_id}",
    response_model=EffectiveRules,
    response_model_exclude_unset=True,  # a rule has expr, for, labels or error, not both
)
def effective_rules(target_id: str, session: SessionDep, _: AdminDep) -> EffectiveRules:
    """The rendered rules that apply to a target: its primary group's and the global ones."""
    return service.effective_rules(session, target=target_id)


@router.get(
    "/rules/preview",
    response_model=RulePreviewRead,
    response_model_exclude_unset=True,  # a rule without annotations has no such key
)
def preview(
    session: SessionDep,
    _: AdminDep,
    template_id: Annotated[str | None, Query(description="template id or name")] = None,
    query_template: Annotated[str | None, Query(max_length=MAX_QUERY_LENGTH)] = None,
    group_id: Annotated[str | None, Query(description="group id or name; none = global")] = None,
    config: Annotated[
        str, Query(max_length=MAX_QUERY_LENGTH, description="JSON object of config keys")
    ] = "{}",
) -> RulePreviewRead:
    """Render a template (stored, or given as ``query_template``) without saving anything;
    422 for a query the parser is not given (a comment, nesting or operators past the
    limits), ``valid: false`` and the reason for one that does not render."""
    overrides = service.parse_config(config)
    spec = service.template_spec(session, template=template_id, query_template=query_template)
    found = service.preview(session, spec=spec, group=group_id, config=overrides)
    return RulePreviewRead.model_validate(
        {
            "valid": found.valid,
            "error": str(found.problem) if found.problem else None,
            "rule": found.rule,
        }
    )


@router.post("/reload", response_model=PublishOutcome | PublishScheduled)
def reload(
    reconciler: ReconcilerDep, principal: AdminDep, response: Response, wait: WaitQuery = 0
) -> PublishOutcome | PublishScheduled:
    """Reload Prometheus and confirm the rule groups it runs (in the background)."""
    return _outcome(service.reload(reconciler, actor=principal.name, wait=wait), response)


@router.get("/status", response_model=PrometheusStatus)
def prometheus_status(
    session: SessionDep,
    reconciler: ReconcilerDep,
    publisher: RulePublisherDep,
    _: AdminDep,
) -> PrometheusStatus:
    """Per rule group: the desired revision (database), the written one (file) and the
    loaded one (what Prometheus reports), measured now; ``in_sync`` when all agree."""
    return service.status(session, reconciler, publisher)
