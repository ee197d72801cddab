"""Bootstrap tokens and node self-registration."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from aami.audit import service as audit
from aami.auth.tokens import generate_token, hash_token
from aami.common.ids import new_id
from aami.db.base import utcnow
from aami.db.locking import lock_for_update
from aami.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from aami.groups.repository import GroupRepository
from aami.registration.models import BootstrapToken, NodeToken
from aami.registration.repository import BootstrapTokenRepository, NodeTokenRepository
from aami.registration.schemas import (
    BootstrapTokenCreate,
    BootstrapTokenRead,
    RegisterRequest,
    RegisterResponse,
)
from aami.targets.models import Exporter, Target, TargetGroup
from aami.targets.repository import TargetRepository


def _snapshot(token: BootstrapToken) -> dict[str, Any]:
    return BootstrapTokenRead.model_validate(token).model_dump(mode="json")


def get_or_raise(session: Session, *, token_id: str) -> BootstrapToken:
    token = BootstrapTokenRepository(session).get(token_id)
    if token is None:
        raise NotFound.of("bootstrap token", token_id)
    return token


def list_tokens(
    session: Session, *, offset: int = 0, limit: int = 50
) -> tuple[Sequence[BootstrapToken], int]:
    return BootstrapTokenRepository(session).find(offset=offset, limit=limit)


def create(
    session: Session, *, actor: str, data: BootstrapTokenCreate
) -> tuple[BootstrapToken, str]:
    """Create a token; the secret is returned once and only its hash is kept."""
    repo = BootstrapTokenRepository(session)
    token_id = data.id or new_id("bt")
    if repo.get(token_id) is not None:
        raise Conflict(f"bootstrap token id {token_id!r} already exists")
    if repo.name_taken(data.name):
        raise Conflict(f"a bootstrap token named {data.name!r} already exists")
    group_id = None
    if data.group_id is not None:
        group = GroupRepository(session).get_by_ref(data.group_id)
        if group is None:
            raise Invalid(f"group_id: unknown group {data.group_id!r}")
        group_id = group.id
    secret = generate_token("aamib")
    token = BootstrapToken(
        id=token_id,
        name=data.name,
        token_hash=hash_token(secret),
        max_uses=data.max_uses,
        uses=0,
        expires_at=data.expires_at,
        group_id=group_id,
        labels=data.labels,
    )
    repo.add(token)
    audit.record(
        session,
        actor=actor,
        action="create",
        entity_type="bootstrap_token",
        entity_id=token.id,
        after=_snapshot(token),
    )
    return token, secret


def delete(session: Session, *, actor: str, token: BootstrapToken) -> None:
    lock_for_update(session, token)
    before = _snapshot(token)
    BootstrapTokenRepository(session).delete(token)
    audit.record(
        session,
        actor=actor,
        action="delete",
        entity_type="bootstrap_token",
        entity_id=token.id,
        before=before,
    )


def register(session: Session, *, secret: str, data: RegisterRequest) -> RegisterResponse:
    """Create or re-register the node named by hostname; return its node token."""
    repo = BootstrapTokenRepository(session)
    token = repo.get_by_hash(hash_token(secret))
    if token is None:
        raise Unauthorized("invalid bootstrap token")
    now = utcnow()
    if not repo.consume(token.id, now):
        if token.expires_at is not None and token.expires_at <= now:
            raise Forbidden(f"bootstrap token {token.name!r} expired at {token.expires_at}")
        raise Forbidden(f"bootstrap token {token.name!r} has no uses left ({token.max_uses})")
    session.refresh(token)

    targets = TargetRepository(session)
    target = targets.get_by_ref(data.hostname)
    action = "update" if target is not None else "create"
    before = None
    if target is None:
        target = Target(
            id=new_id("tgt"),
            hostname=data.hostname,
            ip_address=data.ip_address,
            labels={**token.labels, **data.labels},
            status="active",
        )
        if token.group_id is not None:
            target.memberships = [TargetGroup(group_id=token.group_id, position=0)]
        targets.add(target)
    else:
        lock_for_update(session, target)
        before = {"ip_address": target.ip_address, "labels": dict(target.labels)}
        target.ip_address = data.ip_address
        target.labels = {**target.labels, **token.labels, **data.labels}
        if token.group_id is not None and token.group_id not in target.group_ids:
            target.memberships.append(
                TargetGroup(group_id=token.group_id, position=len(target.memberships))
            )
    target.last_seen = now
    if not any(e.type == "node_exporter" for e in target.exporters):
        target.exporters.append(
            Exporter(
                id=new_id("exp"),
                type="node_exporter",
                port=data.node_exporter_port,
                metrics_path="/metrics",
                enabled=True,
            )
        )
    session.flush()
    secret_for_node = generate_token("aamin")
    NodeTokenRepository(session).replace(
        NodeToken(id=new_id("nt"), target_id=target.id, token_hash=hash_token(secret_for_node))
    )
    session.refresh(target)
    audit.record(
        session,
        actor=f"bootstrap:{token.name}",
        action=action,
        entity_type="target",
        entity_id=target.id,
        before=before,
        after={
            "hostname": target.hostname,
            "ip_address": target.ip_address,
            "labels": target.labels,
            "group_ids": target.group_ids,
        },
    )
    return RegisterResponse(
        target_id=target.id,
        hostname=target.hostname,
        group_ids=target.group_ids,
        node_token=secret_for_node,
    )
