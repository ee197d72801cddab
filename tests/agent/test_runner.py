"""The agent running real scripts in a temp dir, with the checks served by MockTransport."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aami.agent.client import Check
from aami.agent.config import AgentConfig
from aami.agent.runner import (
    AGENT_FILE,
    CheckResult,
    RunReport,
    build_argv,
    build_env,
    check_filename,
    run_once,
)
from tests.agent.support import (
    NODE_TOKEN,
    SEED_MOUNT_CHECK,
    FakeServer,
    live_group_members,
    make_check,
    mode,
    pid_alive,
    pin,
)
from tests.support.ports import free_port
from tests.support.processes import node_exporter
from tests.support.wait import wait_for

ECHO_METRIC = 'echo "probe_ok 1"\n'


@pytest.fixture
def config(tmp_path: Path) -> AgentConfig:
    return AgentConfig(
        server_url="https://aami.test",
        token=NODE_TOKEN,
        target_id="tgt-1",
        hostname="gpu-node-01",
        textfile_dir=tmp_path / "textfile",
        cache_dir=tmp_path / "cache",
        parallelism=4,
        signing_keys_file=pin(tmp_path / "signing-keys.json"),
    )


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


def run(config: AgentConfig, server: FakeServer) -> RunReport:
    return run_once(config, transport=server.transport)


def prom(config: AgentConfig, name: str) -> Path:
    return config.textfile_dir / check_filename(name)


def agent_samples(config: AgentConfig) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The agent's own metrics file, parsed by prometheus_client."""
    text = (config.textfile_dir / AGENT_FILE).read_text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def script_name(script: str, ext: str = "sh") -> str:
    return f"{hashlib.sha256(script.encode()).hexdigest()}.{ext}"


def result(report: RunReport, name: str) -> CheckResult:
    return next(r for r in report.results if r.name == name)


def test_seed_mount_check_writes_the_three_lines(
    config: AgentConfig, server: FakeServer, tmp_path: Path
) -> None:
    first, second = tmp_path / "models", tmp_path / "datasets"
    first.mkdir()
    second.mkdir()
    paths = f"/proc,{first},{second}"
    server.set_checks([make_check("mount-check", SEED_MOUNT_CHECK, config={"paths": paths})])

    report = run(config, server)

    assert report.exit_code == 0, report.results
    assert prom(config, "mount-check").name == "aami_mount-check.prom"
    assert prom(config, "mount-check").read_text() == (
        'mount_status{path="/proc"} 1\n'
        f'mount_status{{path="{first}"}} 0\n'
        f'mount_status{{path="{second}"}} 0\n'
    )
    assert mode(prom(config, "mount-check")) == 0o644
    script = (
        config.cache_dir / "scripts" / f"{hashlib.sha256(SEED_MOUNT_CHECK.encode()).hexdigest()}.sh"
    )
    assert script.read_text() == SEED_MOUNT_CHECK
    assert mode(script) == 0o700
    assert not list(config.textfile_dir.glob(".*.tmp"))


def test_config_reaches_argv_env_and_stdin_in_order(
    config: AgentConfig, server: FakeServer
) -> None:
    script = (
        "import json, os, sys\n"
        "stdin = json.load(sys.stdin)\n"
        "out = [\n"
        "  {'name': 'arg', 'labels': {'i': str(i), 'v': v}, 'value': 1}\n"
        "  for i, v in enumerate(sys.argv[1:])\n"
        "] + [\n"
        "  {'name': 'env', 'labels': {'k': k, 'v': v}, 'value': 1}\n"
        "  for k, v in sorted(os.environ.items()) if k.startswith('AAMI_CONFIG_')\n"
        "] + [{'name': 'stdin_ok', 'value': int(stdin == "
        "{'zeta': 'z', 'alpha': 2, 'mid-key': True})}]\n"
        "print(json.dumps(out))\n"
    )
    config_values = {"zeta": "z", "alpha": 2, "mid-key": True}
    server.set_checks([make_check("args", script, language="python", config=config_values)])

    report = run(config, server)

    assert report.exit_code == 0, report.results
    assert prom(config, "args").read_text() == (
        'arg{i="0",v="z"} 1\n'
        'arg{i="1",v="2"} 1\n'
        'arg{i="2",v="true"} 1\n'
        'env{k="AAMI_CONFIG_ALPHA",v="2"} 1\n'
        'env{k="AAMI_CONFIG_MID_KEY",v="true"} 1\n'
        'env{k="AAMI_CONFIG_ZETA",v="z"} 1\n'
        "stdin_ok 1\n"
    )


