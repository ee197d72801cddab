"""Bootstrap tokens, node self-registration and the registration queue.

A bootstrap token registers new nodes only. Re-registering an existing hostname needs
that node's current node token; without it, or when the node claims an address other than
the one it connects from, the registration waits in the queue for an admin, as a
certificate signing request does. An approved registration is applied at once; the node
collects its node token, once, by polling with the poll token it was given. Node-supplied
labels are limited in number, key and value length, and to the keys the bootstrap token
allows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from aami.audit import service as audit
from aami.auth.tokens import generate_token, hash_token, matches
from aami.common.ids import new_id
from aami.common.schemas import LABEL_NAME
from aami.config import Settings
from aami.db.base import utcnow
from aami.db.locking import lock_for_update
from aami.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from aami.groups.repository import GroupRepository
from aami.registration.addresses import same_host
from aami.registration.models import BootstrapToken, NodeToken, PendingRegistration
from aami.registration.repository import (
    BootstrapTokenRepository,
    NodeTokenRepository,
    RegistrationRepository,
)
from aami.registration.schemas import (
    BootstrapTokenCreate,
    BootstrapTokenRead,
    PendingRegistrationRead,
    RegisterRequest,
    RegisterResponse,
    RegistrationStatus,
    TargetNow,
    snapshot,
)
from aami.targets.models import Exporter, Target, TargetGroup

POLL_INTERVAL = 5.0  # seconds between a waiting node's polls (a hint in the 202 answer)
_SHOWN = 10  # names listed in one error message


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
        allowed_labels=data.allowed_labels,
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


# ---- node-supplied labels ----------------------------------------------------------------


def _names(keys: Iterable[str]) -> str:
    """Up to ``_SHOWN`` keys for a message, each cut short, then how many more."""
    keys = sorted(keys)
    shown = ", ".join(repr(k if len(k) <= 64 else k[:61] + "...") for k in keys[:_SHOWN])
    return shown + (f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else "")


def check_node_labels(
    labels: Mapping[str, str], *, token: BootstrapToken, settings: Settings
) -> dict[str, str]:
    """Refuse node-supplied labels over the limits or outside the token's allow-list.

    The count is checked first, before any key is looked at: a flood is refused for the
    price of ``len``.
    """
    limit = settings.registration_max_labels
    if len(labels) > limit:
        raise Invalid(
            f"labels: {len(labels)} labels sent; a node may send at most {limit} "
            "(AAMI_REGISTRATION_MAX_LABELS)"
        )
    pattern = re.compile(settings.registration_label_key_pattern)
    bad = [
        k for k in labels if not (pattern.match(k) and LABEL_NAME.match(k)) or k.startswith("__")
    ]
    if bad:
        raise Invalid(
            f"labels: invalid label names {_names(bad)}: a key must match "
            f"{settings.registration_label_key_pattern} and be a Prometheus label name "
            "not starting with __"
        )
    allowed = set(token.allowed_labels)
    refused = [k for k in labels if k not in allowed]
    if refused:
        allows = ", ".join(sorted(allowed)) if allowed else "no node-supplied labels"
        raise Invalid(
            f"labels: {_names(refused)} not allowed by bootstrap token {token.name!r} "
            f"(it allows {allows}; its allowed_labels are set when it is created)"
        )
    longest = settings.registration_label_value_max
    long_values = [k for k, v in labels.items() if len(v) > longest]
    if long_values:
        raise Invalid(
            f"labels: the values of {_names(long_values)} are longer than {longest} "
            "characters (AAMI_REGISTRATION_LABEL_VALUE_MAX)"
        )
    return dict(labels)


# ---- registering -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Queued:
    """A registration that waits for an admin, and the secret its node polls with."""

    registration: PendingRegistration
    poll_token: str


def register(
    session: Session,
    *,
    secret: str,
    data: RegisterRequest,
    source: str | None,
    settings: Settings,
) -> RegisterResponse | Queued:
    """Register a new node, or re-register one that proves it holds its node token; queue
    anything else for an admin. ``source`` is the address the request came from."""
    tokens = BootstrapTokenRepository(session)
    token = tokens.get_by_hash(hash_token(secret))
    if token is None:
        raise Unauthorized("invalid bootstrap token")
    labels = check_node_labels(data.labels, token=token, settings=settings)
    registrations = RegistrationRepository(session)
    target = registrations.target_by_hostname(data.hostname)
    if target is None and registrations.target_by_id(data.hostname) is not None:
        raise Conflict(
            f"hostname {data.hostname!r} is the id of another target; a node may not "
            "register under another target's id"
        )
    reasons = []
    if target is not None:
        if data.node_token is None:
            reasons.append(
                f"{data.hostname} is already registered (target {target.id}) and the request "
                "carries no node_token: a bootstrap token alone registers new nodes only"
            )
        elif NodeTokenRepository(session).target_for(hash_token(data.node_token)) != target.id:
            reasons.append(
                f"the node_token sent is not the current token of {data.hostname} "
                f"(target {target.id})"
            )
    if not same_host(data.ip_address, source):
        reasons.append(
            f"ip_address {data.ip_address} is not the address the request came from "
            f"({source or 'unknown'})"
        )
    now = utcnow()
    if not tokens.consume(token.id, now):
        if token.expires_at is not None and token.expires_at <= now:
            raise Forbidden(f"bootstrap token {token.name!r} expired at {token.expires_at}")
        raise Forbidden(f"bootstrap token {token.name!r} has no uses left ({token.max_uses})")
    session.refresh(token)
    if reasons:
        # A queued registration counts as a use too: a token's max_uses bounds the queue.
        registrations.purge_expired(now)
        waiting = registrations.count_live(now)
        if waiting >= settings.registration_pending_max:
            raise Conflict(  # rolls the use back with the rest of the request
                f"{waiting} registrations already wait for an admin "
                "(AAMI_REGISTRATION_PENDING_MAX): approve or reject some first"
            )
        return _queue(
            session,
            token=token,
            data=data,
            labels=labels,
            source=source,
            target=target,
            reasons=reasons,
            now=now,
            ttl=settings.registration_pending_ttl,
        )
    target = _apply(
        session,
        actor=f"bootstrap:{token.name}",
        token=token,
        hostname=data.hostname,
        ip_address=data.ip_address,
        labels=labels,
        node_exporter_port=data.node_exporter_port,
        now=now,
    )
    return RegisterResponse(
        target_id=target.id,
        hostname=target.hostname,
        group_ids=target.group_ids,
        node_token=_issue_node_token(session, target),
    )


def _apply(
    session: Session,
    *,
    actor: str,
    token: BootstrapToken,
    hostname: str,
    ip_address: str,
    labels: dict[str, str],
    node_exporter_port: int,
    now: datetime,
) -> Target:
    """Create the node, or update it (address, labels, the token's group); audit it."""
    target = RegistrationRepository(session).target_by_hostname(hostname)
    action = "update" if target is not None else "create"
    before = None
    if target is None:
        target = Target(
            id=new_id("tgt"),
            hostname=hostname,
            ip_address=ip_address,
            labels={**token.labels, **labels},
            status="active",
        )
        if token.group_id is not None:
            target.memberships = [TargetGroup(group_id=token.group_id, position=0)]
        session.add(target)
    else:
        lock_for_update(session, target)
        before = {
            "ip_address": target.ip_address,
            "labels": dict(target.labels),
            "group_ids": target.group_ids,
        }
        target.ip_address = ip_address
        target.labels = {**target.labels, **token.labels, **labels}
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
                port=node_exporter_port,
                metrics_path="/metrics",
                enabled=True,
            )
        )
    session.flush()
    session.refresh(target)
    audit.record(
        session,
        actor=actor,
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
    return target


def _issue_node_token(session: Session, target: Target) -> str:
    """Give the node a new token, revoking the ones it had; return the secret (shown once)."""
    secret = generate_token("aamin")
    NodeTokenRepository(session).replace(
        NodeToken(id=new_id("nt"), target_id=target.id, token_hash=hash_token(secret))
    )
    return secret


def _queue(
    session: Session,
    *,
    token: BootstrapToken,
    data: RegisterRequest,
    labels: dict[str, str],
    source: str | None,
    target: Target | None,
    reasons: list[str],
    now: datetime,
    ttl: float,
) -> Queued:
    """Record a registration for an admin to decide; nothing about the target changes."""
    poll_token = generate_token("aamip")
    registration = PendingRegistration(
        id=new_id("reg"),
        status="pending",
        hostname=data.hostname,
        ip_address=data.ip_address,
        source_address=source,
        labels=labels,
        node_exporter_port=data.node_exporter_port,
        bootstrap_token_id=token.id,
        target_id=target.id if target is not None else None,
        reasons=reasons,
        poll_token_hash=hash_token(poll_token),
        created_at=now,
        expires_at=now + timedelta(seconds=ttl),
    )
    RegistrationRepository(session).add(registration)
    audit.record(
        session,
        actor=f"bootstrap:{token.name}",
        action="create",
        entity_type="registration",
        entity_id=registration.id,
        after=snapshot(read(session, registration)),
    )
    return Queued(registration, poll_token)


# ---- the queue ---------------------------------------------------------------------------


def read(session: Session, registration: PendingRegistration) -> PendingRegistrationRead:
    """A registration with what it would change: its token's group and the target now."""
    token = BootstrapTokenRepository(session).get(registration.bootstrap_token_id)
    target = RegistrationRepository(session).target_by_hostname(registration.hostname)
    return PendingRegistrationRead(
        id=registration.id,
        status=registration.status,
        hostname=registration.hostname,
        ip_address=registration.ip_address,
        source_address=registration.source_address,
        labels=registration.labels,
        node_exporter_port=registration.node_exporter_port,
        bootstrap_token_id=registration.bootstrap_token_id,
        bootstrap_token_name=token.name if token is not None else "",
        group_id=token.group_id if token is not None else None,
        token_labels=dict(token.labels) if token is not None else {},
        target_id=registration.target_id,
        target=(
            TargetNow(
                id=target.id,
                ip_address=target.ip_address,
                group_ids=target.group_ids,
                labels=dict(target.labels),
            )
            if target is not None
            else None
        ),
        reasons=list(registration.reasons),
        created_at=registration.created_at,
        expires_at=registration.expires_at,
        decided_at=registration.decided_at,
        decided_by=registration.decided_by,
        decision_reason=registration.decision_reason,
    )


def get_registration_or_raise(session: Session, *, registration_id: str) -> PendingRegistration:
    """A registration that has not expired, else NotFound."""
    registration = RegistrationRepository(session).get(registration_id)
    if registration is None:
        raise NotFound.of("registration", registration_id)
    if registration.expires_at <= utcnow():
        raise NotFound(f"registration {registration_id!r} expired at {registration.expires_at}")
    return registration


def list_pending(
    session: Session, *, offset: int = 0, limit: int = 50
) -> tuple[Sequence[PendingRegistration], int]:
    """Registrations waiting for a decision, oldest first."""
    return RegistrationRepository(session).find(
        status="pending", now=utcnow(), offset=offset, limit=limit
    )


def _decidable(session: Session, registration_id: str) -> PendingRegistration:
    registration = get_registration_or_raise(session, registration_id=registration_id)
    lock_for_update(session, registration)
    if registration.status != "pending":
        raise Conflict(
            f"registration {registration_id!r} is {registration.status}, not pending "
            f"(decided by {registration.decided_by} at {registration.decided_at})"
        )
    return registration


def approve(
    session: Session, *, actor: str, registration_id: str, settings: Settings
) -> PendingRegistration:
    """Apply a queued registration (address, labels within today's limits, the token's
    group); its node collects a new node token with its next poll."""
    registration = _decidable(session, registration_id)
    token = BootstrapTokenRepository(session).get(registration.bootstrap_token_id)
    if token is None:  # the foreign key deletes the registration with its token
        raise NotFound(f"the bootstrap token of registration {registration_id!r} was revoked")
    before = snapshot(read(session, registration))
    labels = check_node_labels(registration.labels, token=token, settings=settings)
    now = utcnow()
    target = _apply(
        session,
        actor=f"{actor} (approved {registration.id})",
        token=token,
        hostname=registration.hostname,
        ip_address=registration.ip_address,
        labels=labels,
        node_exporter_port=registration.node_exporter_port,
        now=now,
    )
    registration.status = "approved"
    registration.target_id = target.id
    registration.decided_at = now
    registration.decided_by = actor
    # The node has a full period to collect its token, however late the approval came.
    registration.expires_at = now + timedelta(seconds=settings.registration_pending_ttl)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="approve",
        entity_type="registration",
        entity_id=registration.id,
        before=before,
        after=snapshot(read(session, registration)),
    )
    return registration


