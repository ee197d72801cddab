"""Refuse at write time what promtool would refuse at publish time.

promtool checks what the in-process rendering cannot: Go-template syntax and functions in
annotations and labels, as Prometheus's own template engine parses them. A change whose
rules promtool rejects is a 422 naming the field, so nothing that passed the API can
block a group's rule file later.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aami.alerts.rendering import dump_rule_file, render_rule_file
from aami.errors import Invalid, Unavailable
from aami.prometheus.rule_files import promtool_check

__all__ = ["PromtoolRuleChecker"]

_FIELD = re.compile(r'(annotation|label) "([^"]+)"')


def _field(message: str) -> str:
    """The request field promtool's words are about."""
    found = _FIELD.search(message)
    if found:
        kind, name = found.groups()
        return f"{kind}s.{name}"
    if "expression" in message or "parse" in message:
        return "query_template"
    if "for" in message and "duration" in message:
        return "for_duration"
    return "rule"


class PromtoolRuleChecker:
    """Checks rendered rules with ``promtool check rules`` (about 40 ms a call)."""

    def __init__(self, *, enabled: bool, timeout: float) -> None:
        self.enabled = enabled
        self.timeout = timeout

    def check(self, rules: Sequence[dict[str, Any]]) -> None:
        """Raise ``Invalid`` (the field and promtool's words) if promtool refuses a rule,
        ``Unavailable`` if promtool cannot say (missing, hung)."""
        if not self.enabled or not rules:
            return
        document = render_rule_file("validate", rules)
        with tempfile.TemporaryDirectory(prefix="aami-rules-") as tmp:
            path = Path(tmp) / "rules.yml"
            path.write_text(dump_rule_file(document), encoding="utf-8")
            result = promtool_check([path], timeout=self.timeout)
        if result.ok:
            return
        if result.tool_failed:
            raise Unavailable(f"the rules cannot be checked: {result.output}; nothing was changed")
        message = result.rejected.get(str(path), result.output)
        message = message.replace(str(path), "rules.yml").replace('group "aami-validate", ', "")
        raise Invalid(f"{_field(message)}: promtool rejects it: {message}")
