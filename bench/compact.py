"""Compact threshold mode against per-group rules: Prometheus's rule-evaluation work and
how long a threshold change takes to be evaluated.

For each fleet size (groups x 10 templates) and each mode, starts the real `aami server`
(SQLite, rule validation off to keep set-up short) and a real Prometheus scraping
- a synthetic exporter in this process serving `bench_metric_<t>{group_id, group,
  instance}` for every node of every group (--nodes per group), and
- in compact mode, AAMI's /api/v1/prometheus/thresholds (honor_labels),
then reports
1. rule-evaluation time per cycle: the sum of `prometheus_rule_group_last_duration_seconds`
   over AAMI's rule groups, sampled once per evaluation cycle, and the firing alerts
   (both modes must fire the same number);
2. (at --change-groups groups) a threshold change through the API until Prometheus's
   ALERTS shows it: time from the PUT returning to the alert firing, then to it resolving,
   and whether Prometheus was reloaded for it.
The modes run one after the other (never two Prometheus at once on a shared machine).
Run: .venv/bin/python bench/compact.py [--groups 1,100,1000] [--nodes 3] [--interval 5]
     [--samples 8] [--changes 5] [--change-groups 1000]
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
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from aami.alerts.models import AlertRule, AlertTemplate
from aami.db.migrate import upgrade
from aami.db.session import make_engine
from aami.groups.models import Group

TOKEN = "bench-admin-token-0123456789"
TEMPLATES = 10
FIRING_THRESHOLD = 50  # a node's value is (group * 7 + node * 13 + template) % 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> float:
    """Poll ``check`` until true; return the seconds it took."""
    start = time.perf_counter()
    while True:
        try:
            if check():
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(step)


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


# ---- the synthetic fleet -----------------------------------------------------------------


def exposition(groups: int, nodes: int) -> bytes:
    lines = []
    for t in range(TEMPLATES):
        lines.append(f"# TYPE bench_metric_{t} gauge")
        for g in range(groups):
            for n in range(nodes):
                value = (g * 7 + n * 13 + t) % 100
                lines.append(
                    f'bench_metric_{t}{{group_id="grp-{g:04d}",group="cluster {g}",'
                    f'instance="node-{g}-{n}"}} {value}'
                )
    return ("\n".join(lines) + "\n").encode()


@contextmanager
def exporter(body: bytes) -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def populate(url: str, groups: int, mode: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    templates = [
        {
            "id": f"t{t}",
            "name": f"Bench{t}",
            "description": "",
            "query_template": (
                f'bench_metric_{t}{{group_id="{{{{.group_id}}}}"}} > {{{{.threshold}}}}'
            ),
            "default_config": {"threshold": FIRING_THRESHOLD},
            "parameters": {},
            "severity": "warning",
            "for_duration": "0s",
            "labels": {},
            "annotations": {"summary": "{{ $labels.instance }} at {{ $value }}"},
            "threshold_mode": mode,
        }
        for t in range(TEMPLATES)
    ]
    group_rows = [
        {"id": f"grp-{g:04d}", "name": f"cluster {g}", "description": "", "labels": {}}
        for g in range(groups)
    ]
    rules = [
        {
            "id": f"r-{g}-{t}",
            "template_id": f"t{t}",
            "group_id": f"grp-{g:04d}",
            "scope_key": f"grp-{g:04d}",
            "config": {"threshold": FIRING_THRESHOLD},
            "enabled": True,
            "labels": {},
            "annotations": {},
        }
        for g in range(groups)
        for t in range(TEMPLATES)
    ]
    with engine.begin() as connection:
        connection.execute(insert(AlertTemplate), templates)
        connection.execute(insert(Group), group_rows)
        connection.execute(insert(AlertRule), rules)
    engine.dispose()


# ---- one mode at one size ----------------------------------------------------------------


@dataclass
class Run:
    mode: str
    groups: int
    eval_seconds: list[float] = field(default_factory=list)
    firing: int = 0
    to_fire: list[float] = field(default_factory=list)
    to_resolve: list[float] = field(default_factory=list)
    reloads: int = 0
    cpu_per_cycle: float = 0.0  # Prometheus's CPU seconds per evaluation interval


@dataclass
class Stack:
    tmp: Path
    prometheus_url: str
    api: httpx.Client
    processes: list[subprocess.Popen[bytes]]

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.prometheus_url}/api/v1/query", params={"query": promql}, timeout=30
        )
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def own_metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        text = httpx.get(f"{self.prometheus_url}/metrics", timeout=30).text
        found: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found.setdefault(sample.name, []).append((sample.labels, sample.value))
        return found


def _eval_state(stack: Stack) -> tuple[float, float, int]:
    """(sum of the AAMI rule groups' last durations, the oldest last evaluation, groups)."""
    metrics = stack.own_metrics()
    durations = [
        v
        for labels, v in metrics.get("prometheus_rule_group_last_duration_seconds", [])
        if "aami-" in labels.get("rule_group", "")
    ]
    evaluated = [
        v
        for labels, v in metrics.get("prometheus_rule_group_last_evaluation_timestamp_seconds", [])
        if "aami-" in labels.get("rule_group", "")
    ]
    return sum(durations), min(evaluated, default=0.0), len(durations)


def _reload_count(stack: Stack) -> float:
    metrics = stack.own_metrics()
    (value,) = [v for _, v in metrics["prometheus_config_last_reload_success_timestamp_seconds"]]
    return value


@contextmanager
def started(
    tmp: Path, args: argparse.Namespace, groups: int, mode: str, port: int
) -> Iterator[Stack]:
    url = f"sqlite:///{tmp / 'bench.db'}"
    populate(url, groups, mode)
    rules = tmp / "rules"
    rules.mkdir()
    prom_port, server_port = free_port(), free_port()
    interval = f"{args.interval}s"
    evaluation = f"{args.eval_interval or args.interval}s"
    thresholds_every = f"{args.thresholds_interval or args.interval}s"
    scrape: list[dict[str, Any]] = [
        {
            "job_name": "fleet",
            "honor_labels": True,
            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
        }
    ]
    if mode == "compact":
        scrape.append(
            {
                "job_name": "aami-thresholds",
                "scrape_interval": thresholds_every,
                "metrics_path": "/api/v1/prometheus/thresholds",
                "honor_labels": True,
                "authorization": {"type": "Bearer", "credentials": TOKEN},
                "static_configs": [{"targets": [f"127.0.0.1:{server_port}"]}],
            }
        )
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": evaluation},
        "rule_files": [str(rules / "*.yml")],
        "scrape_configs": scrape,
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "AAMI_DATABASE_URL": url,
        "AAMI_ADMIN_TOKEN": TOKEN,
        "PROMETHEUS_URL": f"http://127.0.0.1:{prom_port}",
        "PROMETHEUS_RULE_PATH": str(rules),
        "PROMETHEUS_VALIDATE_RULES": "false",
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
    base = f"http://127.0.0.1:{server_port}"
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300)
    stack = Stack(tmp, f"http://127.0.0.1:{prom_port}", api, [server, prometheus])
    try:
        wait_until(lambda: httpx.get(f"{base}/health/ready").status_code == 200, 120, "aami")
        wait_until(
            lambda: httpx.get(f"{stack.prometheus_url}/-/ready").status_code == 200, 120, "prom"
        )
        wanted = groups if mode == "per_group" else 1
        wait_until(
            lambda: (
                api.get("/api/v1/prometheus/status").json()["in_sync"] is True
                and _eval_state(stack)[2] == wanted
            ),
            600,
            "rule files published and loaded",
            step=0.5,
        )
        yield stack
    finally:
        api.close()
        for process in reversed(stack.processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _cpu_seconds(stack: Stack) -> float:
    ((_, value),) = stack.own_metrics()["process_cpu_seconds_total"]
    return value


def measure_eval(stack: Stack, run: Run, samples: int, interval: int) -> None:
    """The rule groups' summed wall-clock durations per cycle (which overstate the work
    when many groups queue for the same cores), and Prometheus's CPU seconds per interval
    over the same cycles (scrapes included: the same in both modes)."""
    _, oldest, _ = _eval_state(stack)
    cpu_start, wall_start = _cpu_seconds(stack), time.monotonic()
    # two full cycles after everything is loaded and scraped, then one sample per cycle
    for index in range(samples + 2):
        wait_until(
            lambda after=oldest: _eval_state(stack)[1] > after, 600, "an evaluation cycle", 0.2
        )
        total, oldest, _ = _eval_state(stack)
        run.eval_seconds.append(total)
        if index == 1:
            cpu_start, wall_start = _cpu_seconds(stack), time.monotonic()
    cycles = (time.monotonic() - wall_start) / interval
    run.cpu_per_cycle = (_cpu_seconds(stack) - cpu_start) / cycles
    del run.eval_seconds[:2]
    result = stack.query('count(ALERTS{alertstate="firing"})')
    run.firing = int(float(result[0]["value"][1])) if result else 0


def measure_change(stack: Stack, run: Run, changes: int) -> None:
    """Group 7, template 3: its nodes' values are 52, 65 and 78 (with 3 nodes); a threshold
    of 99 resolves them, 50 fires them again."""
    firing = 'ALERTS{aami_template="Bench3",group_id="grp-0007",alertstate="firing"}'
    wait_until(lambda: bool(stack.query(firing)), 120, "the alert firing before changes")
    before = _reload_count(stack)
    reloads = 0
    for index in range(changes):
        for threshold, fires, samples in ((99, False, run.to_resolve), (50, True, run.to_fire)):
            response = stack.api.put(
                "/api/v1/alert-rules/r-7-3", json={"config": {"threshold": threshold}}
            )
            assert response.status_code == 200, response.text
            samples.append(
                wait_until(
                    lambda fires=fires: bool(stack.query(firing)) is fires,
                    120,
                    f"change {index} evaluated",
                    0.02,
                )
            )
            now = _reload_count(stack)
            reloads += now != before
            before = now
    run.reloads = reloads


def within(run: Run, seconds: float) -> str:
    both = run.to_fire + run.to_resolve
    return f"{sum(t <= seconds for t in both)} of {len(both)} changes (max {max(both):.1f}s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", default="1,100,1000")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument(
        "--fleet",
        type=int,
        default=0,
        help="a fixed fleet of this many nodes split over the groups (instead of --nodes "
        "per group), so every size evaluates the same series",
    )
    parser.add_argument("--interval", type=int, default=5)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--change-groups", type=int, default=1000)
    parser.add_argument(
        "--eval-interval", type=int, default=0, help="rule evaluation interval (default --interval)"
    )
    parser.add_argument(
        "--thresholds-interval",
        type=int,
        default=0,
        help="scrape interval of the aami-thresholds job (default --interval)",
    )
    parser.add_argument("--modes", default="per_group,compact")
    args = parser.parse_args()
    sizes = [int(size) for size in args.groups.split(",")]
    fleet = (
        f"a fleet of {args.fleet} nodes split over the groups"
        if args.fleet
        else f"{args.nodes} nodes per group"
    )
    print(
        f"{os.cpu_count()} cores; {fleet}, {TEMPLATES} templates, "
        f"fleet scrape every {args.interval}s, evaluation every "
        f"{args.eval_interval or args.interval}s, thresholds scrape every "
        f"{args.thresholds_interval or args.interval}s",
        flush=True,
    )
    runs: list[Run] = []
    for groups in sizes:
        body = exposition(groups, max(3, args.fleet // groups) if args.fleet else args.nodes)
        with exporter(body) as port:
            for mode in args.modes.split(","):
                run = Run(mode, groups)
                with tempfile.TemporaryDirectory() as tmp_name:
                    started_at = time.perf_counter()
                    with started(Path(tmp_name), args, groups, mode, port) as stack:
                        setup = time.perf_counter() - started_at
                        measure_eval(stack, run, args.samples, args.interval)
                        if groups == args.change_groups:
                            measure_change(stack, run, args.changes)
                runs.append(run)
                print(
                    f"{groups:5d} groups x {TEMPLATES} {mode:9s} (set-up {setup:.0f}s): "
                    f"rule evaluation per cycle {summary(run.eval_seconds)}; "
                    f"Prometheus CPU {run.cpu_per_cycle:.2f} s per {args.interval}s cycle; "
                    f"{run.firing} alerts firing",
                    flush=True,
                )
                if run.to_fire:
                    print(
                        f"      threshold change -> firing   {summary(run.to_fire)}\n"
                        f"      threshold change -> resolved {summary(run.to_resolve)}\n"
                        f"      Prometheus reloads for {2 * args.changes} changes: {run.reloads}\n"
                        f"      within one thresholds scrape interval: "
                        f"{within(run, args.thresholds_interval or args.interval)}",
                        flush=True,
                    )
    if set(args.modes.split(",")) != {"per_group", "compact"}:
        return
    print("\nPrometheus CPU seconds per cycle (per_group / compact):")
    for groups in sizes:
        cpu = {r.mode: r.cpu_per_cycle for r in runs if r.groups == groups}
        print(f"  {groups:5d} groups: {cpu['per_group']:6.2f} s / {cpu['compact']:6.2f} s")
    print("\nrule evaluation per cycle, median (per_group / compact):")
    for groups in sizes:
        pair = {r.mode: statistics.median(r.eval_seconds) for r in runs if r.groups == groups}
        ratio = pair["per_group"] / pair["compact"] if pair["compact"] else float("nan")
        print(
            f"  {groups:5d} groups: {pair['per_group'] * 1000:9.1f} ms / "
            f"{pair['compact'] * 1000:7.1f} ms = {ratio:.1f}x"
        )


if __name__ == "__main__":
    main()