def reject(
    session: Session, *, actor: str, registration_id: str, reason: str | None = None
) -> PendingRegistration:
    """Refuse a queued registration: nothing is applied; its node learns it at its next poll."""
    registration = _decidable(session, registration_id)
    before = snapshot(read(session, registration))
    registration.status = "rejected"
    registration.decided_at = utcnow()
    registration.decided_by = actor
    registration.decision_reason = reason
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="reject",
        entity_type="registration",
        entity_id=registration.id,
        before=before,
        after=snapshot(read(session, registration)),
    )
    return registration


def poll(session: Session, *, registration_id: str, secret: str) -> RegistrationStatus:
    """What a waiting node learns: pending, or approved with its node token (once)."""
    repo = RegistrationRepository(session)
    registration = repo.get(registration_id)
    if registration is None:
        raise NotFound(
            f"registration {registration_id!r} does not exist (an expired one is removed; "
            "register again)"
        )
    if not matches(hash_token(secret), registration.poll_token_hash):
        raise Unauthorized(f"that is not the poll token of registration {registration_id!r}")
    now = utcnow()
    if registration.expires_at <= now:
        raise NotFound(
            f"registration {registration_id!r} expired at {registration.expires_at}; register again"
        )
    if registration.status == "rejected":
        why = f": {registration.decision_reason}" if registration.decision_reason else ""
        raise Forbidden(
            f"registration {registration_id!r} was rejected by {registration.decided_by}{why}"
        )
    if registration.status == "pending":
        return RegistrationStatus(
            status="pending",
            registration_id=registration.id,
            hostname=registration.hostname,
            expires_at=registration.expires_at,
            reasons=list(registration.reasons),
        )
    if not repo.collect(registration.id, now):
        raise Conflict(
            f"the node token of registration {registration_id!r} was already collected; "
            "it is not shown twice (register again, or ask an admin)"
        )
    target = repo.target_by_id(registration.target_id or "")
    if target is None:
        raise NotFound(
            f"target {registration.target_id!r} of registration {registration_id!r} was "
            "deleted after the approval; register again"
        )
    lock_for_update(session, target)
    target.last_seen = now
    node_token = _issue_node_token(session, target)
    audit.record(
        session,
        actor=f"registration:{registration.id}",
        action="update",
        entity_type="target",
        entity_id=target.id,
        after={"issued": "a new node token, collected by the approved node"},
    )
    return RegistrationStatus(
        status="approved",
        registration_id=registration.id,
        hostname=registration.hostname,
        expires_at=registration.expires_at,
        reasons=list(registration.reasons),
        target_id=target.id,
        group_ids=target.group_ids,
        node_token=node_token,
    )
