"""The default check scripts run here (no GPU, NVMe or InfiniBand) and print valid metrics.

Their behaviour on real tool output (fixtures, fake tools) is in tests/checks_scripts/.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aami.checks.defaults import DEFAULT_SCRIPT_TEMPLATES, MOUNT_CHECK

BY_NAME = {t["name"]: t for t in DEFAULT_SCRIPT_TEMPLATES}


def _run(
    name: str, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    template = BY_NAME[name]
    script = tmp_path / name
    script.write_text(template["script_content"])
    interpreter = "/bin/bash" if template["language"] == "bash" else sys.executable
    argv = list(args) or [str(v) for v in template["default_config"].values()]
    result = subprocess.run(
        [interpreter, str(script), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    samples = {}
    for family in text_string_to_metric_families(result.stdout):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_mount_check_keeps_the_specs_interface() -> None:
    """The spec's example 3 reads $1 and prints mount_status{path}; the default still does
    (it no longer splits paths on spaces nor expands globs)."""
    assert MOUNT_CHECK.startswith("#!/bin/bash\n")
    assert 'list="${1-${AAMI_CONFIG_PATHS-}}"' in MOUNT_CHECK
    assert "printf 'mount_status{path=\"%s\"} %s\\n'" in MOUNT_CHECK
    assert "${PATHS//,/ }" not in MOUNT_CHECK


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_every_default_script_prints_valid_metrics(name: str, tmp_path: Path) -> None:
    assert _run(name, tmp_path)


def test_mount_check_output(tmp_path: Path) -> None:
    samples = _run("mount-check", tmp_path, f"/proc,{tmp_path}")
    assert samples == {
        ("mount_status", (("path", "/proc"),)): 1.0,
        ("mount_status", (("path", str(tmp_path)),)): 0.0,
    }


def test_gpu_health_without_nvidia_smi_is_a_failure_not_an_all_clear(tmp_path: Path) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    samples = _run("gpu-health", tmp_path, env={"PATH": str(bare)})
    assert samples[("aami_source_up", (("source", "nvidia-smi"),))] == 0
    assert samples[("aami_source_up", (("source", "dmesg"),))] == 0
    assert not [name for name, _ in samples if name.startswith("aami_gpu_")]


def test_process_running(tmp_path: Path) -> None:
    samples = _run("process-running", tmp_path, "python3,surely-not-running")
    assert samples[("aami_process_running", (("process", "surely-not-running"),))] == 0


def test_disk_usage_missing_path(tmp_path: Path) -> None:
    samples = _run("disk-usage", tmp_path, f"/,{tmp_path}/missing")
    assert samples[("aami_disk_mount_present", (("mountpoint", f"{tmp_path}/missing"),))] == 0
    assert 0 <= samples[("aami_disk_used_percent", (("mountpoint", "/"),))] <= 100
