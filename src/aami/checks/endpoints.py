"""/api/v1/script-templates, /api/v1/script-policies and the nodes' /api/v1/checks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from aami.api.deps import AdminDep, PageDep, PrincipalDep, SessionDep, revision_counters
from aami.api.state import services
from aami.auth.tokens import Principal
from aami.checks import service
from aami.checks.schemas import (
    EffectiveCheck,
    GroupChecksExplained,
    Scope,
    ScriptPolicyCreate,
    ScriptPolicyRead,
    ScriptPolicyUpdate,
    ScriptTemplateCreate,
    ScriptTemplateRead,
    ScriptTemplateUpdate,
    SigningKeys,
    TargetChecksExplained,
)
from aami.common.filters import search_param
from aami.common.http_cache import conditional_response
from aami.common.schemas import Page
from aami.db.session import session_scope
from aami.errors import Forbidden
from aami.groups import service as groups
from aami.targets import service as targets

templates_router = APIRouter(prefix="/script-templates", tags=["script templates"])
policies_router = APIRouter(prefix="/script-policies", tags=["script policies"])
checks_router = APIRouter(prefix="/checks", tags=["checks"])


@templates_router.post("", status_code=status.HTTP_201_CREATED, response_model=ScriptTemplateRead)
def create_template(
    body: ScriptTemplateCreate, session: SessionDep, principal: AdminDep
) -> ScriptTemplateRead:
    """Create a check script; its sha256 ``hash`` is computed."""
    return ScriptTemplateRead.model_validate(
        service.create_template(session, actor=principal.name, data=body)
    )


@templates_router.get("", response_model=Page[ScriptTemplateRead])
def list_templates(
    session: SessionDep,
    _: AdminDep,
    page: PageDep,
    name: Annotated[str | None, Query(max_length=63)] = None,
    script_type: Annotated[str | None, Query(max_length=63)] = None,
    q: Annotated[str | None, search_param("id, name, script_type, description or language")] = None,
) -> Page[ScriptTemplateRead]:
    """List check scripts by name."""
    rows, total = service.list_templates(
        session, name=name, script_type=script_type, q=q, offset=page.offset, limit=page.limit
    )
    return Page.of(
        [ScriptTemplateRead.model_validate(t) for t in rows],
        page=page.page,
        limit=page.limit,
        total=total,
    )


@templates_router.get("/{template_id}", response_model=ScriptTemplateRead)
def get_template(template_id: str, session: SessionDep, _: AdminDep) -> ScriptTemplateRead:
    """Get a check script by id or name."""
    return ScriptTemplateRead.model_validate(
        service.get_template_or_raise(session, ref=template_id)
    )


@templates_router.put("/{template_id}", response_model=ScriptTemplateRead)
def update_template(
    template_id: str, body: ScriptTemplateUpdate, session: SessionDep, principal: AdminDep
) -> ScriptTemplateRead:
    """Change the fields sent; a new script gets a new hash."""
    template = service.get_template_or_raise(session, ref=template_id)
    return ScriptTemplateRead.model_validate(
        service.update_template(session, actor=principal.name, template=template, data=body)
    )


@templates_router.delete("/{template_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_template(template_id: str, session: SessionDep, principal: AdminDep) -> Response:
    """Delete a check script no policy uses."""
    service.delete_template(
        session,
        actor=principal.name,
        template=service.get_template_or_raise(session, ref=template_id),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@policies_router.post("", status_code=status.HTTP_201_CREATED, response_model=ScriptPolicyRead)
def create_policy(
    body: ScriptPolicyCreate, session: SessionDep, principal: AdminDep
) -> ScriptPolicyRead:
    """Apply a check script to every node, a group or one target."""
    return service.read_policy(service.create_policy(session, actor=principal.name, data=body))


@policies_router.get("", response_model=Page[ScriptPolicyRead])
def list_policies(
    session: SessionDep,
    _: AdminDep,
    page: PageDep,
    template_id: Annotated[str | None, Query(description="script template id or name")] = None,
    scope: Scope | None = None,
    group_id: Annotated[str | None, Query(description="group id or name")] = None,
    target_id: Annotated[str | None, Query(description="target id or hostname")] = None,
    is_active: bool | None = None,
) -> Page[ScriptPolicyRead]:
    """List policies."""
    rows, total = service.list_policies(
        session,
        template=template_id,
        scope=scope,
        group=group_id,
        target=target_id,
        is_active=is_active,
        offset=page.offset,
        limit=page.limit,
    )
    return Page.of(
        [service.read_policy(p) for p in rows], page=page.page, limit=page.limit, total=total
    )


@policies_router.get("/{policy_id}", response_model=ScriptPolicyRead)
def get_policy(policy_id: str, session: SessionDep, _: AdminDep) -> ScriptPolicyRead:
    """Get a policy."""
    return service.read_policy(service.get_policy_or_raise(session, policy_id=policy_id))


@policies_router.put("/{policy_id}", response_model=ScriptPolicyRead)
def update_policy(
    policy_id: str, body: ScriptPolicyUpdate, session: SessionDep, principal: AdminDep
) -> ScriptPolicyRead:
    """Change config, priority or is_active (``false`` and ``0`` are values)."""
    policy = service.get_policy_or_raise(session, policy_id=policy_id)
    return service.read_policy(
        service.update_policy(session, actor=principal.name, policy=policy, data=body)
    )


@policies_router.delete("/{policy_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_policy(policy_id: str, session: SessionDep, principal: AdminDep) -> Response:
    """Delete a policy."""
    service.delete_policy(
        session,
        actor=principal.name,
        policy=service.get_policy_or_raise(session, policy_id=policy_id),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _checks_response(
    request: Request, principal: Principal, ref: str, if_none_match: str | None
) -> Response:
    """The hot path of every node's poll: no database work when nothing changed."""
    app = services(request)
    counters = await revision_counters(app)
    key = (counters.get("checks", 0), counters.get("inventory", 0), ref.lower())
    doc = app.checks_cache.get(key)
    if doc is None:

        def build() -> service.ChecksDocument:
            with session_scope(app.sessionmaker) as session:
                return service.checks_document(session, ref=ref, signer=app.signer)

        doc = await run_in_threadpool(build)
        app.checks_cache.put(key, doc)
    if principal.role != "admin" and principal.target_id != doc.target_id:
        raise Forbidden("a node token reads only its own node's checks")
    return conditional_response(doc.body, doc.etag, if_none_match)


