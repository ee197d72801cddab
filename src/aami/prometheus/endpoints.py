"""/api/v1/sd/prometheus: Prometheus HTTP service discovery."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from aami.api.deps import SdReaderDep, SessionDep
from aami.api.state import services
from aami.common.http_cache import conditional_response
from aami.common.ids import ID_PATTERN
from aami.prometheus.schemas import SdTargetGroup
from aami.prometheus.service import service_discovery
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
    _: SdReaderDep,
    exporter_type: ExporterType | None = None,
    group_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Targets for ``http_sd_configs``; ``group_id`` filters on the primary group."""
    doc = service_discovery(
        session, cache=services(request).sd_cache, exporter_type=exporter_type, group_id=group_id
    )
    return conditional_response(doc.body, doc.etag, if_none_match)
