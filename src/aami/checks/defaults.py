"""The check scripts ``aami seed`` loads.

Each prints Prometheus text format. Scripts for hardware that may be absent (GPUs, NVMe,
InfiniBand) report that absence as a metric and exit 0, so a node without the hardware
is not a failing check.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_SCRIPT_TEMPLATES"]

# The spec's example 3, byte for byte.
MOUNT_CHECK = (
    '#!/bin/bash\nPATHS="$1"\nfor path in ${PATHS//,/ }; do\n  if mountpoint -q "$path"; '
    'then\n    echo "mount_status{path=\\"$path\\"} 1"\n  else\n    echo "mount_status{path='
    '\\"$path\\"} 0"\n  fi\ndone'
)

_ESCAPE = """
def esc(value):
    return str(value).replace("\\\\", "\\\\\\\\").replace('"', '\\\\"').replace("\\n", "\\\\n")
"""

DISK_USAGE = (
    '''#!/usr/bin/env python3
"""Used space per mount point, in percent; aami_disk_mount_present 0 when a path is missing."""
import os
import sys
'''
    + _ESCAPE
    + """
paths = [p for p in (sys.argv[1] if len(sys.argv) > 1 else "/").split(",") if p]
for path in paths:
    label = esc(path)
    try:
        st = os.statvfs(path)
    except OSError:
        print(f'aami_disk_mount_present{{mountpoint="{label}"}} 0')
        continue
    total = st.f_blocks * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    percent = 100.0 * used / (used + avail) if used + avail else 0.0
    print(f'aami_disk_mount_present{{mountpoint="{label}"}} 1')
    print(f'aami_disk_used_percent{{mountpoint="{label}"}} {percent:.2f}')
    print(f'aami_disk_size_bytes{{mountpoint="{label}"}} {total}')
