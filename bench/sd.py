"""Service discovery at fleet size: 10,000 targets, a third of them with 3 exporters.

Starts the real `aami server` (SQLite) on a loopback port and measures over HTTP, as
Prometheus sees it: p50/p99 of a full response (document cached for the current
inventory revision), of a 304, and of a cold render (the first request after a change).
Run: .venv/bin/python bench/sd.py [--targets N] [--requests N]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import insert

from aami.db.migrate import upgrade
from aami.db.session import make_engine
from aami.groups.models import Group
from aami.targets.models import Exporter, Target, TargetGroup

TOKEN = "bench-admin-token-0123456789"


def populate(url: str, targets: int, groups: int) -> int:
    """Insert the fleet directly (the API path is not what is measured); return exporters."""
    engine = make_engine(url)
    upgrade(engine)
    group_rows = [
        {"id": f"grp-{g}", "name": f"group {g}", "description": "", "labels": {}}
        for g in range(groups)
    ]
    target_rows, member_rows, exporter_rows = [], [], []
    for t in range(targets):
        target_id = f"tgt-{t}"
        target_rows.append(
            {
                "id": target_id,
                "hostname": f"gpu-node-{t:05d}",
                "ip_address": f"10.{t // 65536}.{(t // 256) % 256}.{t % 256}",
                "labels": {"rack": f"r{t % 40}", "type": "gpu"},
                "status": "active",
            }
        )
        member_rows.append({"target_id": target_id, "group_id": f"grp-{t % groups}", "position": 0})
        member_rows.append(
            {"target_id": target_id, "group_id": f"grp-{(t + 1) % groups}", "position": 1}
        )
        kinds = [("node_exporter", 9100)]
        if t % 3 == 0:
            kinds += [("dcgm_exporter", 9400), ("custom", 9835)]
        for kind, port in kinds:
            exporter_rows.append(
                {
                    "id": f"exp-{t}-{port}",
                    "target_id": target_id,
                    "type": kind,
                    "port": port,
                    "metrics_path": "/metrics",
                    "enabled": True,
                }
            )
    with engine.begin() as connection:
        connection.execute(insert(Group), group_rows)
        connection.execute(insert(Target), target_rows)
        connection.execute(insert(TargetGroup), member_rows)
        connection.execute(insert(Exporter), exporter_rows)
    engine.dispose()
    return len(exporter_rows)


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    q1, _, q3 = statistics.quantiles(ordered, n=4)
    return (
        f"p50 {p50 * 1000:7.2f} ms  p99 {p99 * 1000:7.2f} ms  "
        f"IQR {q1 * 1000:.2f}-{q3 * 1000:.2f} ms  (n={len(ordered)})"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cold", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        exporters = populate(url, args.targets, args.groups)
        port = free_port()
        env = {**os.environ, "AAMI_DATABASE_URL": url, "AAMI_ADMIN_TOKEN": TOKEN}
        server = subprocess.Popen(
            [sys.executable, "-m", "aami", "server", "--port", str(port), "--log-level", "warning"],
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
            ) as client:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        if client.get("/health/ready").status_code == 200:
                            break
                    except httpx.HTTPError:
                        if time.monotonic() > deadline:
                            raise
                    time.sleep(0.1)
                first = client.get("/api/v1/sd/prometheus")
                assert len(first.json()) == exporters
                size = len(first.content)

                cold = []
                for i in range(args.cold):
                    response = client.put("/api/v1/targets/tgt-0", json={"labels": {"rev": str(i)}})
                    assert response.status_code == 200, response.text
                    start = time.perf_counter()
                    response = client.get("/api/v1/sd/prometheus")
                    cold.append(time.perf_counter() - start)
                    assert response.status_code == 200
                etag = response.headers["etag"]

                full, not_modified = [], []
                for _ in range(args.requests):
                    start = time.perf_counter()
                    response = client.get("/api/v1/sd/prometheus")
                    full.append(time.perf_counter() - start)
                    assert response.status_code == 200
                    start = time.perf_counter()
                    response = client.get("/api/v1/sd/prometheus", headers={"If-None-Match": etag})
                    not_modified.append(time.perf_counter() - start)
                    assert response.status_code == 304
        finally:
            server.terminate()
            server.wait(10)

    print(
        f"SD benchmark: {args.targets} targets, {exporters} exporters, "
        f"{size / 1e6:.1f} MB document; aami server on SQLite over loopback HTTP"
    )
    print(f"  full response (cached) {summary(full)}")
    print(f"  304 Not Modified       {summary(not_modified)}")
    print(f"  cold render after edit {summary(cold)}")


if __name__ == "__main__":
    main()
