"""The nodes' checks endpoint under an open-loop load: requests arrive at a constant rate
whether or not earlier ones were answered, as polls from a fleet do.

Builds the fleet of bench/checks.py (10,000 targets, 200 groups, 20 scripts, 500
policies; each request with the node's own token), starts the real `aami server`
(SQLite, `--workers N`) and sends `--rate` requests per second for `--duration` seconds
over keep-alive connections (at most `--connections`; a request that finds none free
waits for one, and that wait counts). Latency is measured from the moment a request was
due, not from when it could be sent, so a stalled server cannot hide its stall by slowing
the generator down (no coordinated omission). Prints p50/p90/p99/max and the achieved
rate for each of `--runs` runs and their median, then the closed-loop p99 of `wrk` at
`--closed-connections` connections (bench/checks.py's load) on the same server.

Run: .venv/bin/python bench/checks_open.py [--workers 2] [--rate 1000] [--duration 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from checks import TOKEN, WRK_SCRIPT, _pin, free_port, populate, run_wrk, summarise

try:
    import uvloop
except ImportError:  # pragma: no cover - uvicorn[standard] brings it
    uvloop = None


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds, from the due time
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    elapsed: float = 0.0
    timeline: dict[int, float] = field(default_factory=dict)  # second -> worst latency

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


class Pool:
    """Keep-alive connections to the server; at most ``size`` open at once."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.size = host, port, size
        self.opened = 0
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )

    async def take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.idle.empty() and self.opened < self.size:
            self.opened += 1
            try:
                return await asyncio.open_connection(self.host, self.port)
            except OSError:
                self.opened -= 1
                raise
        return await self.idle.get()

    def give(self, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.idle.put_nowait(connection)

    def drop(self, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.opened -= 1
        connection[1].close()


async def exchange(
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes
) -> tuple[int, bool]:
    """Send one request, read its whole response; (status, whether the server keeps the
    connection open)."""
    reader, writer = connection
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, keep = 0, True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            keep = False
    if length:
        await reader.readexactly(length)
    return status, keep


async def fire(pool: Pool, request: bytes, due: float, result: Result, start: float) -> None:
    try:
        connection = await pool.take()
    except OSError:
        result.errors += 1
        return
    try:
        status, keep = await asyncio.wait_for(exchange(connection, request), 30)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        result.errors += 1
        pool.drop(connection)
        return
    latency = time.perf_counter() - due
    result.latencies.append(latency)
    result.statuses[status] = result.statuses.get(status, 0) + 1
    second = int(due - start)
    result.timeline[second] = max(result.timeline.get(second, 0.0), latency)
    if keep:
        pool.give(connection)
    else:
        pool.drop(connection)


async def drive(
    host: str, port: int, requests: list[bytes], rate: float, duration: float, connections: int
) -> Result:
    """Send ``rate`` requests a second for ``duration`` seconds, each when it is due
    (``time.perf_counter``: uvloop's ``loop.time()`` counts whole milliseconds)."""
    loop = asyncio.get_running_loop()
    clock = time.perf_counter
    pool = Pool(host, port, connections)
    result = Result()
    total = int(rate * duration)
    start = clock() + 0.05
    tasks: set[asyncio.Task[None]] = set()
    sent = 0
    while sent < total:
        now = clock()
        due_now = min(total, int((now - start) * rate) + 1)
        while sent < due_now:
            due = start + sent / rate
            task = loop.create_task(fire(pool, requests[sent % len(requests)], due, result, start))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.sleep(max(0.0, start + sent / rate - clock()))
    while tasks:
        await asyncio.gather(*list(tasks))
    result.elapsed = clock() - start
    while not pool.idle.empty():
        pool.idle.get_nowait()[1].close()
    return result


def build_requests(ids: list[str], tokens: list[str], etags: list[str] | None) -> list[bytes]:
    """One request per node, in the order the fleet's polls arrive (shuffled)."""
    out = []
    for index, (target_id, token) in enumerate(zip(ids, tokens, strict=True)):
        head = (
            f"GET /api/v1/checks/target/{target_id} HTTP/1.1\r\nHost: aami\r\n"
            f"Authorization: Bearer {token}\r\n"
        )
        if etags is not None:
            head += f"If-None-Match: {etags[index]}\r\n"
        out.append((head + "\r\n").encode())
    random.Random(3).shuffle(out)
    return out


@contextmanager
def server_running(tmp: Path, url: str, workers: int) -> Iterator[str]:
    """`aami server --workers N` on SQLite; one worker is kept on core 0 as bench/checks.py
    does, more use every core."""
    port = free_port()
    env = {
        **os.environ,
        "AAMI_DATABASE_URL": url,
        "AAMI_ADMIN_TOKEN": TOKEN,
        "PROMETHEUS_RULE_PATH": str(tmp / "rules"),
        "PROMETHEUS_RELOAD_ENABLED": "false",
    }
    log = (tmp / "server.log").open("wb")
    argv = [sys.executable, "-m", "aami", "server", "--port", str(port)]
    argv += ["--log-level", "warning", "--workers", str(workers)]
    server = subprocess.Popen(
        [*(_pin(0) if workers == 1 else []), *argv], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _attempt in range(300):
            try:
                if httpx.get(f"{base}/health/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(60)
        log.close()
        tracebacks = (tmp / "server.log").read_text().count("Traceback")
        if tracebacks:
            print(f"server log: {tracebacks} tracebacks")


def report(label: str, result: Result, rate: float) -> None:
    ms = 1000.0
    print(
        f"  {label:8s} offered {rate:6.0f}/s "
        f"achieved {len(result.latencies) / result.elapsed:6.0f}/s"
        f"  p50 {result.percentile(0.5) * ms:7.2f}  p90 {result.percentile(0.9) * ms:7.2f}"
        f"  p99 {result.percentile(0.99) * ms:7.2f}  max {max(result.latencies) * ms:8.2f} ms"
        f"  statuses {dict(sorted(result.statuses.items()))}  errors {result.errors}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--templates", type=int, default=20)
    parser.add_argument("--policies", type=int, default=500)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rate", type=float, default=1000.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=256, help="open at most")
    parser.add_argument("--full", action="store_true", help="no If-None-Match: every 200")
    parser.add_argument("--closed-connections", type=int, default=100, help="0: no wrk run")
    parser.add_argument("--closed-duration", type=int, default=10)
    parser.add_argument("--timeline", action="store_true", help="worst latency per second")
    args = parser.parse_args()
    if uvloop is not None:
        uvloop.install()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url = f"sqlite:///{tmp / 'bench.db'}"
        tokens = populate(url, args.targets, args.groups, args.templates, args.policies)
        ids = [f"tgt-{t}" for t in range(args.targets)]
        with server_running(tmp, url, args.workers) as base:
            client = httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
            )
            etags = [client.get(f"/api/v1/checks/target/{i}").headers["etag"] for i in ids]
            requests = build_requests(ids, tokens, None if args.full else etags)
            host, port = "127.0.0.1", int(base.rsplit(":", 1)[1])
            # Warm-up: every node's token once, connections opened.
            asyncio.run(drive(host, port, requests, args.rate, len(ids) / args.rate, 64))
            results = []
            for run in range(args.runs):
                result = asyncio.run(
                    drive(host, port, requests, args.rate, args.duration, args.connections)
                )
                results.append(result)
                report(f"run {run + 1}", result, args.rate)
                if args.timeline:
                    worst = " ".join(
                        f"{s}:{v * 1000:.0f}" for s, v in sorted(result.timeline.items())
                    )
                    print(f"    worst ms per second: {worst}")
            closed = None
            if args.closed_connections:
                sample = sorted(random.Random(1).sample(range(args.targets), 2000))
                (tmp / "ids").write_text("\n".join(ids[t] for t in sample) + "\n")
                (tmp / "etags").write_text("\n".join(etags[t] for t in sample) + "\n")
                (tmp / "tokens").write_text("\n".join(tokens[t] for t in sample) + "\n")
                script = tmp / "wrk.lua"
                script.write_text(
                    WRK_SCRIPT
                    % {
                        "ids": tmp / "ids",
                        "etags": tmp / "etags",
                        "tokens": tmp / "tokens",
                        "use_etag": "false" if args.full else "true",
                    }
                )
                run_wrk(base, script, 2, args.closed_connections)
                closed = run_wrk(base, script, args.closed_duration, args.closed_connections)

    p99s = sorted(r.percentile(0.99) * 1000 for r in results)
    load = os.getloadavg()
    print(
        f"Checks endpoint, open loop: {args.targets} nodes, {'200' if args.full else '304'} "
        f"answers, aami server --workers {args.workers} on SQLite, {os.cpu_count()} cores, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"  p99 over {len(p99s)} runs: median {statistics.median(p99s):.2f} ms, "
        f"min {p99s[0]:.2f}, max {p99s[-1]:.2f}"
    )
    if closed is not None:
        summarise(f"closed loop, {args.closed_connections} conn", closed)


if __name__ == "__main__":
    main()
