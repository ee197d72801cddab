"""/api/v1/sd/prometheus: Prometheus HTTP service discovery; /api/v1/prometheus/thresholds:
the thresholds of the templates in compact threshold mode, for Prometheus to scrape."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import PlainTextResponse

from aami.api.deps import PrincipalDep, SdReaderDep, SessionDep
from aami.api.state import services
from aami.common.http_cache import conditional_response
from aami.common.ids import ID_PATTERN
from aami.errors import Forbidden
from aami.evaluators import service as evaluators
from aami.evaluators.models import LOCAL
from aami.evaluators.schemas import NAME_PATTERN
from aami.prometheus.schemas import SdTargetGroup
from aami.prometheus.service import service_discovery, thresholds_document
from aami.targets.schemas import ExporterType

router = APIRouter(tags=["service discovery"])


@router.get(
    "/sd/prometheus",
    responses={
        200: {"model": list[SdTargetGroup], "description": "Prometheus HTTP SD targets"},
        304: {"description": "unchanged"},
    },
)
def prometheus_sd(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    exporter_type: ExporterType | None = None,
    group_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    evaluator: Annotated[
        str | None,
        Query(
            pattern=NAME_PATTERN,
            description="only the targets of this evaluator's groups (a shard); its own "
            "token may read this",
        ),
    ] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Targets for ``http_sd_configs``; ``group_id`` filters on the primary group,
    ``evaluator`` on membership of any of the evaluator's groups."""
    if principal.role not in ("admin", "sd"):
        if principal.role != "evaluator" or evaluator is None:
            raise Forbidden("this token may not read service discovery")
        evaluators.may_act_for(principal, evaluator)
    member_of = None
    if evaluator is not None and evaluator != LOCAL:
        member_of = evaluators.get_or_raise(session, name=evaluator).groups
    doc = service_discovery(
        session,
        cache=services(request).sd_cache,
        exporter_type=exporter_type,
        group_id=group_id,
        member_of=member_of,
    )
    return conditional_response(doc.body, doc.etag, if_none_match)


THRESHOLDS_MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get(
    "/prometheus/thresholds",
    response_class=PlainTextResponse,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "aami_threshold series in the Prometheus text exposition format",
        },
        304: {"description": "unchanged"},
    },
)
def prometheus_thresholds(
    request: Request,
    session: SessionDep,
    _: SdReaderDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """One ``aami_threshold{template, param, group_id, group}`` series per enabled group
    rule of each template in compact threshold mode, its value the rule's threshold.
    Scraped by Prometheus (job ``aami-thresholds``, ``honor_labels: true``) with the
    service-discovery token or the admin token."""
    doc = thresholds_document(session, cache=services(request).sd_cache)
    return conditional_response(doc.body, doc.etag, if_none_match, media_type=THRESHOLDS_MEDIA_TYPE)
