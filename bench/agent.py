"""Node agent: wall time of one `aami agent once` run and the agent's overhead per check.

Serves the checks over real HTTP (a tiny http.server on a random 127.0.0.1 port, with ETags
like the real server, plain HTTP on loopback: the agent is told `insecure_http`), signed
like the real server's (the agent verifies every signature), and runs the agent's
`run_once` against it, several times:

- 20 python checks that each sleep 0.5 s and print a metric, parallelism 8: the ideal
  schedule is ceil(20 / 8) * 0.5 s = 1.5 s, so the goal (<= 2 s) leaves 0.5 s of overhead;
- 20 python checks that only print a metric, and 20 sh checks that do the same: the ideal
  is 0 s, so the wall time is all overhead (interpreter start-up included).

Overhead per check = (wall time - ideal schedule) / checks. The first run of each scenario is
cold (200, scripts written to the cache); the figures are over the warm runs that follow (304).
Run: .venv/bin/python bench/agent.py [--checks N] [--sleep S] [--parallelism P] [--repetitions R]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aami.agent.config import AgentConfig
from aami.agent.runner import run_once
from aami.agent.signing import save_keys
from aami.security.signing import Signer, SigningKey

TOKEN = "bench-node-token-0123456789"
SIGNER = Signer(SigningKey.generate())


def make_checks(count: int, language: str, sleep: float) -> list[dict[str, object]]:
    """``count`` distinct checks (one script each, as on a real node)."""
    checks = []
    for index in range(count):
        if language == "python":
            body = f"import time\ntime.sleep({sleep})\n" if sleep else ""
            script = f"{body}print('bench_check_ok{{index=\"{index}\"}} 1')\n"
        else:
            script = f"echo 'bench_check_ok{{index=\"{index}\"}} 1'\n"
        checks.append(
            {
                "name": f"bench-{index:02d}",
                "script_type": "bench",
                "script_content": script,
                "language": language,
                "config": {"index": str(index)},
                "version": "1.0.0",
                "hash": hashlib.sha256(script.encode()).hexdigest(),
                "timeout_seconds": 30,
            }
        )
    for check in checks:
        check["signatures"] = SIGNER.sign_check(
            **{k: check[k] for k in ("name", "script_type", "language", "version", "hash")},  # type: ignore[arg-type]
            timeout_seconds=30,
            config=check["config"],  # type: ignore[arg-type]
        )
    return checks


@contextmanager
def serve(checks: list[dict[str, object]]) -> Iterator[str]:
    """Serve GET /api/v1/checks/target/bench with an ETag; yield the base URL."""
    body = json.dumps(checks).encode()
    etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path == "/api/v1/checks/signing-keys":
                document = json.dumps(SIGNER.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(document)))
                self.end_headers()
                self.wfile.write(document)
            elif self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
            else:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def scenario(
    title: str, checks: list[dict[str, object]], ideal: float, parallelism: int, repetitions: int
) -> None:
    """Run one scenario and print its figures."""
    with tempfile.TemporaryDirectory(prefix="aami-bench-agent-") as tmp, serve(checks) as url:
        config = AgentConfig(
            server_url=url,
            token=TOKEN,
            target_id="bench",
            hostname="bench-node",
            textfile_dir=Path(tmp) / "textfile",
            cache_dir=Path(tmp) / "cache",
            parallelism=parallelism,
            insecure_http=True,
        )
        save_keys(config.keys_path, {key.key_id: key.public_key for key in SIGNER.keys})
        walls = []
        for _ in range(repetitions + 1):
            started = time.perf_counter()
            report = run_once(config)
            walls.append(time.perf_counter() - started)
            failed = [r for r in report.results if not r.ok]
            assert not failed, failed
        written = len(list(config.textfile_dir.glob("aami_bench-*.prom")))
        assert written == len(checks), written
    cold, warm = walls[0], walls[1:]
    median = statistics.median(warm)
    count = len(checks)
    print(f"\n{title}")
    print(f"  ideal schedule              {ideal:7.3f} s")
    print(f"  cold run (200, install)     {cold:7.3f} s")
    print(
        f"  warm run (304), {len(warm)} runs     median {median:.3f} s"
        f"   min {min(warm):.3f} s   max {max(warm):.3f} s"
    )
    print(
        f"  overhead per check          median {(median - ideal) / count * 1000:6.1f} ms"
        f"   min {(min(warm) - ideal) / count * 1000:6.1f} ms"
        f"   max {(max(warm) - ideal) / count * 1000:6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=20)
    parser.add_argument("--sleep", type=float, default=0.5)
    parser.add_argument("--parallelism", type=int, default=8)
    parser.add_argument("--repetitions", type=int, default=7)
    args = parser.parse_args()
    n, p = args.checks, args.parallelism
    ideal = math.ceil(n / p) * args.sleep
    print(f"aami agent once: {n} checks, parallelism {p}, {args.repetitions} warm runs each")
    scenario(
        f"{n} python checks sleeping {args.sleep} s (goal: <= {ideal + 0.5:.1f} s)",
        make_checks(n, "python", args.sleep),
        ideal,
        p,
        args.repetitions,
    )
    scenario(
        f"{n} python checks doing nothing", make_checks(n, "python", 0), 0, p, args.repetitions
    )
    scenario(f"{n} sh checks doing nothing", make_checks(n, "sh", 0), 0, p, args.repetitions)


if __name__ == "__main__":
    main()