def test_argv_and_env_are_built_without_a_shell(tmp_path: Path) -> None:
    check = Check.from_json(make_check("c", "x", language="sh", config={"a": "$(id)", "b": 3}))
    assert build_argv(check, tmp_path / "s.sh") == ["/bin/sh", str(tmp_path / "s.sh"), "$(id)", "3"]
    env = build_env(check)
    assert set(env) == {"PATH", "HOME", "LANG", "AAMI_CONFIG_A", "AAMI_CONFIG_B"}
    assert env["AAMI_CONFIG_A"] == "$(id)"


@pytest.mark.parametrize("language", ["bash", "sh"])
def test_config_values_are_passed_as_data_never_executed(
    config: AgentConfig, server: FakeServer, tmp_path: Path, language: str
) -> None:
    pwned = Path(f"/tmp/pwned-{secrets.token_hex(8)}")
    victim = tmp_path / "x"
    victim.mkdir()
    (victim / "keep").write_text("still here")
    record = tmp_path / "record"
    record.mkdir()
    values = {
        "cmd": f"$(touch {pwned})",
        "semi": f"; rm -rf {victim}",
        "tick": f"`touch {pwned}`",
        "out": str(record),
    }
    # The script only stores what it was given (quoted) and prints a metric.
    script = (
        'printf "%s" "$1" > "$4/1"\nprintf "%s" "$2" > "$4/2"\nprintf "%s" "$3" > "$4/3"\n'
        'printf "%s" "$AAMI_CONFIG_SEMI" > "$4/env"\n'
        'echo "injection_probe 1"\n'
    )
    server.set_checks([make_check("inject", script, language=language, config=values)])

    report = run(config, server)

    assert report.exit_code == 0, report.results
    assert prom(config, "inject").read_text() == "injection_probe 1\n"
    assert (record / "1").read_text() == values["cmd"]
    assert (record / "2").read_text() == values["semi"]
    assert (record / "3").read_text() == values["tick"]
    assert (record / "env").read_text() == values["semi"]
    assert not pwned.exists()
    assert (victim / "keep").read_text() == "still here"


