"""Every ```sh block of README.md and docs/*.md runs, in order, against a live local stack.

Each file gets its own `aami stack up --no-demo --reset --yes` (fresh state, free ports);
its blocks run one after the other with bash `set -euo pipefail`, from the repository
root. They get only the variables the file itself tells its reader to export (an
``export NAME=`` line), set for this stack: AAMI_SERVER, TOKEN, SSL_CERT_FILE and
CURL_CA_BUNDLE (the stack's server speaks HTTPS with a certificate from its own CA),
PROMETHEUS_URL, NODE_EXPORTER_PORT, TEXTFILE_DIR, WORK (a scratch directory); no TMPDIR,
which Debian does not set. Every block must exit 0.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docs.blocks import (
    DOCS,
    ROOT,
    SHELL_LIKE,
    Block,
    blocks,
    exported,
    runnable,
    used_from_outside,
)
from tests.support.ports import free_port
from tests.support.wait import wait_for

AAMI = ROOT / ".venv" / "bin" / "aami"
STACK_UP = ["stack", "up", "--no-demo", "--reset", "--yes"]  # as docs/walkthrough.md says
FILES_WITH_EXAMPLES = [path for path in DOCS if runnable(path)]


@dataclass
class LiveStack:
    server: str
    token: str
    prometheus: str
    state_dir: Path
    node_exporter_port: int

    def variables(self, workdir: Path) -> dict[str, str]:
        """What a reader of the docs exports for this stack."""
        ca = str(self.state_dir / "tls" / "ca.pem")
        return {
            "AAMI_SERVER": self.server,
            "TOKEN": self.token,
            "PROMETHEUS_URL": self.prometheus,
            "SSL_CERT_FILE": ca,
            "CURL_CA_BUNDLE": ca,
            "NODE_EXPORTER_PORT": str(self.node_exporter_port),
            "TEXTFILE_DIR": str(self.state_dir / "textfile"),
            "WORK": str(workdir),
        }


@pytest.fixture
def live_stack(tmp_path: Path) -> Iterator[LiveStack]:
    ports = {
        "AAMI_STACK_SERVER_PORT": free_port(),
        "AAMI_STACK_PROMETHEUS_PORT": free_port(),
        "AAMI_STACK_NODE_EXPORTER_PORT": free_port(),
        "AAMI_STACK_ALERTMANAGER_PORT": free_port(),
        "AAMI_STACK_WEBHOOK_PORT": free_port(),
    }
    state_dir = tmp_path / "stack"
    env = {
        **os.environ,
        "AAMI_STATE_DIR": str(state_dir),
        **{key: str(port) for key, port in ports.items()},
    }
    log = tmp_path / "stack.log"
    with log.open("wb") as out:
        stack = subprocess.Popen(
            [str(AAMI), *STACK_UP],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: "AAMI stack is ready" in log.read_text() or stack.poll() is not None,
            timeout=120,
            what="aami stack up to print that the stack is ready",
        )
        text = log.read_text()
        assert stack.poll() is None, text
        token = re.search(r"admin token\s+(\S+)", text)
        assert token is not None, text
        yield LiveStack(
            server=f"https://127.0.0.1:{ports['AAMI_STACK_SERVER_PORT']}",
            token=token.group(1),
            prometheus=f"http://127.0.0.1:{ports['AAMI_STACK_PROMETHEUS_PORT']}",
            state_dir=state_dir,
            node_exporter_port=ports["AAMI_STACK_NODE_EXPORTER_PORT"],
        )
    finally:
        if stack.poll() is None:
            os.killpg(stack.pid, signal.SIGINT)  # what Ctrl-C does
            try:
                stack.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(stack.pid, signal.SIGKILL)
                stack.wait()


def run_block(block: Block, stack: LiveStack, workdir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AAMI_", "PROMETHEUS_", "ALERTMANAGER_"))
        and key not in {"TMPDIR", "SSL_CERT_FILE", "CURL_CA_BUNDLE"}
    }
    told = exported(block.path)
    env.update({k: v for k, v in stack.variables(workdir).items() if k in told})
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + block.text],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_examples_use_only_what_their_page_exports(path: Path) -> None:
    """A reader runs a page's examples in a shell with what the page said to export; a
    variable the page never sets (``$TMPDIR`` on Debian) fails there, so it fails here."""
    missing = used_from_outside(path) - exported(path)
    assert not missing, f"{path.name} uses {sorted(missing)} without saying to export them"


def test_the_walkthrough_starts_the_stack_the_way_these_tests_do() -> None:
    commands = [b.text for b in blocks(ROOT / "docs" / "walkthrough.md") if b.lang == "console"]
    assert commands
    assert commands[0].strip() == ".venv/bin/aami " + " ".join(STACK_UP)


def test_only_sh_blocks_run_and_none_hides_behind_another_fence() -> None:
    for path in DOCS:
        for block in blocks(path):
            assert block.lang not in SHELL_LIKE, (
                f"{block.where}: fence it ```sh to run it, or ```console if it needs a real host"
            )
    assert ROOT / "README.md" in FILES_WITH_EXAMPLES


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_curl_fails_on_an_http_error(path: Path) -> None:
    for block in runnable(path):
        for command in re.findall(r"\bcurl\b[^\n]*", block.text):
            assert "--fail-with-body" in command, f"{block.where}: {command}"


@pytest.mark.e2e
@pytest.mark.parametrize("path", FILES_WITH_EXAMPLES, ids=lambda p: p.name)
def test_examples_run(path: Path, live_stack: LiveStack, tmp_path: Path) -> None:
    examples = runnable(path)
    ran = 0
    for block in examples:
        result = run_block(block, live_stack, tmp_path)
        assert result.returncode == 0, (
            f"{block.where} exited {result.returncode}\n--- block\n{block.text}"
            f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
        )
        ran += 1
    assert ran == len(examples) == len(runnable(path))  # nothing skipped
