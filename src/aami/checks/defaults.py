"""The check scripts ``aami seed`` loads, and the XID classes the GPU alerts share with them.

Each script prints Prometheus text format. A node without the hardware (no NVMe
controller, no InfiniBand HCA) is not a failure: the device count says 0. A source a
script cannot read when it should (``nvidia-smi`` missing or failing, ``dmesg`` denied,
``nvme`` absent while controllers exist) is reported as ``aami_source_up{source} 0``,
never as a zero that reads as healthy; ``AamiCheckSourceUnreadable`` alerts on it.

Python scripts read their config from ``AAMI_CONFIG_<KEY>`` and fall back to argv in the
order of ``default_config`` (the agent passes both, see ``aami.agent.runner``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DEFAULT_SCRIPT_TEMPLATES",
    "GPU_HEALTH",
    "INFINIBAND_PORTS",
    "MOUNT_CHECK",
    "NVME_HEALTH",
    "PROCESS_RUNNING",
    "XID_APPLICATION",
    "XID_HARDWARE",
]

#: XIDs of a hardware or driver fault: drain the node, reset the GPU or reboot, RMA if it
#: recurs. NVIDIA's XID catalog gives these an immediate action of RESET_GPU or
#: RESTART_BM (or a workflow ending in one); leptonai/gpud's XID catalog
#: (components/accelerator/nvidia/xid/xid.go) marks them fatal with REBOOT_SYSTEM and
#: HARDWARE_INSPECTION. 63 and 92 are kept here as in the issue: on Ampere and later a 63
#: means a row remap waits for a reset; a 92 is a rate of single-bit errors high enough to
#: have the GPU checked.
XID_HARDWARE: dict[int, str] = {
    46: "GPU stopped processing",
    48: "double-bit (uncorrectable) ECC error",
    62: "internal micro-controller halt",
    63: "ECC page retirement or row remapping recorded",
    64: "ECC page retirement or row remapping recording failure",
    74: "NVLink error",
    79: "GPU has fallen off the bus",
    92: "high single-bit ECC error rate",
    94: "contained ECC error",
    95: "uncontained ECC error",
    110: "security fault",
    119: "GSP RPC timeout",
    120: "GSP error",
    136: "link training failed",
    140: "unrecovered ECC error",
    143: "GPU initialization failure",
}

#: XIDs an application causes: the job fails, the GPU stays healthy. These are the XIDs
#: NVIDIA's k8s-device-plugin skips in its health check (internal/rm/health.go,
#: "Application errors: the GPU should still be healthy").
XID_APPLICATION: dict[int, str] = {
    13: "graphics engine exception",
    31: "GPU memory page fault",
    43: "GPU stopped processing (reset by the driver after an application fault)",
    45: "preemptive cleanup after a previous error",
    68: "video processor exception",
    109: "context switch timeout",
}

# Bash: the paths are split on commas only (`read -a`, no word splitting, no globbing), so
# a path with spaces or `*` is checked as written. The output keeps the spec's example-3
# metric, mount_status{path}.
MOUNT_CHECK = r"""#!/bin/bash
# mount_status{path="..."} 1 when the path is a mount point, else 0.
# Config: paths, comma-separated ($1 or AAMI_CONFIG_PATHS).
list="${1-${AAMI_CONFIG_PATHS-}}"
if ! command -v mountpoint >/dev/null 2>&1; then
  echo "mount-check: mountpoint(1) is not installed (util-linux)" >&2
  exit 1
