"""Rotating the check-signing key with the real server and agent processes, as
docs/deployment.md tells an operator to: hold the next key beside the current one, let the
nodes pin it, then make it the only key."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aami.agent.signing import load_keys
from aami.security.signing import load_or_create_key
from tests.api.test_checks import MOUNT_CHECK
from tests.e2e.conftest import Stack, server_ready, start_stack, stop_stack
from tests.e2e.test_checks import _agent, _register
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


def restart_server(stack: Stack, **env: str | None) -> None:
    """Stop the server, change its environment (None removes a variable), start it again."""
    stack.server.stop()
    for key, value in env.items():
        if value is None:
            stack.server.env.pop(key, None)
        else:
            stack.server.env[key] = value
    stack.server.start()
    wait_for(
        lambda: server_ready(stack.server, f"{stack.server_url}/health/ready", stack.verify),
        timeout=30,
        what="the restarted server",
    )


def test_the_key_rotates_without_a_node_refusing_a_check(tmp_path: Path) -> None:
    current, upcoming = tmp_path / "keys" / "signing.key", tmp_path / "keys" / "next.key"
    stack = start_stack(tmp_path, tls=True, server_env={"AAMI_SIGNING_KEY_FILE": str(current)})
    try:
        with stack.api as api:
            api.post("/api/v1/groups", json={"id": "ml-training-group", "name": "ML training"})
            api.post("/api/v1/script-templates", json=MOUNT_CHECK)
            api.post(
                "/api/v1/script-policies",
                json={"template_id": "mount-check", "scope": "global", "config": {"paths": "/"}},
            )
        config = _register(stack, tmp_path)
        pins = tmp_path / "agent-cache" / "signing-keys.json"
        old = load_or_create_key(current).key_id
        assert list(load_keys(pins)) == [old]
        assert _agent(stack, config).returncode == 0
        # a second node that will sleep through the rotation
        straggler = tmp_path / "straggler"
        (straggler / "agent-cache").mkdir(parents=True)
        shutil.copyfile(config, straggler / "agent.yaml")
        shutil.copyfile(pins, straggler / "agent-cache" / "signing-keys.json")

        # 1. every replica gets the next key (created 0600 at start): both sign
        restart_server(stack, AAMI_SIGNING_NEXT_KEY_FILE=str(upcoming))
        new = load_or_create_key(upcoming).key_id
        assert upcoming.stat().st_mode & 0o777 == 0o600
        during = _agent(stack, config)
        assert during.returncode == 0, during.stderr
        assert f"signing keys: pinned {new}, retired none" in during.stderr
        assert list(load_keys(pins)) == [old, new]
        metrics = (stack.node_exporters[0].textfile_dir / "aami_agent.prom").read_text()
        assert f'aami_agent_signing_key_info{{key_id="{new}"}} 1' in metrics

        # 2. the next key becomes the key, the old one goes
        restart_server(stack, AAMI_SIGNING_KEY_FILE=str(upcoming), AAMI_SIGNING_NEXT_KEY_FILE=None)
        current.unlink()
        after = _agent(stack, config)
        assert after.returncode == 0, after.stderr
        assert f"signing keys: pinned none, retired {old}" in after.stderr
        assert list(load_keys(pins)) == [new]

        # 3. the node that missed it refuses every check until it is pinned again
        missed = _agent(stack, straggler / "agent.yaml")
        assert missed.returncode == 1
        assert "mount-check: unknown_signing_key" in missed.stderr
        wait_for(
            lambda: stack.query(
                'aami_check_failure{check="mount-check",reason="unknown_signing_key"} == 1'
            ),
            timeout=30,
            what="Prometheus to see the refusal",
        )
        pinned = subprocess.run(
            [
                sys.executable,
                "-m",
                "aami",
                "agent",
                "pin-keys",
                "--config",
                str(straggler / "agent.yaml"),
                "--cache-dir",
                str(straggler / "agent-cache"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert pinned.returncode == 0, pinned.stderr
        assert f"replaced {old} with {new}" in pinned.stdout
        assert _agent(stack, straggler / "agent.yaml").returncode == 0
    finally:
        stop_stack(stack)
