"""The nodes' checks endpoint at fleet size: 10,000 targets, 200 groups, 20 check scripts,
500 policies (global, group and target scoped).

Starts the real `aami server` (SQLite) on a loopback port and drives it with `wrk`
(100 connections, 2 threads) over node ids spread across the fleet, each request with
a node's own token: once without ETag (every answer is the full list) and once with
If-None-Match (every answer is a 304). Prints requests per second and latency
percentiles; a cold pass (every target once, right after a policy change) is timed too.
Run: .venv/bin/python bench/checks.py [--duration 15] [--connections 100]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import insert

from aami.auth.tokens import hash_token
from aami.checks.models import ScriptPolicy, ScriptTemplate
from aami.checks.service import content_hash
from aami.db.migrate import upgrade
from aami.db.session import make_engine
from aami.groups.models import Group
from aami.registration.models import NodeToken
from aami.targets.models import Target, TargetGroup

TOKEN = "bench-admin-token-0123456789"
WRK_SCRIPT = """
local ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
local etags = {}
for line in io.lines("%(etags)s") do etags[#etags + 1] = line end
local tokens = {}
for line in io.lines("%(tokens)s") do tokens[#tokens + 1] = line end
local use_etag = %(use_etag)s
local n = 0
request = function()
  n = n + 1
  local i = (n * 7919) %% #ids + 1
  local headers = {["Authorization"] = "Bearer " .. tokens[i]}
  if use_etag then headers["If-None-Match"] = etags[i] end
  return wrk.format("GET", "/api/v1/checks/target/" .. ids[i], headers)
end
"""


def populate(url: str, targets: int, groups: int, templates: int, policies: int) -> list[str]:
    """Insert the fleet directly; return the node tokens, one per target."""
    engine = make_engine(url)
    upgrade(engine)
    rng = random.Random(7)
    content = "#!/bin/sh\necho aami_bench 1\n"
    template_rows = [
        {
            "id": f"s{t}",
            "name": f"check-{t}",
            "script_type": "bench",
            "script_content": content + f"# {t}\n",
            "language": "sh",
            "default_config": {"a": "1", "b": t},
            "version": "1.0.0",
            "description": "",
            "timeout_seconds": 30,
            "hash": content_hash(content + f"# {t}\n"),
        }
        for t in range(templates)
    ]
    group_rows = [
        {"id": f"grp-{g}", "name": f"group {g}", "description": "", "labels": {}}
        for g in range(groups)
    ]
    target_rows, member_rows, token_rows, tokens = [], [], [], []
    for t in range(targets):
        target_rows.append(
            {
                "id": f"tgt-{t}",
                "hostname": f"gpu-node-{t:05d}",
                "ip_address": f"10.{t // 65536}.{(t // 256) % 256}.{t % 256}",
                "labels": {},
                "status": "active",
            }
        )
        member_rows.append(
            {"target_id": f"tgt-{t}", "group_id": f"grp-{t % groups}", "position": 0}
        )
        second = (t * 7 + 1) % groups
        if second != t % groups:
            member_rows.append(
                {"target_id": f"tgt-{t}", "group_id": f"grp-{second}", "position": 1}
            )
        secret = f"aamin_bench_{t}"
        tokens.append(secret)
        token_rows.append(
            {"id": f"nt-{t}", "target_id": f"tgt-{t}", "token_hash": hash_token(secret)}
        )
    policy_rows = []
    for p in range(policies):
        kind = "global" if p < 20 else ("group" if p < 420 else "target")
        policy_rows.append(
            {
                "id": f"pol-{p}",
                "template_id": f"s{p % templates}",
                "scope": kind,
                "group_id": f"grp-{rng.randrange(groups)}" if kind == "group" else None,
                "target_id": f"tgt-{rng.randrange(targets)}" if kind == "target" else None,
                "config": {"a": str(p)},
                "priority": rng.randrange(0, 200),
                "is_active": rng.random() > 0.1,
            }
        )
    with engine.begin() as connection:
        connection.execute(insert(ScriptTemplate), template_rows)
        connection.execute(insert(Group), group_rows)
        connection.execute(insert(Target), target_rows)
        connection.execute(insert(TargetGroup), member_rows)
        connection.execute(insert(NodeToken), token_rows)
        connection.execute(insert(ScriptPolicy), policy_rows)
    engine.dispose()
    return tokens


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pin(cpu: int) -> list[str]:
    """Keep the server and the load generator off each other's core where possible."""
    taskset = shutil.which("taskset")
    if taskset is None or (os.cpu_count() or 1) < 2:
        return []
    return [taskset, "-c", str(cpu)]


def run_wrk(base: str, script: Path, duration: int, connections: int) -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: scripts/setup installs it (Debian package wrk)")
    result = subprocess.run(
        [
            *_pin(1),
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def summarise(label: str, output: str) -> None:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    percentiles = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    print(
        f"  {label:22s} {float(rps.group(1)) if rps else 0:8.0f} req/s  "
        f"p50 {percentiles.get('50', '?'):>8s}  p90 {percentiles.get('90', '?'):>8s}  "
        f"p99 {percentiles.get('99', '?'):>8s}"
        + (f"  non-2xx/3xx {non_2xx.group(1)}" if non_2xx else "")
        + (f"  socket errors: {errors.group(1)}" if errors else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--templates", type=int, default=20)
    parser.add_argument("--policies", type=int, default=500)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--sample", type=int, default=2000, help="distinct nodes requested")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url = f"sqlite:///{tmp / 'bench.db'}"
        tokens = populate(url, args.targets, args.groups, args.templates, args.policies)
        port = free_port()
        env = {
            **os.environ,
            "AAMI_DATABASE_URL": url,
            "AAMI_ADMIN_TOKEN": TOKEN,
            "PROMETHEUS_RULE_PATH": str(tmp / "rules"),
            "PROMETHEUS_RELOAD_ENABLED": "false",
        }
        server_log = (tmp / "server.log").open("wb")
        server = subprocess.Popen(
            [
                *_pin(0),
                sys.executable,
                "-m",
                "aami",
                "server",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            client = httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
            )
            for _attempt in range(300):
                try:
                    if client.get("/health/ready").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            sample = sorted(random.Random(1).sample(range(args.targets), args.sample))
            ids = [f"tgt-{t}" for t in sample]
            cold = []
            for target_id in ids[:500]:
                start = time.perf_counter()
                response = client.get(f"/api/v1/checks/target/{target_id}")
                cold.append(time.perf_counter() - start)
                assert response.status_code == 200
            etags = [client.get(f"/api/v1/checks/target/{i}").headers["etag"] for i in ids]
            checks_per_node = (
                sum(len(client.get(f"/api/v1/checks/target/{i}").json()) for i in ids[:200]) / 200
            )
            (tmp / "ids").write_text("\n".join(ids) + "\n")
            (tmp / "etags").write_text("\n".join(etags) + "\n")
            (tmp / "tokens").write_text("\n".join(tokens[t] for t in sample) + "\n")
            results = {}
            for label, use_etag in (("full response", "false"), ("304 with ETag", "true")):
                script = tmp / f"wrk-{use_etag}.lua"
                script.write_text(
                    WRK_SCRIPT
                    % {
                        "ids": tmp / "ids",
                        "etags": tmp / "etags",
                        "tokens": tmp / "tokens",
                        "use_etag": use_etag,
                    }
                )
                run_wrk(base, script, 2, args.connections)  # warm-up: connections, caches
                results[label] = run_wrk(base, script, args.duration, args.connections)
        finally:
            server.terminate()
            server.wait(30)
            server_log.close()
            errors = (tmp / "server.log").read_text().count("Traceback")
            if errors:
                print(f"server log: {errors} tracebacks")

    cold.sort()
    print(
        f"Checks endpoint: {args.targets} targets, {args.groups} groups, {args.templates} "
        f"scripts, {args.policies} policies; {checks_per_node:.1f} checks per node on average"
    )
    print(
        f"wrk: {args.connections} connections, 1 thread on its own core, {args.duration}s each, "
        f"{args.sample} distinct nodes with their own node tokens; aami server on SQLite"
    )
    for label, output in results.items():
        summarise(label, output)
    print(
        f"  first request per node (cache cold, sequential): p50 "
        f"{cold[len(cold) // 2] * 1000:.2f} ms  p99 {cold[int(len(cold) * 0.99)] * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
