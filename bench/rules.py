"""Rule publishing at fleet size: 1,000 groups x 10 templates = 10,000 rules.

Starts the real `aami server` (SQLite) and a real Prometheus on loopback ports, then
1. regenerates every rule file from scratch (POST /api/v1/prometheus/rules/regenerate),
   reporting the publisher's own split: render+validate (in-process), promtool, write,
   reload (Prometheus loading 10,000 rules);
2. changes one rule through the API and measures the time from the API call returning to
   the new file being renamed into place (debounce included), and how many files the
   publish rewrote.
Run: .venv/bin/python bench/rules.py [--groups N] [--templates N] [--runs N] [--changes N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import insert

from aami.alerts.models import AlertRule, AlertTemplate
from aami.db.migrate import upgrade
from aami.db.session import make_engine
from aami.groups.models import Group

TOKEN = "bench-admin-token-0123456789"
METRICS = [
    "node_load1",
    "node_load5",
    "node_load15",
    "node_memory_MemFree_bytes",
    "node_procs_running",
    "node_procs_blocked",
    "node_context_switches_total",
    "node_intr_total",
    "node_forks_total",
    "node_boot_time_seconds",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def populate(url: str, groups: int, templates: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    template_rows = [
        {
            "id": f"t{t}",
            "name": f"Bench{t}",
            "description": "",
            "query_template": (
                f'{METRICS[t % len(METRICS)]}{{group_id="{{{{.group_id}}}}"}} > {{{{.threshold}}}}'
            ),
            "default_config": {"threshold": 10},
            "severity": "warning",
            "for_duration": "5m",
            "labels": {},
            "annotations": {"summary": "{{ $labels.instance }} at {{ $value }}"},
        }
        for t in range(templates)
    ]
    group_rows = [
        {"id": f"grp-{g:04d}", "name": f"cluster {g}", "description": "", "labels": {}}
        for g in range(groups)
    ]
    rule_rows = [
        {
            "id": f"r-{g}-{t}",
            "template_id": f"t{t}",
            "group_id": f"grp-{g:04d}",
            "scope_key": f"grp-{g:04d}",
            "config": {"threshold": g % 100, "for_duration": "5m"},
            "enabled": True,
            "labels": {},
            "annotations": {},
        }
        for g in range(groups)
        for t in range(templates)
    ]
    with engine.begin() as connection:
        connection.execute(insert(AlertTemplate), template_rows)
        connection.execute(insert(Group), group_rows)
        connection.execute(insert(AlertRule), rule_rows)
    engine.dispose()


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not ready")
        time.sleep(0.1)


def summary(samples: list[float], unit: str = "ms") -> str:
    scale = 1000 if unit == "ms" else 1
    ordered = sorted(samples)
    text = f"median {statistics.median(ordered) * scale:8.1f} {unit}"
    if len(ordered) > 1:
        text += f"  min {ordered[0] * scale:.1f}  max {ordered[-1] * scale:.1f}"
    if len(ordered) >= 4:
        q1, _, q3 = statistics.quantiles(ordered, n=4)
        text += f"  IQR {q1 * scale:.1f}-{q3 * scale:.1f}"
    return text + f"  (n={len(ordered)})"


def regenerate(client: httpx.Client) -> dict[str, Any]:
    """Regenerate every file and return the pass's outcome; past the API's 30 s wait (a
    202), the pass is read from the history once it has finished."""
    newest = client.get("/api/v1/prometheus/rules/history?limit=1").json()["data"]
    before = newest[0]["id"] if newest else 0
    response = client.post("/api/v1/prometheus/rules/regenerate?wait=30")
    if response.status_code != 202:
        outcome: dict[str, Any] = response.json()
        return outcome
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        rows = client.get("/api/v1/prometheus/rules/history?limit=5").json()["data"]
        done = [
            row
            for row in rows
            if row["id"] > before and row["trigger"] == "regenerate" and row["finished_at"]
        ]
        if done:
            row = done[-1]
            return {**row, "confirmed": row["result"] == "ok"}
        time.sleep(0.05)
    raise RuntimeError("the regenerate pass did not finish in 30 min")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--templates", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument(
        "--reload-timeout", type=float, default=600, help="PROMETHEUS_RELOAD_TIMEOUT, seconds"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url = f"sqlite:///{tmp / 'bench.db'}"
        populate(url, args.groups, args.templates)
        rules = tmp / "rules"
        rules.mkdir()
        prom_port, server_port = free_port(), free_port()
        (tmp / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {"evaluation_interval": "1m"},
                    "rule_files": [str(rules / "*.yml")],
                }
            )
        )
        prometheus = subprocess.Popen(
            [
                shutil.which("prometheus") or "prometheus",
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--web.enable-lifecycle",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        env = {
            **os.environ,
            "AAMI_DATABASE_URL": url,
            "AAMI_ADMIN_TOKEN": TOKEN,
            "PROMETHEUS_URL": f"http://127.0.0.1:{prom_port}",
            "PROMETHEUS_RULE_PATH": str(rules),
            "PROMETHEUS_VALIDATE_RULES": "true",
            # The 30 s default is too short for Prometheus to load 30,000 rules here.
            "PROMETHEUS_RELOAD_TIMEOUT": str(args.reload_timeout),
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aami",
                "server",
                "--port",
                str(server_port),
                "--log-level",
                "warning",
            ],
            env=env,
        )
        base = f"http://127.0.0.1:{server_port}"
        try:
            wait_http(f"http://127.0.0.1:{prom_port}/-/ready")
            wait_http(f"{base}/health/ready")
            client = httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300
            )
            # let the startup reconcile finish before measuring
            deadline = time.monotonic() + 3600  # 100,000 rules take minutes on 2 cores
            while len(list(rules.glob("*.yml"))) < args.groups:
                if time.monotonic() > deadline:
                    raise RuntimeError("startup publish did not finish")
                time.sleep(0.2)
            while time.monotonic() < deadline:
                history = client.get("/api/v1/prometheus/rules/history").json()["data"]
                if history and history[0]["finished_at"]:
                    break
                time.sleep(0.5)
            print(
                "startup publish:",
                {k: history[0][k] for k in ("result", "reload", "error")},
                flush=True,
            )

            parts: dict[str, list[float]] = {
                k: [] for k in ("render", "promtool", "write", "reload", "total")
            }
            for _ in range(args.runs):
                for path in rules.glob("*.yml"):
                    path.unlink()
                start = time.perf_counter()
                result = regenerate(client)
                total = time.perf_counter() - start
                brief = {k: result.get(k) for k in ("result", "reload", "error", "timings")}
                assert len(result["files_written"]) == args.groups, brief
                assert result["result"] == "ok", brief
                assert result["confirmed"] is True, brief
                timings = result["timings"]
                parts["render"].append(timings["render"] + timings.get("stage", 0))
                parts["promtool"].append(timings.get("promtool", 0))
                parts["write"].append(timings["write"])
                parts["reload"].append(timings.get("reload", 0))
                parts["total"].append(total)
            without_reload = [t - r for t, r in zip(parts["total"], parts["reload"], strict=True)]

            # What every periodic check (and every status request) costs: desired revisions
            # from the database, every file's stamp, Prometheus's loaded stamps, compared.
            status_times = []
            for _ in range(20):
                start = time.perf_counter()
                status = client.get("/api/v1/prometheus/status").json()
                status_times.append(time.perf_counter() - start)
                assert status["in_sync"] is True, status["out_of_sync"][:5]

            latencies, rewritten = [], []
            target = rules / "group-grp-0007.yml"

            def last_publish() -> dict[str, Any]:
                data = client.get("/api/v1/prometheus/rules/history", params={"limit": 1})
                entry: dict[str, Any] = data.json()["data"][0]
                return entry

            for index in range(args.changes):
                previous = last_publish()["id"]
                before = target.stat().st_mtime_ns
                response = client.put(
                    "/api/v1/alert-rules/r-7-3", json={"config": {"threshold": 1000 + index}}
                )
                returned = time.perf_counter()
                assert response.status_code == 200, response.text
                while target.stat().st_mtime_ns == before:
                    time.sleep(0.0005)
                latencies.append(time.perf_counter() - returned)
                # the publish (reload included) finishes before the next change is made
                for _attempt in range(1200):
                    entry = last_publish()
                    if entry["id"] > previous and entry["finished_at"]:
                        break
                    time.sleep(0.05)
                assert entry["trigger"] == "change", entry
                rewritten.append(len(entry["files_written"]))
        finally:
            server.terminate()
            prometheus.terminate()
            server.wait(30)
            prometheus.wait(30)

    rules_total = args.groups * args.templates
    print(
        f"Rules benchmark: {args.groups} groups x {args.templates} templates = "
        f"{rules_total} rules in {args.groups} files; SQLite, promtool on, real Prometheus"
    )
    print("Regenerate all (files removed before each run, so every file is written):")
    for key in ("render", "promtool", "write", "reload"):
        label = {"render": "render+validate", "reload": "reload+confirm"}.get(key, key)
        print(f"  {label:16s} {summary(parts[key])}")
    print(f"  {'total':16s} {summary(parts['total'])}")
    print(f"  {'total - reload':16s} {summary(without_reload)}")
    print(f"Status (desired/written/loaded measured, {args.groups} groups):")
    print(f"  GET /prometheus/status      {summary(status_times)}")
    print("One rule changed through the API:")
    print(f"  API return -> file renamed  {summary(latencies)}")
    print(f"  files rewritten per change  {sorted(set(rewritten))} (each of {len(rewritten)})")


if __name__ == "__main__":
    main()
