"""infiniband-ports against a sysfs tree of port states (fixtures/sysfs/infiniband)."""

from __future__ import annotations

from pathlib import Path

from tests.checks_scripts.support import fixture, run

ROOT = fixture("sysfs", "infiniband")


def test_every_port(tmp_path: Path) -> None:
    result = run("infiniband-ports", tmp_path, path=[], config={"sysfs_root": ROOT})
    assert result.returncode == 0, result.stderr
    assert result.value("aami_infiniband_devices") == 4
    states = {
        (device, port): (
            result.value("aami_infiniband_port_state", device=device, port=port),
            result.value("aami_infiniband_port_active", device=device, port=port),
            result.value("aami_infiniband_port_phys_state", device=device, port=port),
            result.value("aami_infiniband_port_link_up", device=device, port=port),
        )
        for device, port in [
            ("mlx5_0", "1"),
            ("mlx5_1", "1"),
            ("mlx5_2", "1"),
            ("mlx5_3", "1"),
            ("mlx5_3", "2"),
        ]
    }
    assert states == {
        ("mlx5_0", "1"): (4, 1, 5, 1),
        ("mlx5_1", "1"): (1, 0, 2, 0),  # cable pulled: DOWN, Polling
        ("mlx5_2", "1"): (2, 0, 5, 1),  # link up, no subnet manager yet: INIT
        ("mlx5_3", "1"): (4, 1, 5, 1),
        ("mlx5_3", "2"): (1, 0, 3, 0),  # disabled
    }
    assert result.value("aami_infiniband_port_rate_gbps", device="mlx5_0", port="1") == 400
    assert result.value("aami_infiniband_port_rate_gbps", device="mlx5_3", port="1") == 200


def test_watched_ports_only_and_a_missing_one(tmp_path: Path) -> None:
    config = {"ports": "mlx5_0:1,mlx5_3,mlx5_9:1", "sysfs_root": ROOT}
    result = run("infiniband-ports", tmp_path, path=[], config=config)
    assert set(result.series("aami_infiniband_port_active")) == {
        (("device", "mlx5_0"), ("port", "1")),
        (("device", "mlx5_3"), ("port", "1")),
        (("device", "mlx5_3"), ("port", "2")),
        (("device", "mlx5_9"), ("port", "1")),
    }
    assert result.value("aami_infiniband_port_present", device="mlx5_9", port="1") == 0
    assert result.value("aami_infiniband_port_active", device="mlx5_9", port="1") == 0


def test_no_hca(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-infiniband")
    result = run("infiniband-ports", tmp_path, path=[], config={"sysfs_root": missing})
    assert result.samples == {("aami_infiniband_devices", ()): 0.0}
