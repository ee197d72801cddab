"""``aami server --workers N``: real worker processes on one address, on SQLite and on
PostgreSQL. Exactly one of them holds the publisher lease; every one answers checks and
service discovery with the same ETags; a killed worker is replaced, and a killed lease
holder's lease goes to another worker."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert

from aami.auth.tokens import hash_token
from aami.checks.models import ScriptPolicy, ScriptTemplate
from aami.checks.service import content_hash
from aami.db.session import make_engine
from aami.groups.models import Group
from aami.registration.models import NodeToken
from aami.targets.models import Target, TargetGroup
from tests.serving.support import TOKEN, Server, closed_by_peer, running_server
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {TOKEN}"}
NODE_TOKEN = "aamin_worker_test_node_token"
SCRIPT = "#!/bin/sh\necho aami_worker_test 1\n"


def populate(url: str) -> None:
    """One group, one target with a node token, one script and a global policy."""
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            insert(ScriptTemplate),
            [
                {
                    "id": "s-1",
                    "name": "check-1",
                    "script_type": "test",
                    "script_content": SCRIPT,
                    "language": "sh",
                    "default_config": {"a": "1"},
                    "hash": content_hash(SCRIPT),
                }
            ],
        )
        connection.execute(
            insert(Group), [{"id": "grp-1", "name": "g1", "description": "", "labels": {}}]
        )
        connection.execute(
            insert(Target),
            [
                {
                    "id": "tgt-1",
                    "hostname": "gpu-node-1",
                    "ip_address": "10.0.0.1",
                    "labels": {},
                    "status": "active",
                }
            ],
        )
        connection.execute(
            insert(TargetGroup), [{"target_id": "tgt-1", "group_id": "grp-1", "position": 0}]
        )
        connection.execute(
            insert(NodeToken),
            [{"id": "nt-1", "target_id": "tgt-1", "token_hash": hash_token(NODE_TOKEN)}],
        )
        connection.execute(
            insert(ScriptPolicy),
            [
                {
                    "id": "pol-1",
                    "template_id": "s-1",
                    "scope": "global",
                    "config": {"a": "2"},
                    "priority": 10,
                    "is_active": True,
                }
            ],
        )
    engine.dispose()


@pytest.fixture
def workers(database_url: str, tmp_path: Path) -> Iterator[Server]:
    populate(database_url)
    with running_server(
        tmp_path,
        AAMI_WORKERS="2",
        AAMI_DATABASE_URL=database_url,
        PROMETHEUS_URL="http://127.0.0.1:1",
        ALERTMANAGER_URL="http://127.0.0.1:1",
    ) as server:
        yield server


def children(pid: int) -> set[int]:
    """The live worker processes of the supervisor ``pid``."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    found = set()
    for child in path.read_text().split():
        stat = Path(f"/proc/{child}/stat")
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
                found.add(int(child))
        except (FileNotFoundError, IndexError):
            continue
    return found


