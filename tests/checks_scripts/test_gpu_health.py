"""gpu-health against nvidia-smi and dmesg output: 8 GPUs, mixed models, a lost GPU, none."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from aami.checks.defaults import XID_APPLICATION, XID_HARDWARE
from tests.checks_scripts.support import Run, boot_time, fake_bin, fixture, run

H100 = "GPU-5f3e2d1c-{:04x}-4b6a-9c8d-7e6f5a4b3c2d"
BUSES = ["18", "2A", "3A", "5D", "9A", "AB", "BA", "DB"]
DENIED = "dmesg: read kernel buffer failed: Operation not permitted\n"


def gpu(index: int) -> dict[str, str]:
    return {"gpu": str(index), "UUID": H100.format(index), "pci_bus_id": bus(BUSES[index])}


def bus(short: str) -> str:
    return f"00000000:{short}:00.0"


def smi(query: str, temperature: str, remapped: str, **query_rule: object) -> dict[str, object]:
    """A fake nvidia-smi answering the three queries gpu-health makes from fixture files."""
    return {
        "rules": [
            {"match": ["--query-gpu="], "fields": "--query-gpu", "file": query, **query_rule},
            {"match": ["-q", "-d", "TEMPERATURE"], "file": temperature},
            {
                "match": ["--query-remapped-rows="],
                "fields": "--query-remapped-rows",
                "file": remapped,
            },
        ]
    }


def dmesg(file: str | None = None, *, denied: bool = False) -> Mapping[str, object]:
    if denied:
        return {"rules": [{"stderr": DENIED, "exit": 1}]}
    return {"rules": [{"file": file}] if file else [{"stdout": ""}]}


def h100_node(tmp_path: Path, **query_rule: object) -> Run:
    query = "query-gpu-h100x8-one-lost.csv" if query_rule else "query-gpu-h100x8.csv"
    tools = fake_bin(
        tmp_path,
        **{
            "nvidia-smi": smi(
                fixture("nvidia-smi", query),
                fixture("nvidia-smi", "temperature-h100x8.txt"),
                fixture("nvidia-smi", "remapped-rows-h100x8.csv"),
                **query_rule,
            ),
            "dmesg": dmesg(fixture("dmesg", "xid-mig.txt")),
        },
    )
    return run("gpu-health", tmp_path, path=[tools], config={"expected_gpus": 8})


def test_eight_gpus(tmp_path: Path) -> None:
    result = h100_node(tmp_path)
    assert result.returncode == 0, result.stderr
    for source in ("nvidia-smi", "nvidia-smi-temperature", "nvidia-smi-remapped-rows", "dmesg"):
        assert result.value("aami_source_up", source=source) == 1
    assert result.value("aami_gpu_count") == 8
    assert result.value("aami_gpu_expected_count") == 8
    assert not result.series("aami_gpu_lost")
    assert len(result.series("aami_gpu_info")) == 8
    assert result.value(
        "aami_gpu_info", **gpu(0), name="NVIDIA H100 80GB HBM3", driver_version="550.90.07"
    )
    temperatures = [result.value("aami_gpu_temperature_celsius", **gpu(i)) for i in range(8)]
    assert temperatures == [36, 41, 90, 44, 38, 39, 37, 40]
    # Each GPU's own thresholds, from the T.Limit margins: 89 C slowdown, 92 C shutdown.
    for index in range(8):
        assert result.value("aami_gpu_slowdown_temperature_celsius", **gpu(index)) == 89
        assert result.value("aami_gpu_shutdown_temperature_celsius", **gpu(index)) == 92
    assert result.value("aami_gpu_power_watts", **gpu(0)) == 112.45
    assert ("aami_gpu_power_watts", tuple(sorted(gpu(6).items()))) not in result.samples
    assert result.value("aami_gpu_power_limit_watts", **gpu(6)) == 700
    assert result.value("aami_gpu_ecc_uncorrected_volatile_total", **gpu(3)) == 2
    assert result.value("aami_gpu_ecc_corrected_volatile_total", **gpu(3)) == 12
    assert result.types["aami_gpu_ecc_uncorrected_volatile"] == "counter"
    # Hopper has no page retirement ([N/A]): no series, not a 0.
    assert not result.series("aami_gpu_retired_pages_pending")
    assert result.value("aami_gpu_clocks_event_active", **gpu(2), reason="sw_thermal_slowdown")
    assert result.value("aami_gpu_clocks_event_active", **gpu(2), reason="hw_thermal_slowdown")
    assert not result.value("aami_gpu_clocks_event_active", **gpu(0), reason="sw_power_cap")
    assert result.value("aami_gpu_clocks_event_active", **gpu(5), reason="hw_power_brake_slowdown")
    assert len(result.series("aami_gpu_clocks_event_active")) == 8 * 5
    # Row remapping: GPU 3 waits for a reset, GPU 6 ran out of spare rows.
    assert result.value("aami_gpu_row_remap_pending", **gpu(3)) == 1
    assert result.value("aami_gpu_row_remap_pending", **gpu(0)) == 0
    assert result.value("aami_gpu_row_remap_failure", **gpu(6)) == 1
    assert result.value("aami_gpu_remapped_rows_uncorrectable_total", **gpu(6)) == 8
    assert result.value("aami_gpu_remapped_rows_correctable_total", **gpu(3)) == 1


def test_xids_from_dmesg_with_mig_lines(tmp_path: Path) -> None:
    result = h100_node(tmp_path)
    booted = boot_time()

    def xid(index: int | None, code: int, kind: str, **extra: str) -> dict[str, str]:
        where = gpu(index) if index is not None else {}
        return {**where, **extra, "xid": str(code), "class": kind}

    expected = {
        (0, 13, "application", ()): (2, 812.004390),
        (1, 31, "application", ()): (1, 2210.551902),
        (2, 94, "hardware", (("GPU_I_ID", "5"),)): (2, 4521.338020),
        (2, 43, "application", (("GPU_I_ID", "2"),)): (1, 4530.100001),
        (3, 48, "hardware", ()): (1, 5110.000123),
        (3, 63, "hardware", ()): (1, 5110.000456),
        (4, 79, "hardware", ()): (1, 6020.118840),
        (5, 154, "other", ()): (1, 7000.991200),
        (7, 79, "hardware", ()): (1, 7400.220011),
    }
    for (index, code, kind, extra), (count, stamp) in expected.items():
        labels = xid(index, code, kind, **dict(extra))
        assert result.value("aami_gpu_xid_events", **labels) == count, labels
        last = result.value("aami_gpu_xid_last_timestamp_seconds", **labels)
        assert last == pytest.approx(booted + stamp, abs=0.001)
    # The Xid 79 line and the "fallen off the bus" message of the same GPU: one event.
    assert len(result.series("aami_gpu_xid_events")) == len(expected)


def test_xid_classes_are_disjoint_and_cover_the_issue() -> None:
    assert not set(XID_HARDWARE) & set(XID_APPLICATION)
    assert {48, 63, 64, 74, 79, 92, 94, 95, 119, 120} <= set(XID_HARDWARE)
    assert {13, 31, 43, 45} <= set(XID_APPLICATION)


def test_a_lost_gpu_stays_a_per_gpu_failure(tmp_path: Path) -> None:
    # nvidia-smi exit 15: the seven GPUs it reaches are printed, the lost one is named.
    lost = "Unable to determine the device handle for GPU 0000:9A:00.0: GPU is lost.  "
    lost += "Reboot the system to recover this GPU\n"
    result = h100_node(tmp_path, exit=15, stderr=lost)
    assert result.returncode == 0, result.stderr
    assert result.value("aami_source_up", source="nvidia-smi") == 1
    assert result.value("aami_gpu_count") == 7
    assert result.value("aami_gpu_lost", pci_bus_id=bus("9A"), error="GPU is lost") == 1
    assert len(result.series("aami_gpu_lost")) == 1
    for index in (0, 1, 2, 3, 5, 6, 7):
        assert ("aami_gpu_temperature_celsius", tuple(sorted(gpu(index).items()))) in (
            result.samples
        )
    assert not [k for k in result.series("aami_gpu_temperature_celsius") if ("gpu", "4") in k]


def test_lost_gpu_message_on_stdout(tmp_path: Path) -> None:
    rows = Path(fixture("nvidia-smi", "query-gpu-h100x8-one-lost.csv")).read_text()
    header, _, body = rows.partition("\n")
    mixed = tmp_path / "query.csv"
    lost = "Unable to determine the device handle for GPU 0000:9A:00.0: Unknown Error\n"
    mixed.write_text(header + "\n" + lost + body)
    tools = fake_bin(
        tmp_path,
        **{
            "nvidia-smi": smi(
                str(mixed),
                fixture("nvidia-smi", "temperature-h100x8.txt"),
                fixture("nvidia-smi", "remapped-rows-h100x8.csv"),
                exit=15,
            ),
            "dmesg": dmesg(),
        },
    )
    result = run("gpu-health", tmp_path, path=[tools])
    assert result.value("aami_gpu_count") == 7
    assert result.value("aami_gpu_lost", pci_bus_id=bus("9A"), error="Unknown Error") == 1


def test_mixed_models_with_na_and_not_supported(tmp_path: Path) -> None:
    tools = fake_bin(
        tmp_path,
        **{
            "nvidia-smi": smi(
                fixture("nvidia-smi", "query-gpu-mixed.csv"),
                fixture("nvidia-smi", "temperature-mixed.txt"),
                fixture("nvidia-smi", "remapped-rows-mixed.csv"),
            ),
            "dmesg": dmesg(),
        },
    )
    result = run("gpu-health", tmp_path, path=[tools])
    assert result.returncode == 0, result.stderr
    a100 = {
        "gpu": "0",
        "UUID": "GPU-1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9",
        "pci_bus_id": bus("07"),
    }
    v100 = {
        "gpu": "1",
        "UUID": "GPU-2c3d4e5f-6071-4829-93a4-b5c6d7e8f901",
        "pci_bus_id": bus("0B"),
    }
    rtx = {"gpu": "2", "UUID": "GPU-3d4e5f60-7182-4930-a4b5-c6d7e8f90a1b", "pci_bus_id": bus("41")}
    # An A100 at 85 C with its own slowdown at 89 C: both reported, nothing throttles.
    assert result.value("aami_gpu_temperature_celsius", **a100) == 85
    assert result.value("aami_gpu_slowdown_temperature_celsius", **a100) == 89
    assert result.value("aami_gpu_shutdown_temperature_celsius", **a100) == 92
    assert not result.value("aami_gpu_clocks_event_active", **a100, reason="hw_thermal_slowdown")
    assert result.value("aami_gpu_slowdown_temperature_celsius", **v100) == 87
    assert result.value("aami_gpu_retired_pages_pending", **v100) == 1
    assert result.value("aami_gpu_row_remap_pending", **a100) == 1
    assert result.value("aami_gpu_row_remap_failure", **a100) == 0
    # [N/A] and [Not Supported] leave the series out; they are never a 0.
    rtx_key = tuple(sorted(rtx.items()))
    assert ("aami_gpu_power_limit_watts", rtx_key) not in result.samples
    assert ("aami_gpu_ecc_uncorrected_volatile_total", rtx_key) not in result.samples
    assert ("aami_gpu_retired_pages_pending", rtx_key) not in result.samples
    assert ("aami_gpu_row_remap_pending", tuple(sorted(v100.items()))) not in result.samples
    assert not [
        k
        for k in result.series("aami_gpu_clocks_event_active")
        if ("gpu", "2") in k and ("reason", "hw_power_brake_slowdown") in k
    ]
    assert result.value("aami_gpu_power_watts", **rtx) == 35.12


def test_no_devices(tmp_path: Path) -> None:
    tools = fake_bin(
        tmp_path,
        **{
            "nvidia-smi": {"rules": [{"stdout": "No devices were found\n", "exit": 6}]},
            "dmesg": dmesg(),
        },
    )
    result = run("gpu-health", tmp_path, path=[tools], config={"expected_gpus": 8})
    assert result.value("aami_source_up", source="nvidia-smi") == 1
    assert result.value("aami_gpu_count") == 0
    assert result.value("aami_gpu_expected_count") == 8
    assert not result.series("aami_gpu_info")


@pytest.mark.parametrize(
    ("tool", "why"),
    [
        (None, "not installed"),
        (
            {
                "rules": [
                    {
                        "stdout": "NVIDIA-SMI has failed because it couldn't communicate "
                        "with the NVIDIA driver. Make sure that the latest NVIDIA driver "
                        "is installed and running.\n\n",
                        "exit": 9,
                    }
                ]
            },
            "driver not loaded",
        ),
    ],
)
def test_nvidia_smi_unusable_is_a_source_failure(
    tmp_path: Path, tool: dict[str, object] | None, why: str
) -> None:
    commands: dict[str, Mapping[str, object]] = {"dmesg": dmesg()}
    if tool is not None:
        commands["nvidia-smi"] = tool
    result = run("gpu-health", tmp_path, path=[fake_bin(tmp_path, **commands)])
    assert result.returncode == 0, result.stderr
    assert result.value("aami_source_up", source="nvidia-smi") == 0, why
    # Nothing that could read as healthy: no count, no per-GPU series.
    assert "aami_gpu_count" not in result.names()
    assert not [n for n in result.names() if n.startswith("aami_gpu_") and "xid" not in n]
    assert "nvidia-smi" in result.stderr


def test_dmesg_denied_is_a_source_failure_not_zero_xids(tmp_path: Path) -> None:
    tools = fake_bin(
        tmp_path,
        **{
            "nvidia-smi": smi(
                fixture("nvidia-smi", "query-gpu-h100x8.csv"),
                fixture("nvidia-smi", "temperature-h100x8.txt"),
                fixture("nvidia-smi", "remapped-rows-h100x8.csv"),
            ),
            "dmesg": dmesg(denied=True),
        },
    )
    result = run("gpu-health", tmp_path, path=[tools])
    assert result.returncode == 0, result.stderr
    assert result.value("aami_source_up", source="dmesg") == 0
    assert not result.series("aami_gpu_xid_events")
    assert "Operation not permitted" in result.stderr
    # The other sources still report, per GPU.
    assert result.value("aami_gpu_count") == 8


def test_remapped_rows_unsupported_is_not_a_failure(tmp_path: Path) -> None:
    tools = fake_bin(
        tmp_path,
        **{
            "nvidia-smi": {
                "rules": [
                    {
                        "match": ["--query-gpu="],
                        "fields": "--query-gpu",
                        "file": fixture("nvidia-smi", "query-gpu-mixed.csv"),
                    },
                    {
                        "match": ["-q", "-d", "TEMPERATURE"],
                        "file": fixture("nvidia-smi", "temperature-mixed.txt"),
                    },
                    {
                        "match": ["--query-remapped-rows="],
                        "stdout": "This operation is not supported on this GPU.\n",
                        "exit": 3,
                    },
                ]
            },
            "dmesg": dmesg(),
        },
    )
    result = run("gpu-health", tmp_path, path=[tools])
    assert result.value("aami_source_up", source="nvidia-smi-remapped-rows") == 1
    assert not result.series("aami_gpu_row_remap_pending")
