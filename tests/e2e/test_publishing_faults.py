"""Publishing under faults, with the real Prometheus and AAMI server processes: a killed
leader, a restart with a reload pending, a lost lock, a failing or hanging promtool, a
full or read-only rule directory. Each ends where it must: database = files = loaded."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import TOKEN
from tests.support.ports import free_port
from tests.support.postgres import PostgresServer
from tests.support.processes import Process, aami_server, binary, prometheus
from tests.support.prometheus_config import shipped_config_for_test
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

TEMPLATE = {
    "name": "GPUHot",
    "query_template": 'aami_test_gpu_temperature{group_id="{{.group_id}}"} > {{.threshold}}',
    "default_config": {"threshold": 90},
    "severity": "critical",
    "for_duration": "0s",
    "annotations": {"summary": "GPU at {{ $value }} on {{ $labels.instance }}"},
}

FAKE_PROMTOOL = """#!/bin/bash
# promtool as the publisher runs it (on its staging directory), broken on demand; every
# other call (the API's checks at write time) is the real one.
mode=$(cat "{mode}" 2>/dev/null)
case "$*" in
  *"/.staging-"*)
    case "$mode" in
      fail) echo "promtool: simulated failure" >&2; exit 1 ;;
      hang) exec -a aami-fake-promtool-hang /bin/sleep 600 ;;
    esac ;;
esac
exec "{real}" "$@"
"""


@dataclass
class Cluster:
    """Prometheus and AAMI server replicas sharing one database and one rule directory."""

    tmp: Path
    database_url: str
    rules_dir: Path
    prometheus_url: str
    prometheus: Process
    env: dict[str, str]
    servers: dict[str, Process] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    def start_server(self, name: str, *, env: dict[str, str] | None = None) -> str:
        port = free_port() if name not in self.urls else int(self.urls[name].rsplit(":", 1)[1])
        home = self.tmp / name
        home.mkdir(exist_ok=True)
        process = aami_server(home, port=port, token=TOKEN, env={**self.env, **(env or {})}).start()
        url = f"http://127.0.0.1:{port}"
        self.servers[name], self.urls[name] = process, url
        process.wait_http(f"{url}/health/ready")
        return url

    def kill(self, name: str) -> None:
        """kill -9: no shutdown, no lease release."""
        popen = self.servers[name].popen
        assert popen is not None
        os.kill(popen.pid, signal.SIGKILL)
        popen.wait()

    def api(self, name: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.urls[name], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )

    def status(self, name: str) -> dict[str, Any]:
        with self.api(name) as api:
            answer: dict[str, Any] = api.get("/api/v1/prometheus/status").json()
            return answer

    def loaded_exprs(self) -> dict[str, list[str]]:
        response = httpx.get(
            f"{self.prometheus_url}/api/v1/rules", params={"type": "alert"}, timeout=5
        )
        return {
            group["name"]: [rule["query"] for rule in group["rules"]]
            for group in response.json()["data"]["groups"]
        }

    def history(self, name: str) -> list[dict[str, Any]]:
        with self.api(name) as api:
            rows: list[dict[str, Any]] = api.get(
                "/api/v1/prometheus/rules/history?limit=200"
            ).json()["data"]
            return rows

    def stop(self) -> None:
        for process in self.servers.values():
            process.stop()
        self.prometheus.stop()


def start_cluster(
    tmp: Path, *, database_url: str | None = None, env: dict[str, str] | None = None
) -> Cluster:
    rules_dir = tmp / "rules" / "generated"
    rules_dir.mkdir(parents=True)
    token_file = tmp / "token"
    token_file.write_text(TOKEN)
    prom_port = free_port()
    prometheus_url = f"http://127.0.0.1:{prom_port}"
    config = shipped_config_for_test(
        tmp,
        server_url="http://127.0.0.1:1",  # no targets: these tests are about rule files
        token_file=token_file,
        rules_dir=tmp / "rules",
        prometheus_port=prom_port,
    )
    prom = prometheus(tmp, port=prom_port, config=config).start()
    database_url = database_url or f"sqlite:///{tmp / 'aami.db'}"
    cluster = Cluster(
        tmp,
        database_url,
        rules_dir,
        prometheus_url,
        prom,
        env={
            "AAMI_DATABASE_URL": database_url,
            "PROMETHEUS_RULE_PATH": str(rules_dir),
            "PROMETHEUS_URL": prometheus_url,
            "PROMETHEUS_RELOAD_TIMEOUT": "3s",
            "ALERTMANAGER_URL": "http://127.0.0.1:1",
            "AAMI_PUBLISH_CHECK_INTERVAL": "1s",
            "AAMI_PUBLISH_RETRY_MAX": "4s",
            **(env or {}),
        },
    )
    try:
        prom.wait_http(f"{prometheus_url}/-/ready")
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = start_cluster(tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None (SQLite in the test's directory) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"aami_faults_{os.getpid()}_{time.monotonic_ns()}"
    admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name} TEMPLATE aami_template"))
    admin.dispose()
    yield server.url(name)


def _group_and_rule(api: httpx.Client, threshold: int = 70, group: str = "grp-a") -> str:
    """A group, the template (once) and the group's rule; returns the rule's id."""
    assert api.post("/api/v1/groups", json={"id": group, "name": group}).status_code == 201
    if api.get("/api/v1/alert-templates/GPUHot").status_code == 404:
        assert api.post("/api/v1/alert-templates", json=TEMPLATE).status_code == 201
    response = api.post(
        "/api/v1/alert-rules",
        json={"template_id": "GPUHot", "group_id": group, "config": {"threshold": threshold}},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _set_threshold(api: httpx.Client, rule_id: str, threshold: int) -> None:
    response = api.put(f"/api/v1/alert-rules/{rule_id}", json={"config": {"threshold": threshold}})
    assert response.status_code == 200, response.text


def _converged(cluster: Cluster, name: str, group: str, threshold: int) -> dict[str, Any]:
    """Wait until the database, the file and Prometheus all say ``> threshold``, and the
    replica's status says so too."""
    needle = f"> {threshold}"

    def probe() -> dict[str, Any] | None:
        status = cluster.status(name)
        file = cluster.rules_dir / f"group-{group}.yml"
        loaded = cluster.loaded_exprs().get(f"aami-{group}", [])
        if not (
            status["in_sync"]
            and file.exists()
            and needle in file.read_text()
            and any(expr.endswith(needle) for expr in loaded)
        ):
            return None
        return status

    status = wait_for(probe, timeout=45, what=f"{group} at {needle} everywhere")
    state = status["groups"][group]
    assert state["desired_revision"] == state["written_revision"] == state["loaded_revision"]
    return status


