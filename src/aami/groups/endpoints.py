"""/api/v1/groups."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from aami.api.deps import AdminDep, PageDep, SessionDep
from aami.common.filters import parse_label_filter, search_param
from aami.common.schemas import Page
from aami.groups import service
from aami.groups.schemas import GroupCreate, GroupRead, GroupUpdate

router = APIRouter(prefix="/groups", tags=["groups"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=GroupRead)
def create_group(body: GroupCreate, session: SessionDep, principal: AdminDep) -> GroupRead:
    """Create a group."""
    return GroupRead.model_validate(service.create(session, actor=principal.name, data=body))


@router.get("", response_model=Page[GroupRead])
def list_groups(
    session: SessionDep,
    _: AdminDep,
    page: PageDep,
    name: Annotated[str | None, Query(max_length=200)] = None,
    label: Annotated[str | None, Query(description="key=value")] = None,
    q: Annotated[str | None, search_param("id, name, description or labels")] = None,
) -> Page[GroupRead]:
    """List groups by id."""
    rows, total = service.list_groups(
        session,
        name=name,
        label=parse_label_filter(label),
        q=q,
        offset=page.offset,
        limit=page.limit,
    )
    return Page.of(
        [GroupRead.model_validate(g) for g in rows], page=page.page, limit=page.limit, total=total
    )


@router.get("/{group_id}", response_model=GroupRead)
def get_group(group_id: str, session: SessionDep, _: AdminDep) -> GroupRead:
    """Get a group by id or name."""
    return GroupRead.model_validate(service.get_or_raise(session, ref=group_id))


@router.put("/{group_id}", response_model=GroupRead)
def update_group(
    group_id: str, body: GroupUpdate, session: SessionDep, principal: AdminDep
) -> GroupRead:
    """Change the fields sent; the others stay."""
    group = service.get_or_raise(session, ref=group_id)
    return GroupRead.model_validate(
        service.update(session, actor=principal.name, group=group, data=body)
    )


@router.delete("/{group_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_group(group_id: str, session: SessionDep, principal: AdminDep) -> Response:
    """Delete a group that no target uses."""
    service.delete(session, actor=principal.name, group=service.get_or_raise(session, ref=group_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
