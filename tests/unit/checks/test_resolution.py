"""The one resolution function: the spec's cases, then invariants over random policies."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from aami.checks.resolution import SCOPE_RANK, Decision, PolicyView, TemplateView, resolve

MOUNT = TemplateView("mount", "mount-check", {"paths": "/data", "timeout": 5})


def _resolve(
    *policies: PolicyView, groups: tuple[str, ...] = ("ml",), target: str = "n1"
) -> Decision | None:
    return resolve(MOUNT, list(policies), target_id=target, group_ids=list(groups))


def test_no_policy_no_check() -> None:
    assert _resolve() is None
    other_group = PolicyView("p", "mount", "group", group_id="other", config={"paths": "/x"})
    assert _resolve(other_group) is None


def test_global_only() -> None:
    decision = _resolve(PolicyView("g", "mount", "global", config={"timeout": 9}))
    assert decision is not None
    assert decision.enabled
    assert decision.config == {"paths": "/data", "timeout": 9}
    assert decision.sources["paths"].layer == "template"
    assert decision.sources["timeout"].layer == "global"


def test_group_overrides_global() -> None:
    decision = _resolve(
        PolicyView("g", "mount", "global", config={"paths": "/global", "timeout": 9}),
        PolicyView(
            "m",
            "mount",
            "group",
            group_id="ml",
            config={"paths": "/data,/mnt/models,/mnt/datasets"},
        ),
    )
    assert decision is not None
    assert decision.config == {"paths": "/data,/mnt/models,/mnt/datasets", "timeout": 9}
    assert decision.sources["paths"].policy_id == "m"
    assert decision.sources["timeout"].policy_id == "g"
    assert decision.winner.id == "m"


def test_target_overrides_group() -> None:
    decision = _resolve(
        PolicyView("m", "mount", "group", group_id="ml", config={"paths": "/a"}, priority=999),
        PolicyView("t", "mount", "target", target_id="n1", config={"paths": "/b"}, priority=0),
    )
    assert decision is not None
    assert decision.config["paths"] == "/b"
    assert decision.winner.id == "t"


def test_two_group_policies_by_priority() -> None:
    low = PolicyView(
        "low", "mount", "group", group_id="ml", priority=10, config={"paths": "/low", "timeout": 1}
    )
    high = PolicyView(
        "high", "mount", "group", group_id="ml", priority=200, config={"paths": "/high"}
    )
    decision = _resolve(low, high)
    assert decision is not None
    assert decision.config == {"paths": "/high", "timeout": 1}
    assert decision.winner.id == "high"
    zero = PolicyView("zero", "mount", "group", group_id="ml", priority=0, is_active=False)
    decision = _resolve(zero, high)
    assert decision is not None
    assert decision.enabled


def test_inactive_group_policy_switches_off_a_global_check() -> None:
    decision = _resolve(
        PolicyView("g", "mount", "global", config={"paths": "/g"}),
        PolicyView(
            "off", "mount", "group", group_id="ml", is_active=False, config={"paths": "/ignored"}
        ),
    )
    assert decision is not None
    assert decision.enabled is False
    assert decision.winner.id == "off"
    assert decision.config["paths"] == "/g"  # an inactive policy sets nothing
    # and a target policy switches it back on for one node
    back_on = _resolve(
        PolicyView("g", "mount", "global"),
        PolicyView("off", "mount", "group", group_id="ml", is_active=False),
        PolicyView("on", "mount", "target", target_id="n1"),
    )
    assert back_on is not None
    assert back_on.enabled


def test_target_in_two_groups() -> None:
    in_ml = PolicyView("pm", "mount", "group", group_id="ml", config={"paths": "/ml"})
    in_gpu = PolicyView("pg", "mount", "group", group_id="gpu", config={"paths": "/gpu"})
    primary_ml = _resolve(in_ml, in_gpu, groups=("ml", "gpu"))
    primary_gpu = _resolve(in_ml, in_gpu, groups=("gpu", "ml"))
    assert primary_ml is not None
    assert primary_gpu is not None
    # equal priority: the primary group (listed first) wins
    assert primary_ml.config["paths"] == "/ml"
    assert primary_gpu.config["paths"] == "/gpu"
    stronger = PolicyView(
        "pg2", "mount", "group", group_id="gpu", priority=101, config={"paths": "/gpu-priority"}
    )
    decision = _resolve(in_ml, stronger, groups=("ml", "gpu"))
    assert decision is not None
    assert decision.config["paths"] == "/gpu-priority"


def test_config_keeps_template_key_order() -> None:
    decision = _resolve(
        PolicyView(
            "m", "mount", "group", group_id="ml", config={"extra": 1, "timeout": 2, "paths": "/p"}
        )
    )
    assert decision is not None
    assert list(decision.config) == ["paths", "timeout", "extra"]


# ---- invariants ------------------------------------------------------------------------

GROUPS = ("a", "b", "c")
policy_strategy = st.builds(
    PolicyView,
    id=st.text("pqrs", min_size=1, max_size=3),
    template_id=st.just("mount"),
    scope=st.sampled_from(["global", "group", "target"]),
    priority=st.integers(-2, 2),
    is_active=st.booleans(),
    config=st.dictionaries(
        st.sampled_from(["paths", "timeout", "x"]), st.integers(0, 9), max_size=2
    ),
    group_id=st.sampled_from(GROUPS),
    target_id=st.sampled_from(["n1", "n2"]),
).map(
    lambda p: PolicyView(
        p.id,
        p.template_id,
        p.scope,
        p.priority,
        p.is_active,
        p.config,
        p.group_id if p.scope == "group" else None,
        p.target_id if p.scope == "target" else None,
    )
)
policies_strategy = st.lists(policy_strategy, max_size=8, unique_by=lambda p: p.id)
groups_strategy = st.lists(st.sampled_from(GROUPS), unique=True, max_size=3)


def _reaches(policy: PolicyView, groups: list[str]) -> bool:
    return (
        policy.scope == "global"
        or (policy.scope == "group" and policy.group_id in groups)
        or (policy.scope == "target" and policy.target_id == "n1")
    )


@settings(max_examples=300, deadline=None)
@given(policies=policies_strategy, groups=groups_strategy, seed=st.integers())
def test_order_of_policies_does_not_matter(
    policies: list[PolicyView], groups: list[str], seed: int
) -> None:
    shuffled = list(policies)
    random.Random(seed).shuffle(shuffled)
    first = resolve(MOUNT, policies, target_id="n1", group_ids=groups)
    second = resolve(MOUNT, shuffled, target_id="n1", group_ids=groups)
    assert first == second


@settings(max_examples=300, deadline=None)
@given(policies=policies_strategy, groups=groups_strategy)
def test_decision_invariants(policies: list[PolicyView], groups: list[str]) -> None:
    decision = resolve(MOUNT, policies, target_id="n1", group_ids=groups)
    reaching = [p for p in policies if _reaches(p, groups)]
    if not reaching:
        assert decision is None
        return
    assert decision is not None
    # the winner is of the most specific scope present, with the highest priority there
    top_rank = max(SCOPE_RANK[p.scope] for p in reaching)
    assert SCOPE_RANK[decision.winner.scope] == top_rank
    same_scope = [p for p in reaching if SCOPE_RANK[p.scope] == top_rank]
    assert decision.winner.priority == max(p.priority for p in same_scope)
    assert decision.enabled == decision.winner.is_active
    # every key's value comes from the layer it names; template keys are never lost
    assert set(MOUNT.default_config) <= set(decision.config)
    for key, source in decision.sources.items():
        assert decision.config[key] == source.value
        if source.layer == "template":
            assert MOUNT.default_config[key] == source.value
            assert not any(p.is_active and key in p.config for p in reaching)
        else:
            owner = next(p for p in reaching if p.id == source.policy_id)
            assert owner.is_active
            assert owner.config[key] == source.value
            # no active policy that reaches the node and is stronger also sets the key
            for other in reaching:
                if other.is_active and key in other.config and other.id != owner.id:
                    assert (SCOPE_RANK[other.scope], other.priority) <= (
                        SCOPE_RANK[owner.scope],
                        owner.priority,
                    )


@settings(max_examples=200, deadline=None)
@given(policies=policies_strategy, groups=groups_strategy, extra=policy_strategy)
def test_a_less_specific_policy_never_overrides_a_more_specific_one(
    policies: list[PolicyView], groups: list[str], extra: PolicyView
) -> None:
    before = resolve(MOUNT, policies, target_id="n1", group_ids=groups)
    if before is None or extra.id in {p.id for p in policies}:
        return
    if SCOPE_RANK[extra.scope] >= SCOPE_RANK[before.winner.scope]:
        return
    after = resolve(MOUNT, [*policies, extra], target_id="n1", group_ids=groups)
    assert after is not None
    assert after.enabled == before.enabled
    assert after.winner == before.winner
