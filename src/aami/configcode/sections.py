"""The document's sections, each mapped onto its rows, export and domain service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

from aami.configcode import applying as do
from aami.configcode import export
from aami.configcode.document import SECTIONS as SECTION_NAMES
from aami.configcode.document import Fields
from aami.configcode.planning import Section, SectionPlan
from aami.configcode.repository import ConfigRepository

__all__ = ["PHASES", "SECTIONS", "AnySection"]


class AnySection(Protocol):
    """What planning and exporting ask of a section, whatever its rows' model."""

    @property
    def name(self) -> str: ...

    def exported(self, repo: ConfigRepository) -> dict[str, Fields]: ...

    def plan(
        self, repo: ConfigRepository, wanted: dict[str, Fields], *, prune: bool
    ) -> SectionPlan: ...


SECTIONS: Final[Sequence[AnySection]] = (
    Section(
        "groups",
        ConfigRepository.groups,
        export.export_group,
        do.create_group,
        do.update_group,
        do.delete_group,
    ),
    Section(
        "targets",
        ConfigRepository.targets,
        export.export_target,
        do.create_target,
        do.update_target,
        do.delete_target,
    ),
    Section(
        "alert_templates",
        ConfigRepository.alert_templates,
        export.export_alert_template,
        do.create_alert_template,
        do.update_alert_template,
        do.delete_alert_template,
    ),
    Section(
        "alert_rules",
        ConfigRepository.alert_rules,
        export.export_alert_rule,
        do.create_alert_rule,
        do.update_alert_rule,
        do.delete_alert_rule,
        replace_on=frozenset({"template_id"}),
    ),
    Section(
        "script_templates",
        ConfigRepository.script_templates,
        export.export_script_template,
        do.create_script_template,
        do.update_script_template,
        do.delete_script_template,
    ),
    Section(
        "script_policies",
        ConfigRepository.script_policies,
        export.export_script_policy,
        do.create_script_policy,
        do.update_script_policy,
        do.delete_script_policy,
        replace_on=frozenset({"template_id", "scope", "group_id", "target_id"}),
    ),
    Section(
        "notification_channels",
        ConfigRepository.notification_channels,
        export.export_channel,
        do.create_channel,
        do.update_channel,
        do.delete_channel,
        diff=do.diff_channel,
    ),
    Section(
        "notification_routes",
        ConfigRepository.notification_routes,
        export.export_route,
        do.create_route,
        do.update_route,
        do.delete_route,
        replace_on=frozenset({"name"}),
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