# ---- a killed or restarted publisher ---------------------------------------------------


def test_a_change_acknowledged_just_before_kill_9_is_published_by_the_new_leader(
    tmp_path: Path, any_database: str | None
) -> None:
    cluster = start_cluster(tmp_path, database_url=any_database)
    try:
        # The leader waits 5 s before publishing a change: it is killed inside that window.
        cluster.start_server("a", env={"AAMI_PUBLISH_DEBOUNCE": "5s"})
        wait_for(lambda: cluster.status("a")["publisher"] == "leader", timeout=15, what="a")
        cluster.start_server("b")
        assert cluster.status("b")["publisher"] == "standby"
        with cluster.api("a") as api:
            rule_id = _group_and_rule(api, 70)
        _converged(cluster, "a", "grp-a", 70)
        with cluster.api("a") as api:
            _set_threshold(api, rule_id, 80)  # 200: acknowledged, not yet published
        cluster.kill("a")
        assert "> 70" in (cluster.rules_dir / "group-grp-a.yml").read_text()
        wait_for(lambda: cluster.status("b")["publisher"] == "leader", timeout=30, what="b")
        _converged(cluster, "b", "grp-a", 80)
    finally:
        cluster.stop()


def test_a_restart_with_a_reload_pending_reloads_prometheus(cluster: Cluster) -> None:
    cluster.start_server("a")
    with cluster.api("a") as api:
        rule_id = _group_and_rule(api, 70)
    _converged(cluster, "a", "grp-a", 70)
    # A crash between the rename and the reload, made exact: a replica that writes the
    # file but never reloads, killed right after.
    cluster.kill("a")
    cluster.start_server("a", env={"PROMETHEUS_RELOAD_ENABLED": "false"})
    with cluster.api("a") as api:
        _set_threshold(api, rule_id, 80)
    wait_for(
        lambda: "> 80" in (cluster.rules_dir / "group-grp-a.yml").read_text(),
        timeout=15,
        what="the file written, not reloaded",
    )
    status = cluster.status("a")
    assert status["in_sync"] is False  # written 80, Prometheus runs 70: not "in sync"
    group = status["groups"]["grp-a"]
    assert group["written_revision"] == group["desired_revision"] != group["loaded_revision"]
    cluster.kill("a")
    reloads_before = _reload_timestamp(cluster)
    # Files now match the database, but Prometheus still runs the old rules.
    assert any(e.endswith("> 70") for e in cluster.loaded_exprs()["aami-grp-a"])
    cluster.start_server("a")
    status = _converged(cluster, "a", "grp-a", 80)
    assert _reload_timestamp(cluster) > reloads_before
    assert status["last_publish"]["files_written"] == []  # it only had to reload
    assert status["last_publish"]["reload"] == "ok"


