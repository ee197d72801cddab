"""The default check scripts run here (no GPU, NVMe or InfiniBand) and print valid metrics."""

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


def test_mount_check_is_the_spec_script() -> None:
    assert MOUNT_CHECK.startswith('#!/bin/bash\nPATHS="$1"\nfor path in ${PATHS//,/ }; do\n')
    assert 'echo "mount_status{path=\\"$path\\"} 1"' in MOUNT_CHECK


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_every_default_script_prints_valid_metrics(name: str, tmp_path: Path) -> None:
    assert _run(name, tmp_path)


def test_mount_check_output(tmp_path: Path) -> None:
    samples = _run("mount-check", tmp_path, f"/proc,{tmp_path}")
    assert samples == {
        ("mount_status", (("path", "/proc"),)): 1.0,
        ("mount_status", (("path", str(tmp_path)),)): 0.0,
    }


def test_gpu_health_without_a_gpu(tmp_path: Path) -> None:
    samples = _run("gpu-health", tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert samples == {("aami_gpu_present", ()): 0.0}


def test_gpu_health_parses_nvidia_smi(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    smi = fake / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\nprintf '0, GPU-aaa, NVIDIA H100, 71, 0, No, 312.5\\n"
        "1, GPU-bbb, NVIDIA H100, 88, 2, Yes, [N/A]\\n'\n"
    )
    smi.chmod(0o755)
    samples = _run("gpu-health", tmp_path, env={"PATH": f"{fake}:/usr/bin:/bin"})
    gpu1 = (("gpu", "1"), ("uuid", "GPU-bbb"))
    assert samples[("aami_gpu_present", ())] == 1
    assert samples[("aami_gpu_count", ())] == 2
    assert samples[("aami_gpu_temperature_celsius", gpu1)] == 88
    assert samples[("aami_gpu_ecc_uncorrected_volatile_total", gpu1)] == 2
    assert samples[("aami_gpu_retired_pages_pending", gpu1)] == 1
    assert ("aami_gpu_power_watts", gpu1) not in samples  # [N/A] is skipped, not an error
    assert samples[("aami_gpu_power_watts", (("gpu", "0"), ("uuid", "GPU-aaa")))] == 312.5


def test_process_running(tmp_path: Path) -> None:
    samples = _run("process-running", tmp_path, "python3,surely-not-running")
    assert samples[("aami_process_running", (("process", "surely-not-running"),))] == 0


def test_disk_usage_missing_path(tmp_path: Path) -> None:
    samples = _run("disk-usage", tmp_path, f"/,{tmp_path}/missing")
    assert samples[("aami_disk_mount_present", (("mountpoint", f"{tmp_path}/missing"),))] == 0
    assert 0 <= samples[("aami_disk_used_percent", (("mountpoint", "/"),))] <= 100
