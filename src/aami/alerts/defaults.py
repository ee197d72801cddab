"""The alert templates ``aami seed`` loads: node_exporter and DCGM metrics, per group."""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_ALERT_TEMPLATES"]

_G = 'group_id="{{.group_id}}"'

DEFAULT_ALERT_TEMPLATES: list[dict[str, Any]] = [
    {
        "name": "HighCPUUsage",
        "description": "CPU busy above the threshold (percent) across all cores.",
        "query_template": (
            "(100 - (avg by(instance, group_id, group) "
            f'(rate(node_cpu_seconds_total{{mode="idle", {_G}}}[5m])) * 100)) > {{{{.threshold}}}}'
        ),
        "default_config": {"threshold": 80},
        "severity": "warning",
        "for_duration": "5m",
        "annotations": {
            "summary": "High CPU usage on {{ $labels.instance }}",
            "description": 'CPU is {{ $value | printf "%.1f" }}% busy on {{ $labels.instance }}.',
        },
    },
    {
        "name": "HighMemoryUsage",
        "description": "Memory in use above the threshold (percent).",
        "query_template": (
            f"(1 - node_memory_MemAvailable_bytes{{{_G}}} / "
            f"node_memory_MemTotal_bytes{{{_G}}}) * 100 > {{{{.threshold}}}}"
        ),
        "default_config": {"threshold": 90},
        "severity": "warning",
        "for_duration": "5m",
        "annotations": {
            "summary": "High memory usage on {{ $labels.instance }}",
            "description": '{{ $value | printf "%.1f" }}% of memory is in use.',
        },
    },
    {
        "name": "HighDiskUsage",
        "description": "Free space on a filesystem below the threshold (percent).",
        "query_template": (
            f"((node_filesystem_avail_bytes{{{_G}}} / node_filesystem_size_bytes) * 100)"
            " < {{.threshold}}"
        ),
        "default_config": {"threshold": 20},
        "severity": "warning",
        "for_duration": "5m",
        "annotations": {
            "summary": "Low disk space on {{ $labels.instance }} {{ $labels.mountpoint }}",
            "description": '{{ $value | printf "%.1f" }}% free on {{ $labels.mountpoint }}.',
        },
    },
    {
        "name": "NodeDown",
        "description": "node_exporter of a node in the group does not answer.",
        "query_template": f'up{{job="node-exporter", {_G}}} == 0',
        "default_config": {},
        "severity": "critical",
        "for_duration": "2m",
        "annotations": {
            "summary": "Node {{ $labels.instance }} is down",
            "description": "Node has not responded for more than the rule's for duration.\n"
            "Instance: {{ $labels.instance }}\nGroup: {{ $labels.group }}",
        },
    },
    {
        "name": "GPUHighTemperature",
        "description": "GPU temperature (DCGM) above the threshold in degrees C.",
        "query_template": f"DCGM_FI_DEV_GPU_TEMP{{{_G}}} > {{{{.threshold}}}}",
        "default_config": {"threshold": 85},
        "severity": "warning",
        "for_duration": "5m",
        "annotations": {
            "summary": "GPU {{ $labels.gpu }} hot on {{ $labels.instance }}",
            "description": "GPU {{ $labels.gpu }} is at {{ $value }} C.",
        },
    },
    {
        "name": "GPUMemoryHigh",
        "description": "GPU framebuffer memory in use above the threshold (percent).",
        "query_template": (
            f"DCGM_FI_DEV_FB_USED{{{_G}}} / (DCGM_FI_DEV_FB_USED{{{_G}}} + "
            f"DCGM_FI_DEV_FB_FREE{{{_G}}}) * 100 > {{{{.threshold}}}}"
        ),
        "default_config": {"threshold": 95},
        "severity": "warning",
        "for_duration": "10m",
        "annotations": {
            "summary": "GPU {{ $labels.gpu }} memory nearly full on {{ $labels.instance }}",
            "description": '{{ $value | printf "%.1f" }}% of GPU memory is in use.',
        },
    },
    {
        "name": "NetworkErrors",
        "description": "Network receive plus transmit errors per second above the threshold.",
        "query_template": (
            f"rate(node_network_receive_errs_total{{{_G}}}[5m]) + "
            f"rate(node_network_transmit_errs_total{{{_G}}}[5m]) > {{{{.threshold}}}}"
        ),
        "default_config": {"threshold": 1},
        "severity": "warning",
        "for_duration": "10m",
        "annotations": {
            "summary": "Network errors on {{ $labels.instance }} {{ $labels.device }}",
            "description": '{{ $value | printf "%.2f" }} errors/s on {{ $labels.device }}.',
        },
    },
    {
        "name": "HighLoad",
        "description": "15-minute load average per CPU above the threshold.",
        "query_template": (
            f"node_load15{{{_G}}} / on(instance) group_left "
            f'count by(instance) (node_cpu_seconds_total{{mode="idle", {_G}}})'
            " > {{.threshold}}"
        ),
        "default_config": {"threshold": 2},
        "severity": "warning",
        "for_duration": "15m",
        "annotations": {
            "summary": "High load on {{ $labels.instance }}",
            "description": 'Load per CPU is {{ $value | printf "%.2f" }}.',
        },
    },
    {
        "name": "MountPointUnavailable",
        "description": "A path the mount-check script watches is not mounted.",
        "query_template": f"mount_status{{{_G}}} == 0",
        "default_config": {},
        "severity": "critical",
        "for_duration": "2m",
        "annotations": {
            "summary": "Mount point {{ $labels.path }} unavailable on {{ $labels.instance }}",
        },
    },
]
