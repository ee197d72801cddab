"""Which checks a target runs, and with what config (pure: plain data in, plain data out).

For each script template, the policies that reach a target are the global ones, those
of any group the target is in, and those naming the target itself. The most specific
scope wins (target > group > global); within a scope, the higher ``priority`` wins, then
the group listed first for the target (its primary group), then the policy id. If that
winning policy is inactive, the check is off for the target.

Config is the template's ``default_config`` overlaid, key by key, by every active policy
that reaches the target, from the least to the most specific (within a scope, from the
lowest priority to the highest), so each key comes from the most specific layer that
sets it. Keys keep the template's order first, so positional arguments stay stable.

This one function is used by every view of effective checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "SCOPE_RANK",
    "Decision",
    "KeySource",
    "PolicyView",
    "TemplateView",
    "resolve",
    "resolve_all",
]

Scope = Literal["global", "group", "target"]
SCOPE_RANK: dict[str, int] = {"global": 0, "group": 1, "target": 2}


@dataclass(frozen=True, slots=True)
class TemplateView:
    id: str
    name: str
    default_config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PolicyView:
    id: str
    template_id: str
    scope: Scope
    priority: int = 100
    is_active: bool = True
    config: Mapping[str, Any] = field(default_factory=dict)
    group_id: str | None = None
    target_id: str | None = None


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where one config key's value came from: ``template`` or a policy."""

    value: Any
    layer: Literal["template", "global", "group", "target"]
    policy_id: str | None = None
    group_id: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    template_id: str
    enabled: bool
    winner: PolicyView
    config: dict[str, Any]
    sources: dict[str, KeySource]
    considered: tuple[PolicyView, ...]


def _reaches(policy: PolicyView, target_id: str, group_ids: Sequence[str]) -> bool:
    if policy.scope == "global":
        return True
    if policy.scope == "group":
        return policy.group_id in group_ids
    return policy.target_id == target_id


def resolve(
    template: TemplateView,
    policies: Iterable[PolicyView],
    *,
    target_id: str,
    group_ids: Sequence[str],
) -> Decision | None:
    """Decide one template for one target; None when no policy reaches it."""
    position = {group_id: index for index, group_id in enumerate(group_ids)}

    def strength(policy: PolicyView) -> tuple[int, int, int, str]:
        # Larger is stronger; group order and id only break ties, the earlier the stronger.
        group_order = -position.get(policy.group_id or "", 0)
        return (SCOPE_RANK[policy.scope], policy.priority, group_order, _invert(policy.id))

    reaching = sorted(
        (p for p in policies if p.template_id == template.id and _reaches(p, target_id, group_ids)),
        key=strength,
    )
    if not reaching:
        return None
    winner = reaching[-1]
    sources: dict[str, KeySource] = {
        key: KeySource(value, "template") for key, value in template.default_config.items()
    }
    for policy in reaching:
        if not policy.is_active:
            continue
        for key, value in policy.config.items():
            sources[key] = KeySource(value, policy.scope, policy.id, policy.group_id)
    return Decision(
        template_id=template.id,
        enabled=winner.is_active,
        winner=winner,
        config={key: source.value for key, source in sources.items()},
        sources=sources,
        considered=tuple(reversed(reaching)),
    )


def _invert(text: str) -> str:
    # Sorts "a" after "b", so that among equals the lowest id is the strongest.
    return "".join(chr(0x10FFFF - ord(ch)) for ch in text)


def resolve_all(
    templates: Iterable[TemplateView],
    policies: Sequence[PolicyView],
    *,
    target_id: str,
    group_ids: Sequence[str],
) -> list[Decision]:
    """Decide every template for one target, in template order; off checks included."""
    by_template: dict[str, list[PolicyView]] = {}
    for policy in policies:
        by_template.setdefault(policy.template_id, []).append(policy)
    decisions = []
    for template in templates:
        decision = resolve(
            template, by_template.get(template.id, ()), target_id=target_id, group_ids=group_ids
        )
        if decision is not None:
            decisions.append(decision)
    return decisions