def _reload_timestamp(cluster: Cluster) -> float:
    """When Prometheus last reloaded its configuration successfully (its own /metrics)."""
    metrics = httpx.get(f"{cluster.prometheus_url}/metrics", timeout=5).text
    found = re.search(
        r"^prometheus_config_last_reload_success_timestamp_seconds (\S+)$", metrics, re.M
    )
    assert found, "Prometheus does not export its last reload time"
    return float(found.group(1))


def test_terminating_the_lock_backend_fences_the_old_leader(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    name = f"aami_fence_{os.getpid()}"
    admin = create_engine(postgres_server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name} TEMPLATE aami_template"))
    cluster = start_cluster(tmp_path, database_url=postgres_server.url(name))
    try:
        for replica in ("a", "b"):
            cluster.start_server(replica)
        wait_for(
            lambda: sorted(cluster.status(r)["publisher"] for r in "ab") == ["leader", "standby"],
            timeout=30,
            what="one leader",
        )
        old = next(r for r in "ab" if cluster.status(r)["publisher"] == "leader")
        old_epoch = cluster.status(old)["epoch"]
        with cluster.api(old) as api:
            rule_id = _group_and_rule(api, 1)
        _converged(cluster, old, "grp-a", 1)
        engine = create_engine(postgres_server.url(name), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            backends = connection.execute(
                text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted")
            ).scalars()
            for pid in list(backends):
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        engine.dispose()
        cut = time.time()

        def settled() -> tuple[str, int] | None:
            roles = {r: cluster.status(r) for r in "ab"}
            leaders = [r for r, s in roles.items() if s["publisher"] == "leader"]
            if len(leaders) != 1 or (roles[leaders[0]]["epoch"] or 0) <= old_epoch:
                return None
            return leaders[0], int(roles[leaders[0]]["epoch"])

        leader, epoch = wait_for(settled, timeout=20, what="one leader with a new epoch")
        # 25 changes through both replicas: all published by the one leader.
        for threshold in range(2, 27):
            with cluster.api("ab"[threshold % 2]) as api:
                _set_threshold(api, rule_id, threshold)
        _converged(cluster, leader, "grp-a", 26)
        after = [
            row
            for row in cluster.history(leader)
            if row["started_at"] and _epoch_seconds(row["started_at"]) > cut
        ]
        assert after, "nothing was published after the lock was lost"
        # The old epoch's last word is a pass that stopped at its fence, touching nothing;
        # everything written or reloaded since comes from the one new epoch.
        stale = [row for row in after if row["epoch"] != epoch]
        assert all(row["result"] == "fenced" for row in stale), stale
        assert not [row for row in stale if row["files_written"] or row["reload"] != "not_needed"]
        published = [row for row in after if row["epoch"] == epoch]
        assert published, after
        assert {row["result"] for row in published} == {"ok"}, published
        assert any(row["reload"] == "ok" for row in published)
        assert not list(cluster.rules_dir.glob(".staging*"))
    finally:
        cluster.stop()
        admin.dispose()


def _epoch_seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


# ---- promtool failing and hanging ------------------------------------------------------


def _fake_promtool(tmp: Path, mode: str) -> tuple[dict[str, str], Path]:
    bin_dir = tmp / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    mode_file = tmp / "promtool-mode"
    mode_file.write_text(mode)
    script = bin_dir / "promtool"
    script.write_text(FAKE_PROMTOOL.format(mode=mode_file, real=binary("promtool")))
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}, mode_file


def test_a_failing_promtool_backs_off_in_one_history_row_then_converges(
    tmp_path: Path,
) -> None:
    env, mode = _fake_promtool(tmp_path, "fail")
    cluster = start_cluster(tmp_path, env=env)
    try:
        cluster.start_server("a")
        with cluster.api("a") as api:
            _group_and_rule(api, 70)  # accepted: the write-time check is the real promtool

        def failing() -> list[dict[str, Any]] | None:
            rows = [r for r in cluster.history("a") if r["result"] == "failed"]
            return rows if rows and rows[0]["count"] >= 5 else None

        [row] = wait_for(failing, timeout=60, what="five failed attempts in one row")
        assert "simulated failure" in row["error"]
        assert list(row["files_rejected"]) == ["group-grp-a.yml"]
        assert not (cluster.rules_dir / "group-grp-a.yml").exists()
        # Backoff (1, 2, 4, 4 s): five attempts span well over the four seconds that
        # 1-second checks would take.
        span = _epoch_seconds(row["finished_at"]) - _epoch_seconds(row["started_at"])
        assert span >= 6, span
        status = cluster.status("a")
        assert status["in_sync"] is False
        assert "simulated failure" in status["groups"]["grp-a"]["error"]
        assert status["consecutive_failures"] >= 3
        metrics = httpx.get(f"{cluster.urls['a']}/metrics", timeout=5).text
        failures = re.search(r'aami_publish_failures_total\{target="prometheus"\} (\S+)', metrics)
        assert failures is not None
        assert float(failures.group(1)) >= 3
        count = row["count"]
        mode.write_text("ok")
        _converged(cluster, "a", "grp-a", 70)
        rows = cluster.history("a")
        assert [r["result"] for r in rows if r["result"] != "ok"] == ["failed"]
        assert next(r for r in rows if r["result"] == "failed")["count"] >= count
    finally:
        cluster.stop()


def test_a_hanging_promtool_times_out_and_never_blocks_a_request(tmp_path: Path) -> None:
    env, mode = _fake_promtool(tmp_path, "hang")
    cluster = start_cluster(tmp_path, env={**env, "AAMI_PROMTOOL_TIMEOUT": "2s"})
    try:
        cluster.start_server("a")
        with cluster.api("a") as api:
            started = time.monotonic()
            _group_and_rule(api, 70)
            assert time.monotonic() - started < 5
            # While the publisher waits on promtool, requests answer at once.
            wait_for(
                lambda: _hung_promtools() > 0, timeout=15, what="the publisher inside promtool"
            )
            for method, path in (
                ("GET", "/api/v1/prometheus/status"),
                ("POST", "/api/v1/prometheus/rules/regenerate"),
                ("GET", "/api/v1/groups"),
            ):
                started = time.monotonic()
                response = api.request(method, path)
                assert response.status_code in (200, 202), response.text
                assert time.monotonic() - started < 1.5, (method, path)

        def timed_out() -> dict[str, Any] | None:
            rows = [r for r in cluster.history("a") if r["result"] == "failed"]
            return rows[0] if rows else None

        row = wait_for(timed_out, timeout=30, what="the promtool timeout in the history")
        assert "did not finish within 2s" in row["error"]
        wait_for(lambda: _hung_promtools() == 0, timeout=10, what="the hung promtool killed")
        mode.write_text("ok")
        _converged(cluster, "a", "grp-a", 70)
    finally:
        cluster.stop()


def _hung_promtools() -> int:
    """How many of the fake promtool's hanging processes are alive (read from /proc)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:  # gone meanwhile
            continue
        count += argv0 == b"aami-fake-promtool-hang"
    return count


# ---- the rule directory full or read-only ----------------------------------------------


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[None]:
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(directory: Path) -> Path:
    """Fill the file system under ``directory``; return the file that holds the space."""
    filler = directory / ".filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):  # ENOSPC: full
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    return filler


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_full_or_read_only_rule_directory_is_reported_then_recovers(
    tmp_path: Path, fault: str
) -> None:
    cluster = start_cluster(tmp_path)
    with _tmpfs(cluster.rules_dir, "2m"):
        try:
            cluster.start_server("a")
            with cluster.api("a") as api:
                rule_id = _group_and_rule(api, 70)
            _converged(cluster, "a", "grp-a", 70)
            if fault == "full":
                filler = _fill(cluster.rules_dir)
            else:
                subprocess.run(["mount", "-o", "remount,ro", str(cluster.rules_dir)], check=True)
            with cluster.api("a") as api:
                _set_threshold(api, rule_id, 80)
            code = "ENOSPC" if fault == "full" else "EROFS"

            def reported() -> dict[str, Any] | None:
                rows = [r for r in cluster.history("a") if r["result"] == "failed"]
                return rows[0] if rows else None

            row = wait_for(reported, timeout=30, what=f"{code} in the history")
            assert f"[{code}]" in row["error"], row
            status = cluster.status("a")
            assert status["in_sync"] is False
            assert f"[{code}]" in status["groups"]["grp-a"]["error"]
            ready = httpx.get(f"{cluster.urls['a']}/health/ready", timeout=5).json()
            assert code in ready["publishing"]["prometheus"]
            # still the old rules, everywhere: nothing half-written
            assert "> 70" in (cluster.rules_dir / "group-grp-a.yml").read_text()
            assert not [p for p in cluster.rules_dir.iterdir() if p.name.endswith(".tmp")]

            if fault == "full":
                filler.unlink()
            else:
                subprocess.run(["mount", "-o", "remount,rw", str(cluster.rules_dir)], check=True)
            _converged(cluster, "a", "grp-a", 80)
        finally:
            cluster.stop()
