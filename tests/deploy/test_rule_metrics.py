"""Every metric a shipped rule or default template reads exists where its `requires` says.

Each alert names what it reads in its `requires` annotation, entries separated by "; ":
`<source>: <metric>, <metric> (off by default), ...`. Sources:

- `dcgm-exporter`: checked against DCGM_DEFAULT, the fields dcgm-exporter exports without
  configuration; a metric it only exports when enabled must say "(off by default)", be in
  DCGM_OFF, be named in the alert's description with "off by default", and be in
  docs/gpu-alerts.md with how to turn it on.
- `node_exporter`: checked against NODE_EXPORTER_DEFAULT (collectors enabled by default).
- `prometheus`: `up`. `rule`: a series recorded in system-alerts.yml.
- `aami-agent`: what ``aami.agent.runner.agent_metrics`` writes to aami_agent.prom.
- `check <name>[, <name>...]`: what the default check scripts print, run on the fixtures of
  tests/checks_scripts.

The declared metrics must be exactly the metrics the expression reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from aami.agent.client import SyncResult
from aami.agent.runner import CheckResult, agent_metrics
from aami.alerts.defaults import DEFAULT_ALERT_TEMPLATES
from aami.alerts.rendering import GroupRef, TemplateSpec, render_rule
from tests.checks_scripts.support import fake_bin, fixture, run

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "system-alerts.yml"
CATALOG = ROOT / "docs" / "gpu-alerts.md"

# Facts. The fields dcgm-exporter exports by default: the lines of etc/default-counters.csv
# that are not commented out (NVIDIA/dcgm-exporter, main branch as of 2026-05, commit
# d5e5f51; etc/dcp-metrics-included.csv enables the same ones). DCGM_FI_DRIVER_VERSION is a
# label there, not a metric.
DCGM_DEFAULT = frozenset(
    {
        "DCGM_FI_DEV_SM_CLOCK",
        "DCGM_FI_DEV_MEM_CLOCK",
        "DCGM_FI_DEV_MEMORY_TEMP",
        "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_MEM_COPY_UTIL",
        "DCGM_FI_DEV_ENC_UTIL",
        "DCGM_FI_DEV_DEC_UTIL",
        "DCGM_FI_DEV_XID_ERRORS",
        "DCGM_FI_DEV_FB_FREE",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_FB_RESERVED",
        "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
        "DCGM_FI_DEV_VGPU_LICENSE_STATUS",
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
        "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
        "DCGM_FI_DEV_ROW_REMAP_FAILURE",
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        "DCGM_FI_PROF_DRAM_ACTIVE",
        "DCGM_FI_PROF_PCIE_TX_BYTES",
        "DCGM_FI_PROF_PCIE_RX_BYTES",
    }
)
# DCGM fields dcgm-exporter can export once enabled: commented out in default-counters.csv,
# or (the last two) DCGM fields the file does not list (DCGM's dcgm_fields.h: 158, 396).
DCGM_OFF = frozenset(
    {
        "DCGM_FI_DEV_POWER_VIOLATION",
        "DCGM_FI_DEV_THERMAL_VIOLATION",
        "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL",
        "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL",
        "DCGM_FI_DEV_RETIRED_SBE",
        "DCGM_FI_DEV_RETIRED_DBE",
        "DCGM_FI_DEV_RETIRED_PENDING",
        "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
        "DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL",
        "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL",
        "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL",
        "DCGM_FI_DEV_SLOWDOWN_TEMP",
        "DCGM_FI_DEV_ROW_REMAP_PENDING",
    }
)
# Metrics of node_exporter collectors that are enabled by default (prometheus/node_exporter:
# registerCollector(..., defaultEnabled) in collector/cpu_linux.go, meminfo.go,
# filesystem_common.go, loadavg.go, netdev_common.go, textfile.go). The textfile collector
# reads files only with --collector.textfile.directory set, as AAMI's agent needs anyway.
NODE_EXPORTER_DEFAULT = frozenset(
    {
        "node_cpu_seconds_total",
        "node_memory_MemAvailable_bytes",
        "node_memory_MemTotal_bytes",
        "node_filesystem_avail_bytes",
        "node_filesystem_size_bytes",
        "node_filesystem_readonly",
        "node_filesystem_files",
        "node_filesystem_files_free",
        "node_load1",
        "node_load5",
        "node_load15",
        "node_network_receive_errs_total",
        "node_network_transmit_errs_total",
        "node_network_receive_packets_total",
        "node_network_transmit_packets_total",
        "node_textfile_scrape_error",
        "node_textfile_mtime_seconds",
    }
)

_ENTRY = re.compile(r"^(?P<source>[a-z_-]+(?: [a-z0-9, -]+)?): (?P<metrics>.+)$")
_METRIC = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?P<off> \(off by default\))?$")


def selectors(node: Any) -> Iterator[str]:
    """Every metric name a PromQL expression selects."""
    if isinstance(node, promql_parser.VectorSelector):
        assert node.name, f"a selector without a metric name: {node}"
        yield node.name
        return
    for attribute in ("lhs", "rhs", "expr", "vector_selector", "param"):
        child = getattr(node, attribute, None)
        if child is not None and not isinstance(child, str | int | float):
            yield from selectors(child)
    for child in getattr(node, "args", None) or []:
        yield from selectors(child)


def requirements(text: str) -> dict[str, tuple[str, bool]]:
    """`requires` as {metric: (source, off by default)}."""
    found: dict[str, tuple[str, bool]] = {}
    for entry in text.split("; "):
        match = _ENTRY.match(entry)
        assert match, f"not `<source>: <metrics>`: {entry!r}"
        for item in match["metrics"].split(", "):
            metric = _METRIC.match(item)
            assert metric, f"not a metric name: {item!r}"
            assert metric["name"] not in found, f"{metric['name']} twice in {text!r}"
            found[metric["name"]] = (match["source"], bool(metric["off"]))
    return found


@cache
def recorded() -> frozenset[str]:
    document = yaml.safe_load(RULES.read_text())
    return frozenset(r["record"] for g in document["groups"] for r in g["rules"] if "record" in r)


@cache
def agent_names() -> frozenset[str]:
    sync = SyncResult([], "server", True, True, 1.0)
    text = agent_metrics(sync, [CheckResult("c", False, "timeout", started_at=1.0)], 0.5)
    return frozenset(s.name for f in text_string_to_metric_families(text) for s in f.samples)


def script_names(tmp: Path) -> dict[str, frozenset[str]]:
    """What each default check prints, run on the richest fixtures."""
    names: dict[str, set[str]] = {}
    gpu = tmp / "gpu"
    gpu.mkdir()
    smi: dict[str, object] = {
        "rules": [
            {
                "match": ["--query-gpu="],
                "fields": "--query-gpu",
                "file": fixture("nvidia-smi", "query-gpu-h100x8-one-lost.csv"),
                "stderr": "Unable to determine the device handle for GPU 0000:9A:00.0: "
                "GPU is lost.  Reboot the system to recover this GPU\n",
                "exit": 15,
            },
            {
                "match": ["-q", "-d", "TEMPERATURE"],
                "file": fixture("nvidia-smi", "temperature-h100x8.txt"),
            },
            {
                "match": ["--query-remapped-rows="],
                "fields": "--query-remapped-rows",
                "file": fixture("nvidia-smi", "remapped-rows-h100x8.csv"),
            },
        ]
    }
    dmesg: dict[str, object] = {"rules": [{"file": fixture("dmesg", "xid-mig.txt")}]}
    tools = fake_bin(gpu, **{"nvidia-smi": smi, "dmesg": dmesg})
    names["gpu-health"] = run("gpu-health", gpu, path=[tools], config={"expected_gpus": 8}).names()
    mixed = tmp / "gpu-mixed"
    mixed.mkdir()
    smi_mixed: dict[str, object] = {
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
                "fields": "--query-remapped-rows",
                "file": fixture("nvidia-smi", "remapped-rows-mixed.csv"),
            },
        ]
    }
    tools = fake_bin(mixed, **{"nvidia-smi": smi_mixed, "dmesg": dmesg})
    names["gpu-health"] |= run("gpu-health", mixed, path=[tools]).names()

    nvme = tmp / "nvme"
    (nvme / "class" / "nvme0").mkdir(parents=True)
    (nvme / "class" / "nvme1").mkdir()
    rules = [
        {
            "match": ["smart-log", "/dev/nvme0", "-o", "json"],
            "file": fixture("nvme", "smart-log-2.11.json"),
        },
        {
            "match": ["smart-log", "/dev/nvme1", "-o", "json"],
            "stderr": "open: Permission denied\n",
            "exit": 1,
        },
    ]
    tools = fake_bin(nvme, nvme={"rules": rules})
    names["nvme-health"] = run(
        "nvme-health", nvme, path=[tools], config={"sysfs_root": str(nvme / "class")}
    ).names()

    ib = tmp / "ib"
    (ib / "class" / "mlx5_0" / "ports" / "1").mkdir(parents=True)  # no state file: unreadable
    names["infiniband-ports"] = (
        run("infiniband-ports", ib, path=[], config={"sysfs_root": str(ib / "class")}).names()
        | run(
            "infiniband-ports", ib, path=[], config={"sysfs_root": fixture("sysfs", "infiniband")}
        ).names()
    )
    system = [Path("/usr/bin"), Path("/bin")]
    names["process-running"] = run(
        "process-running", tmp, path=system, config={"processes": "init"}
    ).names()
    names["mount-check"] = run("mount-check", tmp, path=system, config={"paths": "/"}).names()
    names["disk-usage"] = run("disk-usage", tmp, path=system, config={"mountpoints": "/"}).names()
    return {name: frozenset(found) for name, found in names.items()}


def _shipped() -> list[tuple[str, str, dict[str, str]]]:
    """(name, expr, annotations plus the description) of every shipped alert."""
    document = yaml.safe_load(RULES.read_text())
    alerts = [
        (rule["alert"], rule["expr"], rule["annotations"])
        for group in document["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    group = GroupRef("grp-123", "production")
    for template in DEFAULT_ALERT_TEMPLATES:
        spec = TemplateSpec(
            name=template["name"],
            query_template=template["query_template"],
            default_config=template["default_config"],
            annotations=template["annotations"],
        )
        rule = render_rule(spec, {}, group)
        annotations = {**rule["annotations"], "description": template["description"]}
        alerts.append((f"template {template['name']}", rule["expr"], annotations))
    return alerts


SHIPPED = _shipped()


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, frozenset[str]]:
    return script_names(tmp_path_factory.mktemp("scripts"))


@pytest.mark.parametrize(("name", "expr", "annotations"), SHIPPED, ids=[s[0] for s in SHIPPED])
def test_every_metric_is_declared_and_exported_where_declared(
    name: str, expr: str, annotations: dict[str, str], scripts: dict[str, frozenset[str]]
) -> None:
    assert "requires" in annotations, f"{name} does not say what it reads"
    declared = requirements(annotations["requires"])
    read = set(selectors(promql_parser.parse(expr)))
    assert read == set(declared), f"{name} reads {sorted(read)}, declares {sorted(declared)}"
    for metric, (source, off) in declared.items():
        if source == "dcgm-exporter":
            if off:
                assert metric in DCGM_OFF, f"{name}: {metric} is not a known DCGM field"
                assert metric in annotations["description"], name
                assert "off by default" in annotations["description"], name
            else:
                assert metric in DCGM_DEFAULT, f"{name}: {metric} is not exported by default"
        elif source == "node_exporter":
            assert not off
            assert metric in NODE_EXPORTER_DEFAULT, f"{name}: {metric} is not a default metric"
        elif source == "prometheus":
            assert metric == "up"
        elif source == "rule":
            assert metric in recorded(), f"{name}: nothing records {metric}"
        elif source == "aami-agent":
            assert metric in agent_names(), f"{name}: the agent does not write {metric}"
        else:
            kind, _, checks = source.partition(" ")
            assert kind == "check", f"{name}: unknown source {source!r}"
            for check in checks.split(", "):
                assert metric in scripts[check], f"{name}: check {check} never prints {metric}"


def test_the_catalog_says_how_to_enable_what_is_off() -> None:
    text = CATALOG.read_text()
    used_off = {
        metric
        for _, _, annotations in SHIPPED
        for metric, (source, off) in requirements(annotations["requires"]).items()
        if off
    }
    assert used_off, "no rule uses an off-by-default metric: then say so in the catalog"
    for metric in used_off:
        assert metric in text, f"docs/gpu-alerts.md does not mention {metric}"
    assert "default-counters.csv" in text
    assert "DCGM_EXPORTER_COLLECTORS" in text


def test_the_facts_are_disjoint() -> None:
    assert not DCGM_DEFAULT & DCGM_OFF