fi
IFS=',' read -r -d '' -a paths < <(printf '%s' "$list") || true
for path in "${paths[@]}"; do
  [ -n "$path" ] || continue
  label=${path//\\/\\\\}
  label=${label//\"/\\\"}
  label=${label//$'\n'/\\n}
  if mountpoint -q -- "$path"; then value=1; else value=0; fi
  printf 'mount_status{path="%s"} %s\n' "$label" "$value"
done
"""

# Shared by the Python scripts: config lookup, label escaping, grouped text output.
_PRELUDE = r'''
import os
import sys


def config(key, index, default):
    """AAMI_CONFIG_<KEY>, else argv[index], else default."""
    value = os.environ.get("AAMI_CONFIG_" + key.upper())
    if value is None and len(sys.argv) > index:
        value = sys.argv[index]
    return default if value is None or value == "" else value


def esc(value):
    text = str(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def fmt(value):
    """Integers exactly (a 128-bit NVMe counter must not become 1.2e+20), floats as repr."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    return str(int(value)) if isinstance(value, (bool, int)) else repr(float(value))


class Metrics:
    """Samples grouped by family: text format wants each family in one block."""

    def __init__(self):
        self.families = {}

    def add(self, name, value, labels=None, kind="gauge"):
        family = self.families.setdefault(name, (kind, []))
        pairs = ",".join(f'{k}="{esc(v)}"' for k, v in (labels or {}).items() if v != "")
        text = fmt(value)
        family[1].append(f"{name}{{{pairs}}} {text}" if pairs else f"{name} {text}")

    def print(self):
        for name, (kind, lines) in self.families.items():
            print(f"# TYPE {name} {kind}")
            print("\n".join(lines))
'''

DISK_USAGE = (
    r'''#!/usr/bin/env python3
"""Used space per mount point in percent; aami_disk_mount_present 0 when a path is missing.

Config: mountpoints, comma-separated.
"""
'''
    + _PRELUDE
    + r"""
metrics = Metrics()
for path in [p for p in config("mountpoints", 1, "/").split(",") if p]:
    labels = {"mountpoint": path}
    try:
        st = os.statvfs(path)
    except OSError:
        metrics.add("aami_disk_mount_present", 0, labels)
        continue
    avail = st.f_bavail * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    percent = 100.0 * used / (used + avail) if used + avail else 0.0
    metrics.add("aami_disk_mount_present", 1, labels)
    metrics.add("aami_disk_used_percent", round(percent, 2), labels)
    metrics.add("aami_disk_size_bytes", st.f_blocks * st.f_frsize, labels)
    metrics.add("aami_disk_readonly", 1 if st.f_flag & os.ST_RDONLY else 0, labels)
metrics.print()
"""
)

# /proc/PID/comm holds at most 15 bytes (TASK_COMM_LEN is 16 with the NUL), so
# nvidia-persistenced reads "nvidia-persiste" and nv-fabricmanager "nv-fabricmanage". A
# name matches a process when it equals the comm, the basename of argv[0] or of the
# executable.
PROCESS_RUNNING = (
    r'''#!/usr/bin/env python3
"""How many processes of each name run; aami_process_running 0 means none does.

Config: processes, comma-separated names.
"""
'''
    + _PRELUDE
    + r"""
COMM_LEN = 15


def read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def exited(pid):
    # A zombie (Z) or dead (X) process is not running, whatever its name: its comm stays
    # until the parent reaps it, while its argv and exe are already gone.
    stat = read(f"/proc/{pid}/stat")
    state = stat.rpartition(b")")[2].split()[:1]
    return not stat or state in ([b"Z"], [b"X"])


def names_of(pid):
    found = set()
    comm = read(f"/proc/{pid}/comm").decode("utf-8", "replace").rstrip("\n")
    if comm:
        found.add(("comm", comm))
    argv0 = read(f"/proc/{pid}/cmdline").split(b"\0", 1)[0].decode("utf-8", "replace")
    if argv0:
        found.add(("name", os.path.basename(argv0.split(" ", 1)[0])))
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = ""
    if exe:
        found.add(("name", os.path.basename(exe.removesuffix(" (deleted)"))))
    return found


def matches(name, found):
    for kind, value in found:
        if value == name:
            return True
        # A truncated comm is only trusted when nothing longer is known for the process.
        if kind == "comm" and len(name) > COMM_LEN and value == name[:COMM_LEN]:
            if not any(k == "name" for k, _ in found):
                return True
    return False


wanted = [n.strip() for n in config("processes", 1, "").split(",") if n.strip()]
counts = dict.fromkeys(wanted, 0)
me = os.getpid()
for entry in os.listdir("/proc"):
    if not entry.isdigit() or int(entry) == me:
        continue
    if exited(entry):
        continue
    found = names_of(entry)
    for name in wanted:
        if matches(name, found):
            counts[name] += 1
metrics = Metrics()
for name, count in counts.items():
    metrics.add("aami_process_running", 1 if count else 0, {"process": name})
    metrics.add("aami_process_count", count, {"process": name})
metrics.print()
"""
)

# nvme-cli prints critical_warning as an integer (1.x, 2.10, 2.13 and later without -H) or
# as an object {"value": n, "available_spare": 0, ...} (2.11 and 2.12 always, any version
# with -H); temperature is in kelvin; 128-bit counters are JSON numbers.
NVME_HEALTH = (
    r'''#!/usr/bin/env python3
"""NVMe SMART health from `nvme smart-log -o json` for each controller in sysfs.

Config: sysfs_root (default /sys/class/nvme; /host/sys/class/nvme in a container).
"""
import json
import re
import shutil
import subprocess
'''
    + _PRELUDE
    + r"""
WARNINGS = ["available_spare", "temperature", "reliability_degraded", "read_only",
            "volatile_backup_failed", "pmr_read_only"]


def integer(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        return int(value)
    return None


root = config("sysfs_root", 1, "/sys/class/nvme")
try:
    controllers = sorted((n for n in os.listdir(root) if re.fullmatch(r"nvme\d+", n)),
                         key=lambda n: int(n[4:]))
except OSError:
    controllers = []
metrics = Metrics()
metrics.add("aami_nvme_devices", len(controllers))
nvme = shutil.which("nvme")
if controllers:
    metrics.add("aami_source_up", 1 if nvme else 0, {"source": "nvme-cli"})
    if nvme is None:
        print("nvme-health: NVMe controllers present but nvme-cli is not installed",
              file=sys.stderr)
for name in controllers if nvme else []:
    labels = {"device": name}
    try:
        done = subprocess.run([nvme, "smart-log", f"/dev/{name}", "-o", "json"],
                              capture_output=True, text=True, errors="replace", timeout=10)
        log = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        done, log = None, None
        print(f"nvme-health: {name}: {exc}", file=sys.stderr)
    if not isinstance(log, dict):
        if done is not None:
            print(f"nvme-health: {name}: exit {done.returncode}: {done.stderr.strip()}",
                  file=sys.stderr)
        metrics.add("aami_source_up", 0, {"source": "nvme-smart-log", "device": name})
        continue
    metrics.add("aami_source_up", 1, {"source": "nvme-smart-log", "device": name})
    warning = log.get("critical_warning")
    if isinstance(warning, dict):
        warning = warning.get("value")
    warning = integer(warning)
    if warning is not None:
        metrics.add("aami_nvme_critical_warning", warning, labels)
        for bit, what in enumerate(WARNINGS):
            metrics.add("aami_nvme_critical_warning_active", (warning >> bit) & 1,
                        {"device": name, "warning": what})
    kelvin = integer(log.get("temperature"))
    if kelvin:
        metrics.add("aami_nvme_temperature_celsius", kelvin - 273, labels)
    used = log.get("percent_used", log.get("percentage_used"))
    for value, metric, kind in (
        (used, "aami_nvme_percent_used", "gauge"),
        (log.get("avail_spare"), "aami_nvme_available_spare_percent", "gauge"),
        (log.get("spare_thresh"), "aami_nvme_available_spare_threshold_percent", "gauge"),
        (log.get("media_errors"), "aami_nvme_media_errors_total", "counter"),
        (log.get("num_err_log_entries"), "aami_nvme_error_log_entries_total", "counter"),
    ):
        number = integer(value)
        if number is not None:
            metrics.add(metric, number, labels, kind)
metrics.print()
"""
)

# sysfs port files: state "4: ACTIVE", phys_state "5: LinkUp", rate "400 Gb/sec (4X NDR)".
INFINIBAND_PORTS = (
    r'''#!/usr/bin/env python3
"""InfiniBand port state from sysfs; aami_infiniband_devices 0 on a node without an HCA.

Config: ports, comma-separated "device:port" or "device" to watch (empty: every port; a
watched port that is missing reports aami_infiniband_port_present 0), and sysfs_root
(default /sys/class/infiniband; /host/sys/class/infiniband in a container).
"""
'''
    + _PRELUDE
    + r"""


def read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def code(text):
    head = (text or "").split(":", 1)[0].strip()
    return int(head) if head.isdigit() else None


def order(name):
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


watch = [w.strip() for w in config("ports", 1, "").split(",") if w.strip()]
root = config("sysfs_root", 2, "/sys/class/infiniband")
try:
    devices = sorted(os.listdir(root))
except OSError:
    devices = []
metrics = Metrics()
metrics.add("aami_infiniband_devices", len(devices))
seen = set()
for device in devices:
    try:
        ports = sorted(os.listdir(os.path.join(root, device, "ports")), key=order)
    except OSError:
        ports = []
    for port in ports:
        seen.update({device, f"{device}:{port}"})
        if watch and device not in watch and f"{device}:{port}" not in watch:
            continue
        path = os.path.join(root, device, "ports", port)
        labels = {"device": device, "port": port}
        metrics.add("aami_infiniband_port_present", 1, labels)
        state = code(read(os.path.join(path, "state")))
        phys = code(read(os.path.join(path, "phys_state")))
        if state is None or phys is None:
            metrics.add("aami_source_up", 0, dict(labels, source="sysfs-infiniband"))
            continue
        metrics.add("aami_infiniband_port_state", state, labels)
        metrics.add("aami_infiniband_port_active", 1 if state == 4 else 0, labels)
        metrics.add("aami_infiniband_port_phys_state", phys, labels)
        metrics.add("aami_infiniband_port_link_up", 1 if phys == 5 else 0, labels)
        try:
            rate = float((read(os.path.join(path, "rate")) or "").split(" ", 1)[0])
        except ValueError:
            continue
        metrics.add("aami_infiniband_port_rate_gbps", rate, labels)
for item in watch:
    if item not in seen:
        device, _, port = item.partition(":")
        labels = {"device": device, "port": port or "all"}
        metrics.add("aami_infiniband_port_present", 0, labels)
        metrics.add("aami_infiniband_port_active", 0, labels)
metrics.print()
"""
)

# nvidia-smi --query-gpu prints "[N/A]" or "[Not Supported]" where a model has no value:
# the metric is left out, never reported as 0. Exit 15 means a GPU is lost: the other
# GPUs' rows are still printed and kept. `-q -d TEMPERATURE` prints each GPU's own
# thresholds: "GPU Slowdown Temp : 89 C" before R535, margins on the T.Limit scale since
# ("GPU T.Limit Temp", "GPU Slowdown T.Limit Temp"). XID lines come from the kernel log:
#   NVRM: Xid (PCI:0000:01:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off ...
#   NVRM: Xid (PCI:0000:01:00 GPU-I:05): 94, pid=1234, name=python3, Ch 00000008 (MIG)
GPU_HEALTH = (
    r'''#!/usr/bin/env python3
"""GPU health from nvidia-smi and the kernel log.

Each source reports aami_source_up{source}; 0 means it could not be read:
  nvidia-smi                per GPU: temperature, power, ECC, retired pages, clock events
  nvidia-smi-temperature    each GPU's own slowdown and shutdown temperature
  nvidia-smi-remapped-rows  row remapping (Ampere and later)
  dmesg                     NVRM Xid lines (MIG lines too), by GPU, XID and class
A GPU nvidia-smi cannot reach ("GPU is lost", exit 15) is aami_gpu_lost{pci_bus_id} 1; the
other GPUs keep their metrics.
Config: expected_gpus (0: not checked).
"""
import csv
import math
import re
import shutil
import subprocess
'''
    + _PRELUDE
    + f"\n\nHARDWARE_XIDS = frozenset({sorted(XID_HARDWARE)})\n"
    + f"APPLICATION_XIDS = frozenset({sorted(XID_APPLICATION)})\n"
    + r"""
FIELDS = [
    "index", "uuid", "pci.bus_id", "name", "driver_version", "temperature.gpu",
    "power.draw", "enforced.power.limit", "ecc.errors.corrected.volatile.total",
    "ecc.errors.uncorrected.volatile.total", "retired_pages.pending",
    "clocks_throttle_reasons.hw_slowdown", "clocks_throttle_reasons.hw_thermal_slowdown",
    "clocks_throttle_reasons.sw_thermal_slowdown",
    "clocks_throttle_reasons.hw_power_brake_slowdown", "clocks_throttle_reasons.sw_power_cap",
]
NUMBERS = {
    "temperature.gpu": ("aami_gpu_temperature_celsius", "gauge"),
    "power.draw": ("aami_gpu_power_watts", "gauge"),
    "enforced.power.limit": ("aami_gpu_power_limit_watts", "gauge"),
    "ecc.errors.corrected.volatile.total": ("aami_gpu_ecc_corrected_volatile_total", "counter"),
    "ecc.errors.uncorrected.volatile.total": (
        "aami_gpu_ecc_uncorrected_volatile_total", "counter"),
}
REASONS = [f[len("clocks_throttle_reasons."):] for f in FIELDS if f.startswith("clocks_")]
REMAPPED = ["gpu_uuid", "remapped_rows.correctable", "remapped_rows.uncorrectable",
            "remapped_rows.pending", "remapped_rows.failure"]
UNREACHABLE = {"[GPU is lost]": "GPU is lost", "[Unknown Error]": "Unknown Error",
               "[GPU requires reset]": "GPU requires reset"}
BUS = r"[0-9A-Fa-f]{1,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}(?:\.[0-7])?"
LOST = re.compile(r"Unable to determine the device handle for (?:GPU )?(" + BUS + r"): ([^.]*)")
QUERY_HEAD = re.compile(r"GPU (" + BUS + r")")
XID = re.compile(r"NVRM: Xid \((?:PCI:)?(" + BUS + r")([^)]*)\): (\d+)")
FELL = re.compile(r"NVRM: GPU (" + BUS + r"): GPU has fallen off the bus")
THE_GPU = re.compile(r"NVRM: The NVIDIA GPU (" + BUS + r")")
STAMP = re.compile(r"\[\s*(\d+\.\d+)\]")
YES, NO = {"yes", "1", "true", "active"}, {"no", "0", "false", "not active"}


def run(argv, timeout):
    # (exit code, stdout, stderr); the exit code is None when the command could not run or
    # timed out (a hung nvidia-smi is a symptom in itself). The timeouts add up to less
    # than the check's, so the sources that answer are still reported.
    try:
        done = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                              timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, "", str(exc)
    return done.returncode, done.stdout, done.stderr


def complain(source, code, err):
    status = "not run" if code is None else f"exit code {code}"
    print(f"gpu-health: {source}: {status}: {err.strip()[-300:]}", file=sys.stderr)


def bus_id(text):
    # nvidia-smi's spelling: 00000000:B3:00.0 (dmesg says 0000:b3:00).
    domain, bus, rest = text.strip().split(":", 2)
    device, _, function = rest.partition(".")
    return f"{int(domain, 16):08X}:{bus.upper()}:{device.upper()}.{function or '0'}"


def number(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def flag(text):
    value = text.strip().lower()
    return 1 if value in YES else 0 if value in NO else None


def celsius(text):
    match = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*C", (text or "").strip())
    return float(match.group(1)) if match else None


def boot_time():
    try:
        with open("/proc/stat") as handle:
            for line in handle:
                if line.startswith("btime "):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


try:
    expected = int(config("expected_gpus", 1, "0"))
except ValueError:
    sys.exit("gpu-health: expected_gpus must be a whole number")
metrics = Metrics()
gpus, by_uuid, lost = {}, {}, {}
smi = shutil.which("nvidia-smi")
code, out, err = (
    run([smi, "--query-gpu=" + ",".join(FIELDS), "--format=csv,noheader,nounits"], 20)
    if smi
    else (None, "", "nvidia-smi is not on PATH")
)
no_devices = "No devices were found" in out + err
answered = code in (0, 15) or no_devices
metrics.add("aami_source_up", 1 if answered else 0, {"source": "nvidia-smi"})
if not answered:
    complain("nvidia-smi", code, err or out)
else:
    for line in (out + "\n" + err).splitlines():
        match = LOST.search(line)
        if match:
            lost[bus_id(match.group(1))] = match.group(2).strip() or "unknown"
    for row in csv.reader(out.splitlines(), skipinitialspace=True):
        if len(row) != len(FIELDS) or not row[0].strip().isdigit():
            continue
        values = dict(zip(FIELDS, (cell.strip() for cell in row)))
        bus = bus_id(values["pci.bus_id"]) if re.fullmatch(BUS, values["pci.bus_id"]) else ""
        broken = [UNREACHABLE[v] for v in values.values() if v in UNREACHABLE]
        if broken:
            lost[bus or "gpu " + values["index"]] = broken[0]
            continue
        labels = {"gpu": values["index"], "UUID": values["uuid"], "pci_bus_id": bus}
        gpus[bus], by_uuid[values["uuid"]] = labels, labels
        metrics.add("aami_gpu_info", 1, dict(labels, name=values["name"],
                                             driver_version=values["driver_version"]))
        for field, (metric, kind) in NUMBERS.items():
            value = number(values[field])
            if value is not None:
                metrics.add(metric, value, labels, kind)
        pending = flag(values["retired_pages.pending"])
        if pending is not None:
            metrics.add("aami_gpu_retired_pages_pending", pending, labels)
        for reason in REASONS:
            active = flag(values["clocks_throttle_reasons." + reason])
            if active is not None:
                metrics.add("aami_gpu_clocks_event_active", active, dict(labels, reason=reason))
    if code == 15 and not lost:
        lost["unknown"] = "nvidia-smi exit code 15"
    metrics.add("aami_gpu_count", len(gpus))
    for bus, error in sorted(lost.items()):
        metrics.add("aami_gpu_lost", 1, {"pci_bus_id": bus, "error": error})
if expected > 0:
    metrics.add("aami_gpu_expected_count", expected)

if gpus:
    code, out, err = run([smi, "-q", "-d", "TEMPERATURE"], 15)
    metrics.add("aami_source_up", 1 if code in (0, 15) else 0,
                {"source": "nvidia-smi-temperature"})
    if code not in (0, 15):
        complain("nvidia-smi -q -d TEMPERATURE", code, err or out)
    fields, blocks = None, {}
    for line in out.splitlines() if code in (0, 15) else []:
        head = QUERY_HEAD.fullmatch(line.strip())
        if head:
            fields = blocks.setdefault(bus_id(head.group(1)), {})
        elif fields is not None and ":" in line:
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    for bus, fields in blocks.items():
        labels = gpus.get(bus)
        if labels is None:
            continue
        current = celsius(fields.get("GPU Current Temp"))
        margin = celsius(fields.get("GPU T.Limit Temp"))
        for kind in ("Slowdown", "Shutdown"):
            limit = celsius(fields.get(f"GPU {kind} Temp"))
            relative = celsius(fields.get(f"GPU {kind} T.Limit Temp"))
            if limit is None and None not in (current, margin, relative):
                # The margin falls as the GPU heats; the threshold is where it reaches `relative`.
                limit = current + margin - relative
            if limit is not None and 0 < limit < 150:
                metrics.add(f"aami_gpu_{kind.lower()}_temperature_celsius", limit, labels)

    code, out, err = run([smi, "--query-remapped-rows=" + ",".join(REMAPPED),
                          "--format=csv,noheader,nounits"], 15)
    # GPUs before Ampere have no row remapper: nvidia-smi says so, and that is not a failure.
    unsupported = code not in (0, 15) and "not supported" in (out + err).lower()
    metrics.add("aami_source_up", 1 if code in (0, 15) or unsupported else 0,
                {"source": "nvidia-smi-remapped-rows"})
    if code not in (0, 15) and not unsupported:
        complain("nvidia-smi --query-remapped-rows", code, err or out)
    for row in csv.reader(out.splitlines(), skipinitialspace=True) if code in (0, 15) else []:
        labels = by_uuid.get(row[0].strip()) if len(row) == len(REMAPPED) else None
        if labels is None:
            continue
        for cell, metric, kind, parse in (
            (row[1], "aami_gpu_remapped_rows_correctable_total", "counter", number),
            (row[2], "aami_gpu_remapped_rows_uncorrectable_total", "counter", number),
            (row[3], "aami_gpu_row_remap_pending", "gauge", flag),
            (row[4], "aami_gpu_row_remap_failure", "gauge", flag),
        ):
            value = parse(cell)
            if value is not None:
                metrics.add(metric, value, labels, kind)

code, out, err = run(["dmesg"], 10)
metrics.add("aami_source_up", 1 if code == 0 else 0, {"source": "dmesg"})
if code != 0:
    complain("dmesg", code, err or out)
events, fallen, stamp, opened = {}, {}, None, None
for line in out.splitlines() if code == 0 else []:
    match = STAMP.match(line)
    if match:
        stamp = float(match.group(1))  # continuation lines keep the stamp of their message
    xid = XID.search(line)
    fell = FELL.search(line)
    if xid:
        instance = re.search(r"GPU-I:\s*(\d+)", xid.group(2))
        key = (bus_id(xid.group(1)), str(int(instance.group(1))) if instance else "",
               int(xid.group(3)))
        events.setdefault(key, []).append(stamp)
    elif fell:
        fallen.setdefault(bus_id(fell.group(1)), []).append(stamp)
    elif THE_GPU.search(line):
        opened = (bus_id(THE_GPU.search(line).group(1)), stamp, 3)
    elif opened and "fallen off the bus" in line:
        fallen.setdefault(opened[0], []).append(opened[1])
        opened = None
    elif opened:
        opened = (opened[0], opened[1], opened[2] - 1) if opened[2] > 1 else None
# "fallen off the bus" without an Xid line for that GPU still means XID 79.
for bus, stamps in fallen.items():
    if not any(key[0] == bus and key[2] == 79 for key in events):
        events[(bus, "", 79)] = stamps
booted = boot_time()
for (bus, instance, xid), stamps in sorted(events.items()):
    kind = ("hardware" if xid in HARDWARE_XIDS
            else "application" if xid in APPLICATION_XIDS else "other")
    known = gpus.get(bus, {})
    labels = {"pci_bus_id": bus, "gpu": known.get("gpu", ""), "UUID": known.get("UUID", ""),
              "GPU_I_ID": instance, "xid": str(xid), "class": kind}
    metrics.add("aami_gpu_xid_events", len(stamps), labels)
    times = [s for s in stamps if s is not None]
    if times and booted is not None:
        metrics.add("aami_gpu_xid_last_timestamp_seconds", round(booted + max(times), 3), labels)
metrics.print()
"""
)

DEFAULT_SCRIPT_TEMPLATES: list[dict[str, Any]] = [
    {
        "name": "mount-check",
        "script_type": "mount",
        "script_content": MOUNT_CHECK,
        "language": "bash",
        "default_config": {"paths": "/data"},
        "version": "2.0.0",
        "description": "mount_status{path} 1 when the path is a mount point, else 0 "
        "(comma-separated paths; spaces and glob characters are kept as written).",
    },
    {
        "name": "disk-usage",
        "script_type": "disk",
        "script_content": DISK_USAGE,
        "language": "python",
        "default_config": {"mountpoints": "/"},
        "version": "2.0.0",
        "description": "Used space per mount point in percent (comma-separated list).",
    },
    {
        "name": "process-running",
        "script_type": "process",
        "script_content": PROCESS_RUNNING,
        "language": "python",
        "default_config": {"processes": "sshd"},
        "version": "2.1.0",
        "description": "aami_process_running{process} for each comma-separated process "
        "name, matched on the full executable name, not the 15-byte /proc/PID/comm; "
        "zombies do not count.",
    },
    {
        "name": "nvme-health",
        "script_type": "nvme",
        "script_content": NVME_HEALTH,
        "language": "python",
        "default_config": {"sysfs_root": "/sys/class/nvme"},
        "version": "2.0.0",
        "timeout_seconds": 120,
        "description": "NVMe SMART health via `nvme smart-log -o json` (nvme-cli 1.x and "
        '2.x); aami_source_up{source="nvme-cli"} 0 when controllers exist but nvme-cli '
        "does not.",
    },
    {
        "name": "infiniband-ports",
        "script_type": "infiniband",
        "script_content": INFINIBAND_PORTS,
        "language": "python",
        "default_config": {"ports": "", "sysfs_root": "/sys/class/infiniband"},
        "version": "2.0.0",
        "description": "InfiniBand port state and link from sysfs; `ports` names the ports "
        "to watch (device:port, comma-separated; empty: every port).",
    },
    {
        "name": "gpu-health",
        "script_type": "gpu",
        "script_content": GPU_HEALTH,
        "language": "python",
        "default_config": {"expected_gpus": 0},
        "version": "2.0.0",
        "timeout_seconds": 90,
        "description": "Per-GPU temperature against its own slowdown temperature, clock "
        "events, ECC, row remapping, lost GPUs (nvidia-smi) and classified XIDs (dmesg). "
        "Assign it to GPU nodes only: a missing nvidia-smi is a failure "
        "(aami_source_up 0). expected_gpus > 0 alerts when fewer GPUs answer.",
    },
]