def ask(server: Server) -> tuple[int, str, str, str]:
    """On one new connection (so one worker): that worker's pid, whether it publishes, and
    the ETags of the node's checks and of service discovery."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        status = client.get("/api/v1/prometheus/status", headers=AUTH)
        assert status.status_code == 200, status.text
        body = status.json()
        checks = client.get(
            "/api/v1/checks/target/tgt-1", headers={"Authorization": f"Bearer {NODE_TOKEN}"}
        )
        assert checks.status_code == 200, checks.text
        assert len(checks.json()) == 1
        sd = client.get("/api/v1/sd/prometheus", headers=AUTH)
        assert sd.status_code == 200, sd.text
    pid = int(str(body["holder"]).rsplit(":", 1)[1])
    return pid, str(body["publisher"]), checks.headers["etag"], sd.headers["etag"]


def survey(server: Server, pids: set[int]) -> dict[int, tuple[str, str, str]]:
    """Ask on new connections until each of ``pids`` has answered."""
    answers: dict[int, tuple[str, str, str]] = {}

    def everyone() -> bool:
        pid, publisher, checks, sd = ask(server)
        answers[pid] = (publisher, checks, sd)
        return pids <= set(answers)

    wait_for(everyone, timeout=60, what=f"every worker of {sorted(pids)} to answer")
    return {pid: answers[pid] for pid in pids}


def leaders(answers: dict[int, tuple[str, str, str]]) -> list[int]:
    return [pid for pid, (publisher, _, _) in answers.items() if publisher == "leader"]


def test_one_publisher_and_the_same_etags_in_every_worker(workers: Server) -> None:
    pids = children(workers.pid)
    assert len(pids) == 2, workers.log()
    answers: dict[int, tuple[str, str, str]] = {}

    def one_leader() -> bool:
        answers.update(survey(workers, pids))
        return len(leaders(answers)) == 1

    wait_for(one_leader, timeout=30, what="exactly one worker to hold the publisher lease")
    assert len({checks for _, checks, _ in answers.values()}) == 1, answers
    assert len({sd for _, _, sd in answers.values()}) == 1, answers
    before = next(iter(answers.values()))[1]

    # A change made through any worker shows in every worker, with one new ETag.
    changed = httpx.put(
        f"{workers.url}/api/v1/script-policies/pol-1",
        json={"config": {"a": "3"}},
        headers=AUTH,
        timeout=10,
    )
    assert changed.status_code == 200, changed.text

    def changed_everywhere() -> bool:
        now = survey(workers, pids)
        return all(checks != before for _, checks, _ in now.values()) and (
            len({checks for _, checks, _ in now.values()}) == 1
        )

    wait_for(changed_everywhere, timeout=30, what="every worker to serve the changed checks")


def test_a_killed_worker_is_replaced(workers: Server) -> None:
    pids = children(workers.pid)
    assert len(pids) == 2, workers.log()
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        now = children(workers.pid)
        return len(now) == 2 and victim not in now

    wait_for(replaced, timeout=30, what="the supervisor to start a new worker")
    now = children(workers.pid)
    answers = survey(workers, now)
    assert len({checks for _, checks, _ in answers.values()}) == 1, answers
    assert "exited with signal 9" in workers.log()


def test_the_lease_moves_when_its_holder_dies(workers: Server) -> None:
    pids = children(workers.pid)
    answers: dict[int, tuple[str, str, str]] = {}

    def one_leader() -> bool:
        answers.update(survey(workers, pids))
        return len(leaders(answers)) == 1

    wait_for(one_leader, timeout=30, what="a worker to take the publisher lease")
    (holder,) = leaders(answers)
    os.kill(holder, signal.SIGKILL)

    def taken_over() -> bool:
        now = children(workers.pid)
        if len(now) != 2 or holder in now:
            return False
        current = survey(workers, now)
        return len(leaders(current)) == 1 and holder not in current

    # The lease's lock dies with its process; the other worker tries every second.
    wait_for(taken_over, timeout=10, what="another worker to take the publisher lease")


def test_sigterm_stops_every_worker(workers: Server) -> None:
    pids = children(workers.pid)
    assert len(pids) == 2
    assert workers.process.popen is not None
    workers.process.popen.send_signal(signal.SIGTERM)
    assert workers.process.popen.wait(30) == 0
    for pid in pids:  # the supervisor reaped them before it exited
        assert not Path(f"/proc/{pid}").exists()


def test_tls_and_the_header_timeout_hold_in_every_worker(tmp_path: Path) -> None:
    with running_server(tmp_path, tls=True, AAMI_WORKERS="2", AAMI_HEADER_TIMEOUT="2s") as server:
        pids = children(server.pid)
        assert len(pids) == 2
        # Many new connections reach both sockets; each one must speak HTTPS only.
        for _ in range(20):
            assert server.get("/health/live").status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{server.port}/health/live", timeout=5)
        idle = [server.connect() for _ in range(8)]
        try:
            for sock in idle:  # never starts the handshake: dropped by whichever worker
                assert closed_by_peer(sock)
        finally:
            for sock in idle:
                sock.close()
        assert "header_timeout" in server.log()