def test_hanging_check_and_its_children_are_killed_at_the_timeout(
    config: AgentConfig, server: FakeServer, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    script = f'sleep 1000 &\necho "$$ $!" > {pids}\necho "hang_started 1"\nsleep 1000\n'
    server.set_checks(
        [make_check("hang", script, timeout=1), make_check("quick", ECHO_METRIC, timeout=5)]
    )

    started = time.monotonic()
    report = run(config, server)
    elapsed = time.monotonic() - started

    hang = result(report, "hang")
    assert (hang.ok, hang.reason) == (False, "timeout")
    assert elapsed < 10
    assert result(report, "quick").ok
    leader, child = map(int, pids.read_text().split())
    assert hang.pgid == leader
    wait_for(lambda: not live_group_members(leader), timeout=10, what="the check's group to die")
    assert not pid_alive(child)
    assert not prom(config, "hang").exists()


def test_children_left_behind_by_a_finished_check_are_killed(
    config: AgentConfig, server: FakeServer, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    # The background child keeps stdout open; the check is done when the script exits.
    script = f'sleep 1000 &\necho "$!" > {pids}\necho "left_child 1"\n'
    server.set_checks([make_check("stray", script, timeout=20)])

    started = time.monotonic()
    report = run(config, server)

    assert report.exit_code == 0, report.results
    assert time.monotonic() - started < 10
    assert prom(config, "stray").read_text() == "left_child 1\n"
    child = int(pids.read_text())
    wait_for(lambda: not pid_alive(child), timeout=10, what="the stray child to die")


def test_without_pidfd_the_leader_exit_is_polled(
    config: AgentConfig, server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pidfd(pid: int, flags: int = 0) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    pids = tmp_path / "pids"
    server.set_checks(
        [
            make_check("stray", f'sleep 1000 &\necho "$!" > {pids}\necho "left_child 1"\n'),
            make_check("hang", "sleep 1000\n", timeout=1),
            make_check("fails", "exit 5\n"),
        ]
    )

    report = run(config, server)

    assert [(r.name, r.reason, r.exit_code) for r in report.results] == [
        ("stray", None, 0),
        ("hang", "timeout", -9),
        ("fails", "exit_code", 5),
    ]
    assert prom(config, "stray").read_text() == "left_child 1\n"
    wait_for(lambda: not pid_alive(int(pids.read_text())), timeout=10, what="the child to die")


def test_non_zero_exit_fails_and_writes_nothing(config: AgentConfig, server: FakeServer) -> None:
    script = 'echo "half_done 1"\necho "disk probe exploded" >&2\nexit 3\n'
    server.set_checks([make_check("broken", script)])

    report = run(config, server)

    broken = result(report, "broken")
    assert report.exit_code == 1
    assert (broken.reason, broken.exit_code) == ("exit_code", 3)
    assert "disk probe exploded" in broken.detail
    assert not prom(config, "broken").exists()


@pytest.mark.parametrize(
    ("script", "message"),
    [
        pytest.param('echo "ok_line 1"\necho "Segmentation fault"\n', "not a valid", id="garbage"),
        pytest.param('echo "good 1"\necho "9lives 1"\n', "not a valid", id="invalid-name"),
        pytest.param("echo 'gpu.temp{gpu=\"0\"} 1'\n", "invalid metric name", id="dotted-name"),
        pytest.param("echo 'aami_check_success 1'\n", "reserved", id="agent-name"),
    ],
)
def test_bad_output_fails_and_writes_nothing(
    config: AgentConfig, server: FakeServer, script: str, message: str
) -> None:
    server.set_checks([make_check("bad", script)])

    report = run(config, server)

    bad = result(report, "bad")
    assert bad.reason == "bad_output"
    assert message in bad.detail
    assert not prom(config, "bad").exists()
    assert list(config.textfile_dir.iterdir()) == [config.textfile_dir / AGENT_FILE]


def test_huge_output_is_cut_off_without_reading_it_all(
    config: AgentConfig, server: FakeServer, tmp_path: Path
) -> None:
    finished = tmp_path / "finished"
    script = (
        "import sys\n"
        "line = b'flood_metric 1\\n' * 4096\n"
        "for _ in range(50 * 1024 * 1024 // len(line) + 1):\n"
        "    sys.stdout.buffer.write(line)\n"
        f"open({str(finished)!r}, 'w').close()\n"
    )
    server.set_checks([make_check("flood", script, language="python", timeout=60)])

    report = run(config, server)

    flood = result(report, "flood")
    assert flood.reason == "output_too_large"
    # Held in memory: at most the cap plus one byte, not 50 MB.
    assert config.max_output_bytes < flood.stdout_bytes <= config.max_output_bytes + 1
    assert not finished.exists()  # killed long before it wrote everything
    assert flood.pgid is not None
    pgid = flood.pgid
    wait_for(
        lambda: not live_group_members(pgid),
        timeout=10,
        what="the flooding check to die",
    )
    assert not prom(config, "flood").exists()


def test_hash_mismatch_is_not_run(config: AgentConfig, server: FakeServer, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = f"touch {marker}\necho 'tampered 1'\n"
    wrong = hashlib.sha256(b"the reviewed script").hexdigest()
    server.set_checks([make_check("tampered", script, digest=wrong)])

    report = run(config, server)

    tampered = result(report, "tampered")
    assert (tampered.ok, tampered.reason) == (False, "hash_mismatch")
    assert not marker.exists()
    assert not prom(config, "tampered").exists()
    assert not list((config.cache_dir / "scripts").iterdir())
    assert (
        agent_samples(config)[
            ("aami_check_failure", (("check", "tampered"), ("reason", "hash_mismatch")))
        ]
        == 1
    )


def test_a_failed_check_keeps_its_previous_file(config: AgentConfig, server: FakeServer) -> None:
    server.set_checks([make_check("flappy", 'echo "flappy_value 42"\n')])
    assert run(config, server).exit_code == 0
    assert prom(config, "flappy").read_text() == "flappy_value 42\n"

    server.set_checks([make_check("flappy", 'echo "flappy_value 0"\nexit 1\n')])
    report = run(config, server)

    assert report.exit_code == 1
    assert prom(config, "flappy").read_text() == "flappy_value 42\n"
    samples = agent_samples(config)
    assert samples[("aami_check_success", (("check", "flappy"),))] == 0
    assert samples[("aami_check_failure", (("check", "flappy"), ("reason", "exit_code")))] == 1


def test_files_of_removed_checks_are_deleted(config: AgentConfig, server: FakeServer) -> None:
    server.set_checks(
        [make_check("stays", 'echo "stays 1"\n'), make_check("goes", 'echo "goes 1"\n')]
    )
    assert run(config, server).exit_code == 0
    assert prom(config, "goes").exists()
    (config.textfile_dir / "node_other.prom").write_text("other 1\n")

    server.set_checks([make_check("stays", 'echo "stays 1"\n')])
    report = run(config, server)

    assert report.removed == ["aami_goes.prom"]
    assert not prom(config, "goes").exists()
    assert prom(config, "stays").exists()
    assert (config.textfile_dir / AGENT_FILE).exists()
    assert (config.textfile_dir / "node_other.prom").read_text() == "other 1\n"
    scripts = {p.name for p in (config.cache_dir / "scripts").iterdir()}
    assert scripts == {script_name('echo "stays 1"\n')}


def test_json_output_is_converted(config: AgentConfig, server: FakeServer) -> None:
    script = (
        "import json\n"
        "print(json.dumps({'metrics': [\n"
        "  {'name': 'gpu_ecc_errors', 'labels': {'gpu': '0', 'kind': 'say \"hi\"'}, 'value': 3},\n"
        "  {'name': 'gpu_ecc_errors', 'labels': {'gpu': '1', 'kind': 'x'}, 'value': 0.5},\n"
        "]}))\n"
    )
    server.set_checks([make_check("ecc", script, language="python")])

    assert run(config, server).exit_code == 0

    assert prom(config, "ecc").read_text() == (
        'gpu_ecc_errors{gpu="0",kind="say \\"hi\\""} 3\ngpu_ecc_errors{gpu="1",kind="x"} 0.5\n'
    )


def test_empty_output_is_a_success_with_no_samples(config: AgentConfig, server: FakeServer) -> None:
    server.set_checks([make_check("silent", "true\n")])
    assert run(config, server).exit_code == 0
    assert prom(config, "silent").read_text() == ""


def test_agent_metrics_file(config: AgentConfig, server: FakeServer) -> None:
    server.set_checks(
        [
            make_check("good", ECHO_METRIC),
            make_check("bad", "exit 2\n"),
            make_check("odd name/with.dots", ECHO_METRIC),
        ]
    )
    before = time.time()

    report = run(config, server)

    samples = agent_samples(config)
    assert samples[("aami_check_success", (("check", "good"),))] == 1
    assert samples[("aami_check_success", (("check", "bad"),))] == 0
    assert samples[("aami_check_success", (("check", "odd name/with.dots"),))] == 1
    assert samples[("aami_check_failure", (("check", "bad"), ("reason", "exit_code")))] == 1
    assert [k for k in samples if k[0] == "aami_check_failure"] == [
        ("aami_check_failure", (("check", "bad"), ("reason", "exit_code")))
    ]
    for name in ("good", "bad"):
        assert 0 < samples[("aami_check_duration_seconds", (("check", name),))] < 30
        assert before <= samples[("aami_check_last_run_timestamp_seconds", (("check", name),))]
    assert before <= samples[("aami_agent_last_sync_timestamp_seconds", ())] <= time.time()
    assert samples[("aami_agent_server_reachable", ())] == 1
    assert samples[("aami_agent_sync_success", ())] == 1
    assert samples[("aami_agent_checks", ())] == 3
    assert samples[("aami_agent_run_duration_seconds", ())] == pytest.approx(
        report.duration, abs=0.01
    )
    assert (config.textfile_dir / "aami_odd_name_with_dots.prom").exists()


def test_unreachable_server_runs_the_cached_checks(
    config: AgentConfig, server: FakeServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    script = f'echo run >> {runs}\necho "cached_check_runs $(wc -l < {runs})"\n'
    server.set_checks([make_check("counted", script)])
    assert run(config, server).exit_code == 0
    synced = agent_samples(config)[("aami_agent_last_sync_timestamp_seconds", ())]

    server.mode = "down"
    report = run(config, server)

    assert report.sync.source == "cache"
    assert report.exit_code == 0
    assert prom(config, "counted").read_text() == "cached_check_runs 2\n"
    samples = agent_samples(config)
    assert samples[("aami_agent_server_reachable", ())] == 0
    assert samples[("aami_agent_sync_success", ())] == 0
    assert samples[("aami_agent_last_sync_timestamp_seconds", ())] == synced
    assert samples[("aami_agent_checks", ())] == 1


@pytest.mark.parametrize("failure", ["timeout", "500"])
def test_timeouts_and_5xx_count_as_unreachable(
    config: AgentConfig, server: FakeServer, failure: str
) -> None:
    server.set_checks([make_check("c", ECHO_METRIC)])
    assert run(config, server).exit_code == 0
    server.mode = failure
    report = run(config, server)
    assert (report.sync.source, report.sync.server_reachable) == ("cache", False)
    assert report.exit_code == 0


def test_unreachable_without_cache_fails_and_keeps_existing_files(
    config: AgentConfig, server: FakeServer
) -> None:
    config.textfile_dir.mkdir(parents=True)
    old = config.textfile_dir / "aami_old.prom"
    old.write_text("old 1\n")
    server.mode = "down"

    report = run(config, server)

    assert report.exit_code == 1
    assert report.sync.source == "none"
    assert old.read_text() == "old 1\n"  # without a list, nothing is known to be stale
    samples = agent_samples(config)
    assert samples[("aami_agent_server_reachable", ())] == 0
    assert samples[("aami_agent_checks", ())] == 0
    assert samples[("aami_agent_last_sync_timestamp_seconds", ())] == 0


def test_etag_304_uses_the_cache(config: AgentConfig, server: FakeServer, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    server.set_checks([make_check("counted", f'echo run >> {runs}\necho "n $(wc -l < {runs})"\n')])
    assert run(config, server).sync.source == "server"

    report = run(config, server)

    assert report.sync.source == "not_modified"
    assert server.statuses == [200, 304]
    assert server.requests[1].headers["if-none-match"] == server.etag
    assert server.requests[1].headers["authorization"] == f"Bearer {NODE_TOKEN}"
    assert prom(config, "counted").read_text() == "n 2\n"
    assert report.sync.last_sync is not None
    assert agent_samples(config)[("aami_agent_last_sync_timestamp_seconds", ())] == pytest.approx(
        report.sync.last_sync
    )


def test_hostname_endpoint_is_used_without_a_target_id(
    config: AgentConfig, server: FakeServer
) -> None:
    server.set_checks([make_check("c", ECHO_METRIC)])
    run(replace(config, target_id=None), server)
    assert server.requests[0].url.path == "/api/v1/checks/node"
    assert server.requests[0].url.params["hostname"] == "gpu-node-01"


@pytest.mark.parametrize(("failure", "status"), [("401", 401), ("404", 404)])
def test_rejection_falls_back_to_the_cache_with_one_clear_line(
    config: AgentConfig,
    server: FakeServer,
    caplog: pytest.LogCaptureFixture,
    failure: str,
    status: int,
) -> None:
    server.set_checks([make_check("c", ECHO_METRIC)])
    assert run(config, server).exit_code == 0
    server.mode = failure
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="aami.agent"):
        report = run(config, server)

    assert report.sync.source == "cache"
    assert report.exit_code == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert f"({status})" in warnings[0]
    assert "using cache" in warnings[0]
    assert NODE_TOKEN not in caplog.text


def test_checks_run_in_parallel(config: AgentConfig, server: FakeServer, tmp_path: Path) -> None:
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()
    # Each check waits until all four have started: only a parallel run lets them all pass.
    script = (
        f'touch {rendezvous}/"$1"\n'
        "for i in $(seq 100); do\n"
        f'  [ "$(ls {rendezvous} | wc -l)" -ge 4 ] && {{ echo "met 1"; exit 0; }}\n'
        "  sleep 0.05\n"
        "done\n"
        "exit 1\n"
    )
    server.set_checks(
        [make_check(f"p{i}", script, config={"id": str(i)}, timeout=20) for i in range(4)]
    )

    report = run(config, server)

    assert [r.ok for r in report.results] == [True] * 4, report.results


def test_duplicate_and_reserved_names_and_unknown_languages_fail(
    config: AgentConfig, server: FakeServer
) -> None:
    server.set_checks(
        [
            make_check("dup", ECHO_METRIC),
            make_check("dup", 'echo "second 1"\n'),
            make_check("agent", ECHO_METRIC),
            make_check("perl", "print 1", language="perl"),
        ]
    )

    report = run(config, server)

    assert [(r.name, r.reason) for r in report.results] == [
        ("dup", None),
        ("dup", "name_conflict"),
        ("agent", "name_conflict"),
        ("perl", "unsupported_language"),
    ]
    assert prom(config, "dup").read_text() == "probe_ok 1\n"
    samples = agent_samples(config)  # still a valid file: one success series per name
    assert samples[("aami_check_success", (("check", "dup"),))] == 1


@pytest.mark.e2e
def test_node_exporter_reads_what_the_agent_writes(
    config: AgentConfig, server: FakeServer, tmp_path: Path
) -> None:
    server.set_checks(
        [
            make_check("mount-check", SEED_MOUNT_CHECK, config={"paths": f"/,{tmp_path}"}),
            make_check(
                "json-check",
                "import json; print(json.dumps([{'name': 'j', 'labels': {'a': 'x\"y'}, "
                "'value': float('nan')}]))",
                language="python",
            ),
            make_check("typed", "printf '# TYPE c counter\\nc 3\\n# HELP g x\\ng 1 123\\n'\n"),
            make_check("failing", "echo 'not metrics'\n"),
        ]
    )
    run(config, server)
    port = free_port()
    process = node_exporter(tmp_path, port=port, textfile_dir=config.textfile_dir).start()
    try:
        process.wait_http(f"http://127.0.0.1:{port}/metrics")
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        process.stop()

    assert "node_textfile_scrape_error 0" in body
    assert f'mount_status{{path="{tmp_path}"}} 0' in body
    assert 'mount_status{path="/"} 1' in body
    assert 'j{a="x\\"y"} NaN' in body
    assert "# TYPE c counter" in body
    assert 'aami_check_success{check="failing"} 0' in body
    assert 'aami_check_failure{check="failing",reason="bad_output"} 1' in body
    assert "aami_agent_checks 4" in body


def test_scripts_run_with_a_minimal_environment(
    config: AgentConfig, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AAMI_AGENT_TOKEN", "must-not-leak")
    script = 'env | grep -c "must-not-leak" | sed "s/^/leaked /"\n'
    server.set_checks([make_check("env", script)])
    run(config, server)
    assert prom(config, "env").read_text() == "leaked 0\n"