_CHECKS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": list[EffectiveCheck], "description": "the node's effective checks"},
    304: {"description": "unchanged since the ETag sent"},
}


@checks_router.get("/target/{target_id}", responses=_CHECKS_RESPONSES)
async def checks_for_target(
    target_id: str,
    request: Request,
    principal: PrincipalDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The checks a node runs (admin, or that node's own token)."""
    return await _checks_response(request, principal, target_id, if_none_match)


@checks_router.get("/node", responses=_CHECKS_RESPONSES)
async def checks_for_node(
    request: Request,
    principal: PrincipalDep,
    hostname: Annotated[str, Query(min_length=1, max_length=253)],
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The checks a node runs, found by hostname."""
    return await _checks_response(request, principal, hostname, if_none_match)


@checks_router.get("/signing-keys", response_model=SigningKeys)
async def signing_keys(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """The keys checks are signed with, current first, each endorsed by the others (admin or
    a node token). A node pins them when it registers and follows a rotation through them."""
    if principal.role not in ("admin", "node"):
        raise Forbidden("only nodes and admins read the signing keys")
    return services(request).signer.document


@checks_router.get("/target/{target_id}/explain", response_model=TargetChecksExplained)
def explain_target(target_id: str, session: SessionDep, _: AdminDep) -> TargetChecksExplained:
    """Every check that reaches the target, on or off, with the source of each value."""
    target = targets.get_or_raise(session, ref=target_id)
    return TargetChecksExplained(
        target_id=target.id,
        hostname=target.hostname,
        group_ids=target.group_ids,
        checks=service.explain(session, target_id=target.id, group_ids=target.group_ids),
    )


@checks_router.get("/group/{group_id}", response_model=GroupChecksExplained)
def checks_for_group(group_id: str, session: SessionDep, _: AdminDep) -> GroupChecksExplained:
    """What a node in this group (and no other, with no policy of its own) would run."""
    group = groups.get_or_raise(session, ref=group_id)
    return GroupChecksExplained(
        group_id=group.id,
        checks=service.explain(session, target_id=None, group_ids=[group.id]),
    )
