"""The document's sections, each mapped onto its rows, export and domain service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final, Protocol

from aami.configcode import applying as do
from aami.configcode import export
from aami.configcode.document import SECTIONS as SECTION_NAMES
from aami.configcode.document import Fields
from aami.configcode.planning import Section, SectionPlan
from aami.configcode.repository import ConfigRepository

if TYPE_CHECKING:
    from aami.checks.models import ScriptPolicy

__all__ = ["PHASES", "SECTIONS", "AnySection"]


class AnySection(Protocol):
    """What planning and exporting ask of a section, whatever its rows' model."""

    @property
    def name(self) -> str: ...

    def exported(self, repo: ConfigRepository) -> dict[str, Fields]: ...

    def keyed(self, repo: ConfigRepository) -> Mapping[str, object]: ...

    def plan(
        self, repo: ConfigRepository, wanted: dict[str, Fields], *, prune: bool
    ) -> SectionPlan: ...


def _exporters_by_port(fields: Fields) -> Fields:
    """A target's exporters by port, as applying matches them: a plan shows
    ``exporters[9100].enabled: true → false``."""
    if "exporters" not in fields:
        return fields
    by_port = {e["port"]: {k: v for k, v in e.items() if k != "port"} for e in fields["exporters"]}
    return {**fields, "exporters": by_port}


def _policy_key(repo: ConfigRepository, policy: ScriptPolicy) -> str:
    hostname = repo.hostname_of(policy.target_id) if policy.target_id is not None else None
    return export.key_script_policy(policy, hostname)


SECTIONS: Final[Sequence[AnySection]] = (
    Section(
        "groups",
        ConfigRepository.groups,
        lambda repo, group: group.id,
        export.export_group,
        do.create_group,
        do.update_group,
        do.delete_group,
    ),
    Section(
        "targets",
        ConfigRepository.targets,
        lambda repo, target: target.hostname,
        export.export_target,
        do.create_target,
        do.update_target,
        do.delete_target,
        display=_exporters_by_port,
    ),
    Section(
        "alert_templates",
        ConfigRepository.alert_templates,
        lambda repo, template: template.name,
        export.export_alert_template,
        do.create_alert_template,
        do.update_alert_template,
        do.delete_alert_template,
    ),
    Section(
        "alert_rules",
        ConfigRepository.alert_rules,
        lambda repo, rule: export.key_alert_rule(rule),
        export.export_alert_rule,
        do.create_alert_rule,
        do.update_alert_rule,
        do.delete_alert_rule,
    ),
    Section(
        "script_templates",
        ConfigRepository.script_templates,
        lambda repo, template: template.name,
        export.export_script_template,
        do.create_script_template,
        do.update_script_template,
        do.delete_script_template,
    ),
    Section(
        "script_policies",
        ConfigRepository.script_policies,
        _policy_key,
        export.export_script_policy,
        do.create_script_policy,
        do.update_script_policy,
        do.delete_script_policy,
    ),
    Section(
        "notification_channels",
        ConfigRepository.notification_channels,
        lambda repo, channel: channel.name,
        export.export_channel,
        do.create_channel,
        do.update_channel,
        do.delete_channel,
        diff=do.diff_channel,
        hidden=frozenset({"secret"}),
    ),
    Section(
        "notification_routes",
        ConfigRepository.notification_routes,
        lambda repo, route: route.name,
        export.export_route,
        do.create_route,
        do.update_route,
        do.delete_route,
    ),
)
if tuple(section.name for section in SECTIONS) != SECTION_NAMES:
    raise RuntimeError("configcode: the sections and the document's section names differ")

# Channels and routes come last: each of their changes publishes the Alertmanager config,
# so everything else has been validated before the first such publish.
PHASES: Final = (
    (
        "groups",
        "targets",
        "alert_templates",
        "alert_rules",
        "script_templates",
        "script_policies",
    ),
    ("notification_channels", "notification_routes"),
)
