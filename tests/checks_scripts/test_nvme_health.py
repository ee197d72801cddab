"""nvme-health against `nvme smart-log -o json` of nvme-cli 1.x, 2.10 and 2.11."""

from __future__ import annotations

from pathlib import Path

from tests.checks_scripts.support import fake_bin, fixture, run

WARNINGS = [
    "available_spare",
    "temperature",
    "reliability_degraded",
    "read_only",
    "volatile_backup_failed",
    "pmr_read_only",
]


def controllers(tmp_path: Path, *names: str) -> Path:
    root = tmp_path / "sys-class-nvme"
    root.mkdir()
    for name in names:
        (root / name).mkdir()
    (root / "nvme-subsys0").mkdir()  # not a controller
    return root


def nvme(**devices: str | None) -> dict[str, object]:
    """A fake nvme-cli: smart-log of each device prints its fixture; None: permission denied."""
    rules: list[dict[str, object]] = []
    for device, file in devices.items():
        match = ["smart-log", f"/dev/{device}", "-o", "json"]
        if file is None:
            rules.append({"match": match, "stderr": "open: Permission denied\n", "exit": 1})
        else:
            rules.append({"match": match, "file": file})
    return {"rules": rules}


def test_three_nvme_cli_versions(tmp_path: Path) -> None:
    root = controllers(tmp_path, "nvme0", "nvme1", "nvme2", "nvme10")
    tools = fake_bin(
        tmp_path,
        nvme=nvme(
            nvme0=fixture("nvme", "smart-log-1.x.json"),
            nvme1=fixture("nvme", "smart-log-2.10.json"),
            nvme2=fixture("nvme", "smart-log-2.11.json"),
            nvme10=None,
        ),
    )
    result = run("nvme-health", tmp_path, path=[tools], config={"sysfs_root": str(root)})
    assert result.returncode == 0, result.stderr
    assert result.value("aami_nvme_devices") == 4
    assert result.value("aami_source_up", source="nvme-cli") == 1
    for device in ("nvme0", "nvme1", "nvme2"):
        assert result.value("aami_source_up", source="nvme-smart-log", device=device) == 1
    # A controller nvme-cli cannot read is a failure of that device, not of the others.
    assert result.value("aami_source_up", source="nvme-smart-log", device="nvme10") == 0
    assert not [k for k in result.series("aami_nvme_critical_warning") if ("device", "nvme10") in k]

    # 1.x: "critical_warning" : 0, kelvin, float counters printed as integers.
    assert result.value("aami_nvme_critical_warning", device="nvme0") == 0
    assert result.value("aami_nvme_temperature_celsius", device="nvme0") == 35
    assert result.value("aami_nvme_percent_used", device="nvme0") == 3
    assert result.value("aami_nvme_media_errors_total", device="nvme0") == 0
    assert result.value("aami_nvme_error_log_entries_total", device="nvme0") == 12
    # 2.10: a plain integer; a 128-bit counter kept exactly.
    assert result.value("aami_nvme_critical_warning", device="nvme1") == 0
    assert result.value("aami_nvme_percent_used", device="nvme1") == 91
    assert 'aami_nvme_media_errors_total{device="nvme1"} ' + str(2**128 - 1) in result.stdout
    # 2.11: critical_warning is an object; its value is the bit field.
    assert result.value("aami_nvme_critical_warning", device="nvme2") == 12
    active = {
        w: result.value("aami_nvme_critical_warning_active", device="nvme2", warning=w)
        for w in WARNINGS
    }
    assert active == dict.fromkeys(WARNINGS, 0.0) | {"reliability_degraded": 1, "read_only": 1}
    assert result.value("aami_nvme_temperature_celsius", device="nvme2") == 51
    assert result.value("aami_nvme_available_spare_percent", device="nvme2") == 97
    assert result.value("aami_nvme_available_spare_threshold_percent", device="nvme2") == 10
    assert result.value("aami_nvme_media_errors_total", device="nvme2") == 7
    assert result.types["aami_nvme_media_errors"] == "counter"


def test_controllers_without_nvme_cli_is_a_source_failure(tmp_path: Path) -> None:
    root = controllers(tmp_path, "nvme0")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = run("nvme-health", tmp_path, path=[empty], config={"sysfs_root": str(root)})
    assert result.returncode == 0, result.stderr
    assert result.value("aami_nvme_devices") == 1
    assert result.value("aami_source_up", source="nvme-cli") == 0
    assert not result.series("aami_nvme_critical_warning")
    assert "nvme-cli is not installed" in result.stderr


def test_no_controller_is_no_failure(tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    missing = tmp_path / "no-such-class"
    result = run("nvme-health", tmp_path, path=[empty], config={"sysfs_root": str(missing)})
    assert result.samples == {("aami_nvme_devices", ()): 0.0}
