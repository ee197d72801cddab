"""The default alert templates: one meaning per threshold, and promtool cases that fire and
that must not (a read-only full NFS mount, preallocated GPU memory, 85 °C on a GPU that
slows down at 89 °C), run on the rules as AAMI renders them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from aami.alerts.defaults import DEFAULT_ALERT_TEMPLATES
from aami.alerts.rendering import GroupRef, TemplateSpec, render_rule, render_rule_file

CASES = Path(__file__).parent / "default-templates.test.yml"
BY_NAME = {t["name"]: t for t in DEFAULT_ALERT_TEMPLATES}


def _render(tmp_path: Path) -> Path:
    group = GroupRef("grp-123", "production")
    rules = []
    for template in DEFAULT_ALERT_TEMPLATES:
        spec = TemplateSpec(
            name=template["name"],
            query_template=template["query_template"],
            default_config=template["default_config"],
            severity=template["severity"],
            for_duration=template["for_duration"],
            annotations=template["annotations"],
        )
        rules.append(render_rule(spec, {}, group))
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(render_rule_file("grp-123", rules)))
    cases = tmp_path / CASES.name
    shutil.copyfile(CASES, cases)
    return cases


def test_promtool_cases_of_the_rendered_templates(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not on PATH (Debian package: prometheus)"
    cases = _render(tmp_path)
    result = subprocess.run(
        [promtool, "test", "rules", str(cases)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_template_fires_in_a_case_and_stays_quiet_in_another() -> None:
    tests = yaml.safe_load(CASES.read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for test in tests:
        for case in test["alert_rule_test"]:
            name = case["alertname"].removesuffix("_Production")
            (firing if case["exp_alerts"] else quiet).add(name)
    assert firing == set(BY_NAME) == quiet


def test_every_parameter_says_what_it_is() -> None:
    """A threshold is the quantity after "threshold:" in the description, with its unit."""
    units = ("percent", "degrees Celsius", "per CPU")
    for name, template in BY_NAME.items():
        for key in template["default_config"]:
            assert f"{key}:" in template["description"] or key in template["description"], (
                name,
                key,
            )
        if "threshold" in template["default_config"]:
            said = re.search(r"threshold: ([^;]+);", template["description"])
            assert said, name
            assert any(unit in said.group(1) for unit in units), (name, said.group(1))
            assert "{{.threshold}}" in template["query_template"], name


def test_resource_thresholds_are_percent_used_except_the_specs_disk() -> None:
    for name in ("HighCPUUsage", "HighMemoryUsage", "GPUMemoryHeldIdle"):
        description = BY_NAME[name]["description"]
        assert re.search(r"threshold: percent of [^;]* used", description), name
        assert "> {{.threshold}}" in BY_NAME[name]["query_template"], name
    disk = BY_NAME["HighDiskUsage"]
    assert "threshold: percent of the filesystem still free" in disk["description"]
    assert ") < {{.threshold}}" in disk["query_template"]


def test_the_specs_templates_keep_their_names_and_defaults() -> None:
    assert BY_NAME["HighCPUUsage"]["default_config"] == {"threshold": 80}
    assert BY_NAME["HighDiskUsage"]["default_config"]["threshold"] == 20
    assert BY_NAME["NodeDown"]["for_duration"] == "2m"
    assert "mount_status" in BY_NAME["MountPointUnavailable"]["query_template"]