"""
)

PROCESS_RUNNING = (
    '''#!/usr/bin/env python3
"""How many processes of each name run (from /proc/*/comm); 0 means it is not running."""
import os
import sys
'''
    + _ESCAPE
    + """
names = [n for n in (sys.argv[1] if len(sys.argv) > 1 else "").split(",") if n]
counts = dict.fromkeys(names, 0)
for entry in os.listdir("/proc"):
    if not entry.isdigit():
        continue
    try:
        with open(f"/proc/{entry}/comm") as handle:
            comm = handle.read().strip()
    except OSError:
        continue
    if comm in counts:
        counts[comm] += 1
for name, count in counts.items():
    print(f'aami_process_running{{process="{esc(name)}"}} {1 if count else 0}')
    print(f'aami_process_count{{process="{esc(name)}"}} {count}')
"""
)

NVME_HEALTH = (
    '''#!/usr/bin/env python3
"""NVMe SMART health via `nvme smart-log`; aami_nvme_devices 0 where there is none."""
import glob
import json
import os
import shutil
import subprocess
'''
    + _ESCAPE
    + """
controllers = sorted(os.path.basename(p) for p in glob.glob("/sys/class/nvme/nvme*"))
print(f"aami_nvme_devices {len(controllers)}")
nvme = shutil.which("nvme")
print(f"aami_nvme_tool_present {1 if nvme else 0}")
if nvme:
    for name in controllers:
        device = esc(name)
        try:
            out = subprocess.run([nvme, "smart-log", f"/dev/{name}", "-o", "json"],
                                 capture_output=True, text=True, timeout=20, check=True).stdout
            log = json.loads(out)
        except (subprocess.SubprocessError, OSError, ValueError):
            print(f'aami_nvme_smart_log_ok{{device="{device}"}} 0')
            continue
        print(f'aami_nvme_smart_log_ok{{device="{device}"}} 1')
        warning = int(log.get("critical_warning", 0))
        print(f'aami_nvme_critical_warning{{device="{device}"}} {warning}')
        used = log.get("percent_used", log.get("percentage_used", 0))
        print(f'aami_nvme_percent_used{{device="{device}"}} {int(used)}')
        errors = int(log.get("media_errors", 0))
        print(f'aami_nvme_media_errors_total{{device="{device}"}} {errors}')
        kelvin = log.get("temperature")
        if isinstance(kelvin, (int, float)) and kelvin > 0:
            print(f'aami_nvme_temperature_celsius{{device="{device}"}} {kelvin - 273}')
"""
)

INFINIBAND_PORTS = (
    '''#!/usr/bin/env python3
"""InfiniBand port state from /sys/class/infiniband; aami_infiniband_devices 0 without IB."""
import glob
import os
'''
    + _ESCAPE
    + """
root = "/sys/class/infiniband"
devices = sorted(glob.glob(os.path.join(root, "*")))
print(f"aami_infiniband_devices {len(devices)}")
for device_path in devices:
    device = esc(os.path.basename(device_path))
    for port_path in sorted(glob.glob(os.path.join(device_path, "ports", "*"))):
        port = esc(os.path.basename(port_path))
        labels = f'device="{device}",port="{port}"'

        def read(name):
            try:
                with open(os.path.join(port_path, name)) as handle:
                    return handle.read().strip()
            except OSError:
                return ""

        state = read("state")        # e.g. "4: ACTIVE"
        phys = read("phys_state")    # e.g. "5: LinkUp"
        state_code = state.split(":")[0].strip()
        phys_code = phys.split(":")[0].strip()
        if state_code.isdigit():
            print(f"aami_infiniband_port_state{{{labels}}} {state_code}")
            print(f"aami_infiniband_port_active{{{labels}}} {1 if state_code == '4' else 0}")
        if phys_code.isdigit():
            print(f"aami_infiniband_port_phys_state{{{labels}}} {phys_code}")
            print(f"aami_infiniband_port_link_up{{{labels}}} {1 if phys_code == '5' else 0}")
        rate = read("rate").split(" ")[0]
        try:
            print(f"aami_infiniband_port_rate_gbps{{{labels}}} {float(rate)}")
        except ValueError:
            pass
"""
)

GPU_HEALTH = (
    '''#!/usr/bin/env python3
"""GPU health from nvidia-smi: temperature, ECC, retired pages, XID events where readable.

Without nvidia-smi this reports aami_gpu_present 0 and succeeds.
"""
import re
import shutil
import subprocess
'''
    + _ESCAPE
    + """
FIELDS = ["index", "uuid", "name", "temperature.gpu", "ecc.errors.uncorrected.volatile.total",
          "retired_pages.pending", "power.draw"]
METRICS = {"temperature.gpu": "aami_gpu_temperature_celsius",
           "ecc.errors.uncorrected.volatile.total": "aami_gpu_ecc_uncorrected_volatile_total",
           "power.draw": "aami_gpu_power_watts"}
smi = shutil.which("nvidia-smi")
if smi is None:
    print("aami_gpu_present 0")
    raise SystemExit(0)
try:
    out = subprocess.run([smi, "--query-gpu=" + ",".join(FIELDS),
                          "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
except (subprocess.SubprocessError, OSError):
    print("aami_gpu_present 1")
    print("aami_gpu_query_ok 0")
    raise SystemExit(0)
rows = [[cell.strip() for cell in line.split(",")] for line in out.splitlines() if line.strip()]
print("aami_gpu_present 1")
print("aami_gpu_query_ok 1")
print(f"aami_gpu_count {len(rows)}")
for row in rows:
    values = dict(zip(FIELDS, row))
    labels = f'gpu="{esc(values.get("index", ""))}",uuid="{esc(values.get("uuid", ""))}"'
    for field, metric in METRICS.items():
        try:
            print(f"{metric}{{{labels}}} {float(values.get(field, ''))}")
        except ValueError:
            pass  # "[N/A]" or "[Not Supported]" on this model
    pending = values.get("retired_pages.pending", "")
    if pending in ("Yes", "No"):
        print(f"aami_gpu_retired_pages_pending{{{labels}}} {1 if pending == 'Yes' else 0}")
try:
    kernel_log = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10).stdout
except (subprocess.SubprocessError, OSError):
    kernel_log = None
if kernel_log is not None:
    xids = re.findall(r"NVRM: Xid \\(PCI:([0-9a-fA-F:.]+)\\): (\\d+)", kernel_log)
    print(f"aami_gpu_xid_events_total {len(xids)}")
    for _pci, code in xids[-1:]:
        print(f"aami_gpu_last_xid {code}")
"""
)

DEFAULT_SCRIPT_TEMPLATES: list[dict[str, Any]] = [
    {
        "name": "mount-check",
        "script_type": "mount",
        "script_content": MOUNT_CHECK,
        "language": "bash",
        "default_config": {"paths": "/data"},
        "version": "1.0.0",
        "description": "mount_status{path} 1 when the path is a mount point, else 0.",
    },
    {
        "name": "disk-usage",
        "script_type": "disk",
        "script_content": DISK_USAGE,
        "language": "python",
        "default_config": {"mountpoints": "/"},
        "version": "1.0.0",
        "description": "Used space per mount point in percent (comma-separated list).",
    },
    {
        "name": "process-running",
        "script_type": "process",
        "script_content": PROCESS_RUNNING,
        "language": "python",
        "default_config": {"processes": "sshd"},
        "version": "1.0.0",
        "description": "aami_process_running{process} for each comma-separated process name.",
    },
    {
        "name": "nvme-health",
        "script_type": "nvme",
        "script_content": NVME_HEALTH,
        "language": "python",
        "default_config": {},
        "version": "1.0.0",
        "timeout_seconds": 60,
        "description": "NVMe SMART health via `nvme smart-log` when nvme-cli is installed.",
    },
    {
        "name": "infiniband-ports",
        "script_type": "infiniband",
        "script_content": INFINIBAND_PORTS,
        "language": "python",
        "default_config": {},
        "version": "1.0.0",
        "description": "InfiniBand port state and link from /sys/class/infiniband.",
    },
    {
        "name": "gpu-health",
        "script_type": "gpu",
        "script_content": GPU_HEALTH,
        "language": "python",
        "default_config": {},
        "version": "1.0.0",
        "timeout_seconds": 60,
        "description": "GPU temperature, ECC, retired pages and XID events via nvidia-smi; "
        "aami_gpu_present 0 on nodes without a GPU.",
    },
]
