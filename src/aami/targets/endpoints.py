"""/api/v1/targets and /api/v1/exporters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from aami.api.deps import AdminDep, PageDep, SessionDep
from aami.common.filters import parse_label_filter, search_param
from aami.common.schemas import Page
from aami.targets import service
from aami.targets.schemas import (
    ExporterCreate,
    ExporterRead,
    ExporterType,
    ExporterUpdate,
    TargetCreate,
    TargetRead,
    TargetStatus,
    TargetUpdate,
)

router = APIRouter(prefix="/targets", tags=["targets"])
exporters_router = APIRouter(prefix="/exporters", tags=["exporters"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TargetRead)
def create_target(body: TargetCreate, session: SessionDep, principal: AdminDep) -> TargetRead:
    """Create a target, with its exporters when given inline."""
    return TargetRead.model_validate(service.create(session, actor=principal.name, data=body))


@router.get("", response_model=Page[TargetRead])
def list_targets(
    session: SessionDep,
    _: AdminDep,
    page: PageDep,
    group_id: Annotated[str | None, Query(description="member of this group (id or name)")] = None,
    status_: Annotated[TargetStatus | None, Query(alias="status")] = None,
    hostname: Annotated[str | None, Query(max_length=253)] = None,
    label: Annotated[str | None, Query(description="key=value")] = None,
    q: Annotated[str | None, search_param("id, hostname, ip_address or labels")] = None,
) -> Page[TargetRead]:
    """List targets by hostname."""
    rows, total = service.list_targets(
        session,
        group=group_id,
        status=status_,
        hostname=hostname,
        label=parse_label_filter(label),
        q=q,
        offset=page.offset,
        limit=page.limit,
    )
    return Page.of(
        [TargetRead.model_validate(t) for t in rows], page=page.page, limit=page.limit, total=total
    )


@router.get("/{target_id}", response_model=TargetRead)
def get_target(target_id: str, session: SessionDep, _: AdminDep) -> TargetRead:
    """Get a target by id or hostname."""
    return TargetRead.model_validate(service.get_or_raise(session, ref=target_id))


@router.put("/{target_id}", response_model=TargetRead)
def update_target(
    target_id: str, body: TargetUpdate, session: SessionDep, principal: AdminDep
) -> TargetRead:
    """Change the fields sent; ``group_ids`` replaces the whole ordered list."""
    target = service.get_or_raise(session, ref=target_id)
    return TargetRead.model_validate(
        service.update(session, actor=principal.name, target=target, data=body)
    )


@router.delete("/{target_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_target(target_id: str, session: SessionDep, principal: AdminDep) -> Response:
    """Delete a target and its exporters."""
    service.delete(
        session, actor=principal.name, target=service.get_or_raise(session, ref=target_id)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@exporters_router.post("", status_code=status.HTTP_201_CREATED, response_model=ExporterRead)
def create_exporter(body: ExporterCreate, session: SessionDep, principal: AdminDep) -> ExporterRead:
    """Add an exporter to a target."""
    return ExporterRead.model_validate(
        service.create_exporter(session, actor=principal.name, data=body)
    )


@exporters_router.get("", response_model=Page[ExporterRead])
def list_exporters(
    session: SessionDep,
    _: AdminDep,
    page: PageDep,
    target_id: Annotated[str | None, Query(description="target id or hostname")] = None,
    type: ExporterType | None = None,
    enabled: bool | None = None,
) -> Page[ExporterRead]:
    """List exporters."""
    rows, total = service.list_exporters(
        session,
        target=target_id,
        type=type,
        enabled=enabled,
        offset=page.offset,
        limit=page.limit,
    )
    return Page.of(
        [ExporterRead.model_validate(e) for e in rows],
        page=page.page,
        limit=page.limit,
        total=total,
    )


@exporters_router.get("/{exporter_id}", response_model=ExporterRead)
def get_exporter(exporter_id: str, session: SessionDep, _: AdminDep) -> ExporterRead:
    """Get an exporter."""
    return ExporterRead.model_validate(
        service.get_exporter_or_raise(session, exporter_id=exporter_id)
    )


@exporters_router.put("/{exporter_id}", response_model=ExporterRead)
def update_exporter(
    exporter_id: str, body: ExporterUpdate, session: SessionDep, principal: AdminDep
) -> ExporterRead:
    """Change the fields sent; ``enabled: false`` takes it out of service discovery."""
    exporter = service.get_exporter_or_raise(session, exporter_id=exporter_id)
    return ExporterRead.model_validate(
        service.update_exporter(session, actor=principal.name, exporter=exporter, data=body)
    )


@exporters_router.delete("/{exporter_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_exporter(exporter_id: str, session: SessionDep, principal: AdminDep) -> Response:
    """Delete an exporter."""
    service.delete_exporter(
        session,
        actor=principal.name,
        exporter=service.get_exporter_or_raise(session, exporter_id=exporter_id),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
