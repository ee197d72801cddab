"""The alert templates ``aami seed`` loads: node_exporter, DCGM and check metrics, per group.

One meaning per parameter: a ``threshold`` is the quantity its template's description
names after "threshold:", with its unit. For a resource (CPU, memory, GPU memory) it is
the percentage *used*. HighDiskUsage keeps the spec's meaning (example 2: the percentage
*free*), which its description says. Every template names the exporter and metrics it reads
in its ``requires`` annotation, as the static rules do (deploy/prometheus/rules).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_ALERT_TEMPLATES", "NETWORK_FILESYSTEMS"]

_G = 'group_id="{{.group_id}}"'

# Filesystems selected the way the node_exporter mixin selects them (fstype!="",
# mountpoint!="", and read-write only, below); see docs/gpu-alerts.md.
_FS = f'{_G}, fstype!="", mountpoint!=""'

#: Shared network filesystems: one filesystem that every node mounts, so a per-node disk
#: alert on it fires once per node. HighDiskUsage leaves them out by default
#: (`exclude_fstypes`); watch them once, at the storage.
NETWORK_FILESYSTEMS = "nfs|nfs4|lustre|cifs|smb3|ceph|beegfs|gpfs|wekafs|fuse.+"

# Physical interfaces as the mixin selects them.
_NET = f'{_G}, device!~"lo|veth.+"'


def _threshold(
    unit: str, description: str, low: float = 0, high: float | None = 100
) -> dict[str, Any]:
    return {"type": "number", "min": low, "max": high, "unit": unit, "description": description}


DEFAULT_ALERT_TEMPLATES: list[dict[str, Any]] = [
    {
        "name": "HighCPUUsage",
        "description": "CPU busy across all cores of a node. threshold: percent of CPU time "
        "used (busy); fires above it.",
        "query_template": (
            "(100 - (avg by(instance, group_id, group) "
            f'(rate(node_cpu_seconds_total{{mode="idle", {_G}}}[5m])) * 100)) > {{{{.threshold}}}}'
        ),
        "default_config": {"threshold": 80},
        "parameters": {"threshold": _threshold("%", "CPU time used (busy); fires above it")},
        "severity": "warning",
        "for_duration": "5m",
        "annotations": {
            "summary": "High CPU usage on {{ $labels.instance }}",
            "description": 'CPU is {{ $value | printf "%.1f" }}% busy on {{ $labels.instance }}.',
            "requires": "node_exporter: node_cpu_seconds_total",
        },
    },
    {
        "name": "HighMemoryUsage",
        "description": "Memory in use on a node. threshold: percent of memory used (total "
        "minus available); fires above it.",
        "query_template": (
            f"(1 - node_memory_MemAvailable_bytes{{{_G}}} / "
            f"node_memory_MemTotal_bytes{{{_G}}}) * 100 > {{{{.threshold}}}}"
        ),
        "default_config": {"threshold": 90},
        "parameters": {"threshold": _threshold("%", "memory used; fires above it")},
        "severity": "warning",
        "for_duration": "5m",
        "annotations": {
            "summary": "High memory usage on {{ $labels.instance }}",
            "description": '{{ $value | printf "%.1f" }}% of memory is in use.',
            "requires": "node_exporter: node_memory_MemAvailable_bytes, node_memory_MemTotal_bytes",
        },
    },
    {
        "name": "HighDiskUsage",
        "description": "Little space left on a local read-write filesystem. threshold: "
        "percent of the filesystem still free (the spec's example 2: 20 alerts below 20% "
        "free); fires below it. Read-only and pseudo filesystems are left out as the "
        "node_exporter mixin does, and so are the fstypes in exclude_fstypes (shared "
        "network filesystems by default).",
        "query_template": (
            f"((node_filesystem_avail_bytes{{{_FS}, "
            'fstype!~"{{.exclude_fstypes}}"} '
            f"/ node_filesystem_size_bytes{{{_FS}}}) * 100) < {{{{.threshold}}}}"
            f" and node_filesystem_readonly{{{_FS}}} == 0"
        ),
        "default_config": {"threshold": 20, "exclude_fstypes": NETWORK_FILESYSTEMS},
        "parameters": {
            "threshold": _threshold("% free", "space still free; fires below it"),
            "exclude_fstypes": {
                "type": "label_value",
                "description": "regex of filesystem types left out (shared network "
                "filesystems by default)",
            },
        },
        "severity": "warning",
        "for_duration": "5m",
        "annotations": {
            "summary": "Low disk space on {{ $labels.instance }} {{ $labels.mountpoint }}",
            "description": '{{ $value | printf "%.1f" }}% free on {{ $labels.mountpoint }}.',
            "requires": "node_exporter: node_filesystem_avail_bytes, "
            "node_filesystem_size_bytes, node_filesystem_readonly",
        },
    },
    {
        "name": "NodeDown",
        "description": "node_exporter of a node in the group does not answer.",
        "query_template": f'up{{job="node-exporter", {_G}}} == 0',
        "default_config": {},
        "parameters": {},
        "severity": "critical",
        "for_duration": "2m",
        "annotations": {
            "summary": "Node {{ $labels.instance }} is down",
            "description": "Node has not responded for more than the rule's for duration.\n"
            "Instance: {{ $labels.instance }}\nGroup: {{ $labels.group }}",
            "requires": "prometheus: up",
        },
    },
    {
        "name": "GPUThermalHeadroomLow",
        "description": "A GPU close to its own slowdown temperature (each model has its "
        "own: about 89 °C on A100 and H100). threshold: degrees Celsius left below the "
        "GPU's slowdown temperature; fires below it. Needs the gpu-health check.",
        "query_template": (
            f"aami_gpu_slowdown_temperature_celsius{{{_G}}}"
            f" - aami_gpu_temperature_celsius{{{_G}}} < {{{{.threshold}}}}"
        ),
        "default_config": {"threshold": 3},
        "parameters": {
            "threshold": _threshold(
                "°C", "degrees left below the GPU's slowdown temperature; fires below it", 0, 50
            )
        },
        "severity": "warning",
        "for_duration": "10m",
        "annotations": {
            "summary": "GPU {{ $labels.gpu }} on {{ $labels.instance }} nears its slowdown "
            "temperature",
            "description": "GPU {{ $labels.gpu }} is {{ $value }} °C below the temperature "
            "at which it slows down.",
            "requires": "check gpu-health: aami_gpu_slowdown_temperature_celsius, "
            "aami_gpu_temperature_celsius",
        },
    },
    {
        # Frameworks preallocate most of a GPU's memory at start, so memory use alone says
        # nothing. Memory held by a GPU that does no work is what an operator acts on.
        "name": "GPUMemoryHeldIdle",
        "description": "A GPU whose memory is held while it does no work (a hung job, a "
        "leaked process, an idle notebook): a busy job that preallocates its memory does "
        "not trip it. threshold: percent of GPU memory used; fires above it while GPU "
        "utilization stays at 0 for the rule's for duration.",
        "query_template": (
            f"DCGM_FI_DEV_FB_USED{{{_G}}} / (DCGM_FI_DEV_FB_USED{{{_G}}} + "
            f"DCGM_FI_DEV_FB_FREE{{{_G}}}) * 100 > {{{{.threshold}}}}"
            f" and on(instance, UUID) DCGM_FI_DEV_GPU_UTIL{{{_G}}} == 0"
        ),
        "default_config": {"threshold": 50},
        "parameters": {"threshold": _threshold("%", "GPU memory used while idle; fires above it")},
        "severity": "warning",
        "for_duration": "30m",
        "annotations": {
            "summary": "GPU {{ $labels.gpu }} on {{ $labels.instance }} holds memory but "
            "does no work",
            "description": '{{ $value | printf "%.1f" }}% of the GPU\'s memory is in use '
            "while the GPU has been idle: find the process (`nvidia-smi`) and its owner.",
            "requires": "dcgm-exporter: DCGM_FI_DEV_FB_USED, DCGM_FI_DEV_FB_FREE, "
            "DCGM_FI_DEV_GPU_UTIL",
        },
    },
    {
        "name": "NetworkErrors",
        "description": "Errors on a node's physical network interfaces (lo and veth left "
        "out, as the node_exporter mixin does). threshold: percent of the packets received "
        "and sent that are errors; fires above it.",
        "query_template": (
            f"(rate(node_network_receive_errs_total{{{_NET}}}[5m]) + "
            f"rate(node_network_transmit_errs_total{{{_NET}}}[5m])) / "
            f"(rate(node_network_receive_packets_total{{{_NET}}}[5m]) + "
            f"rate(node_network_transmit_packets_total{{{_NET}}}[5m])) * 100"
            " > {{.threshold}}"
        ),
        "default_config": {"threshold": 1},
        "parameters": {"threshold": _threshold("%", "packets that are errors; fires above it")},
        "severity": "warning",
        "for_duration": "10m",
        "annotations": {
            "summary": "Network errors on {{ $labels.instance }} {{ $labels.device }}",
            "description": '{{ $value | printf "%.2f" }}% of the packets on '
            "{{ $labels.device }} are errors.",
            "requires": "node_exporter: node_network_receive_errs_total, "
            "node_network_transmit_errs_total, node_network_receive_packets_total, "
            "node_network_transmit_packets_total",
        },
    },
    {
        "name": "HighLoad",
        "description": "A node's run queue. threshold: 15-minute load average per CPU; "
        "fires above it.",
        "query_template": (
            f"node_load15{{{_G}}} / on(instance) group_left "
            f'count by(instance) (node_cpu_seconds_total{{mode="idle", {_G}}})'
            " > {{.threshold}}"
        ),
        "default_config": {"threshold": 2},
        "parameters": {
            "threshold": _threshold(
                "load per CPU", "15-minute load average per CPU; fires above it", 0, None
            )
        },
        "severity": "warning",
        "for_duration": "15m",
        "annotations": {
            "summary": "High load on {{ $labels.instance }}",
            "description": 'Load per CPU is {{ $value | printf "%.2f" }}.',
            "requires": "node_exporter: node_load15, node_cpu_seconds_total",
        },
    },
    {
        "name": "MountPointUnavailable",
        "description": "A path the mount-check script watches is not mounted.",
        "query_template": f"mount_status{{{_G}}} == 0",
        "default_config": {},
        "parameters": {},
        "severity": "critical",
        "for_duration": "2m",
        "annotations": {
            "summary": "Mount point {{ $labels.path }} unavailable on {{ $labels.instance }}",
            "description": "{{ $labels.path }} is not a mount point on "
            "{{ $labels.instance }}: jobs reading it see an empty directory.",
            "requires": "check mount-check: mount_status",
        },
    },
]
