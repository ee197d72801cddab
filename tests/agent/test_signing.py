"""Signed checks and the transport: the agent runs only what a pinned key signed, over
https unless told otherwise, and a refusal never stops the other checks."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from aami.agent.cli import agent_app
from aami.agent.client import Check
from aami.agent.config import AgentConfig
from aami.agent.runner import AGENT_FILE, RunReport, check_filename, run_once
from aami.agent.signing import (
    CHECK_CONTEXT,
    KeysError,
    OfferedKey,
    Signature,
    check_message,
    endorsement_message,
    key_id,
    load_keys,
    parse_key_document,
    update_trust,
)
from tests.agent.support import (
    NODE_TOKEN,
    OTHER_KEY,
    SERVER_KEY,
    FakeServer,
    agent_yaml,
    key_document,
    kid,
    make_check,
    pin,
    raw,
    serve,
    sign,
)
from tests.support.ports import free_port

ECHO = 'echo "probe_ok 1"\n'
runner = CliRunner()


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


def reasons(report: RunReport) -> dict[str, str | None]:
    return {result.name: result.reason for result in report.results}


def samples(config: AgentConfig) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = (config.textfile_dir / AGENT_FILE).read_text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def marker_script(marker: Path) -> str:
    return f"touch {marker}\necho 'ran 1'\n"


def test_the_signed_bytes_are_canonical() -> None:
    message = check_message(
        name="mount-check",
        script_type="custom",
        language="bash",
        version="1.0.0",
        hash="AB" * 32,
        timeout_seconds=30,
        config={"paths": "/data,/mnt/é", "limit": 2, "strict": True, "ratio": 0.5},
    )
    assert (
        message
        == CHECK_CONTEXT
        + (
            '["mount-check","custom","bash","1.0.0","' + "ab" * 32 + '",30000,'
            '[["paths","/data,/mnt/\\u00e9"],["limit",2],["strict",true],["ratio",0.5]]]'
        ).encode()
    )
    # the order of the config is the order of argv: it is part of what is signed
    reordered = check_message(
        name="mount-check",
        script_type="custom",
        language="bash",
        version="1.0.0",
        hash="ab" * 32,
        timeout_seconds=30.0,
        config={"limit": 2, "paths": "/data,/mnt/é", "strict": True, "ratio": 0.5},
    )
    assert reordered != message


def test_a_bad_signature_is_refused_and_the_others_run(
    config: AgentConfig, server: FakeServer, tmp_path: Path
) -> None:
    markers = {name: tmp_path / f"ran-{name}" for name in ("forged", "argv", "unsigned", "other")}
    # The attacker swaps the script and its hash; the signature is the server's original one.
    original = make_check("forged", "echo 'reviewed 1'\n")
    swapped = make_check("forged", marker_script(markers["forged"]), signed=False)
    forged = {**swapped, "signatures": original["signatures"]}
    # ... or keeps the script and changes what reaches its argv.
    argv = make_check("argv", marker_script(markers["argv"]), config={"path": "/data"})
    argv = {**argv, "config": {"path": "/; touch /tmp/x"}}
    server.set_checks(
        [
            make_check("good", ECHO),
            forged,
            argv,
            make_check("unsigned", marker_script(markers["unsigned"]), signed=False),
            sign(make_check("other", marker_script(markers["other"]), signed=False), OTHER_KEY),
            make_check("also-good", 'echo "second_ok 1"\n'),
        ]
    )

    report = run(config, server)

    assert reasons(report) == {
        "good": None,
        "forged": "bad_signature",
        "argv": "bad_signature",
        "unsigned": "unsigned",
        "other": "unknown_signing_key",
        "also-good": None,
    }
    assert report.exit_code == 1
    assert not [name for name, marker in markers.items() if marker.exists()]
    assert (config.textfile_dir / check_filename("good")).read_text() == "probe_ok 1\n"
    assert (config.textfile_dir / check_filename("also-good")).read_text() == "second_ok 1\n"
    assert not (config.textfile_dir / check_filename("forged")).exists()
    scripts = {p.name for p in (config.cache_dir / "scripts").iterdir()}
    assert len(scripts) == 2  # refused scripts are never written to disk
    metrics = samples(config)
    for name, reason in (
        ("forged", "bad_signature"),
        ("argv", "bad_signature"),
        ("unsigned", "unsigned"),
        ("other", "unknown_signing_key"),
    ):
        assert metrics[("aami_check_failure", (("check", name), ("reason", reason)))] == 1
        assert metrics[("aami_check_success", (("check", name),))] == 0
    assert metrics[("aami_check_success", (("check", "good"),))] == 1
    assert metrics[("aami_agent_signing_key_info", (("key_id", kid(SERVER_KEY)),))] == 1


def test_without_a_pinned_key_nothing_runs(
    config: AgentConfig, server: FakeServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "ran"
    server.set_checks([make_check("c", marker_script(marker))])
    unpinned = replace(config, signing_keys_file=tmp_path / "absent.json")

    with caplog.at_level(logging.ERROR, logger="aami.agent"):
        report = run(unpinned, server)

    assert reasons(report) == {"c": "no_signing_key"}
    assert not marker.exists()
    assert "aami agent pin-keys" in caplog.text
    assert not server.key_requests  # nothing to anchor a rotation in: no key is learnt


def test_a_tampered_cache_is_refused_too(config: AgentConfig, server: FakeServer) -> None:
    server.set_checks([make_check("c", ECHO)])
    assert run(config, server).exit_code == 0
    cache = config.cache_dir / "checks.json"
    document = json.loads(cache.read_text())
    document["checks"][0]["script_content"] = "echo 'evil 1'\n"
    document["checks"][0]["hash"] = Check.from_json(make_check("c", "echo 'evil 1'\n")).hash
    cache.write_text(json.dumps(document))
    server.mode = "down"

    report = run(config, server)

    assert report.sync.source == "cache"
    assert reasons(report) == {"c": "bad_signature"}


def test_plain_http_is_refused_without_the_flag_and_the_cached_checks_run(
    config: AgentConfig, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.set_checks([make_check("c", ECHO)])
    assert run(config, server).exit_code == 0
    (config.textfile_dir / check_filename("c")).unlink()
    plain = replace(config, server_url="http://aami.test")
    asked = len(server.requests)

    with caplog.at_level(logging.INFO, logger="aami.agent"):
        report = run(plain, server)

    assert len(server.requests) == asked  # not one byte towards the server, token included
    assert report.sync.source == "cache"
    assert report.sync.error == "insecure_http"
    assert reasons(report) == {"c": None}
    assert (config.textfile_dir / check_filename("c")).read_text() == "probe_ok 1\n"
    assert samples(config)[("aami_agent_sync_error", (("reason", "insecure_http"),))] == 1
    assert samples(config)[("aami_agent_sync_success", ())] == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("refusing plain HTTP to http://aami.test" in e for e in errors)
    assert "--insecure-http" in errors[0]

    allowed = run(replace(plain, insecure_http=True), server)
    assert len(server.requests) == asked + 1
    assert allowed.sync.source == "not_modified"
    assert ("aami_agent_sync_error", (("reason", "insecure_http"),)) not in samples(config)


def test_plain_http_without_a_cache_runs_nothing(config: AgentConfig, server: FakeServer) -> None:
    server.set_checks([make_check("c", ECHO)])
    report = run(replace(config, server_url="http://aami.test"), server)
    assert report.sync.source == "none"
    assert report.exit_code == 1
    assert not server.requests


def test_once_over_real_plain_http_needs_the_flag(tmp_path: Path) -> None:
    server = FakeServer()
    server.set_checks([make_check("c", ECHO)])
    with serve(server.handle, tls=False) as url:
        config = agent_yaml(tmp_path, url)
        refused = runner.invoke(agent_app, ["once", "--config", str(config)])
        assert server.requests == []
        allowed = runner.invoke(agent_app, ["once", "--config", str(config), "--insecure-http"])
    assert refused.exit_code == 1
    assert "refusing plain HTTP" in refused.stderr
    assert allowed.exit_code == 0, allowed.output
    assert (tmp_path / "textfile" / "aami_c.prom").read_text() == "probe_ok 1\n"


def test_register_refuses_plain_http_without_the_flag(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500)

    with serve(handle, tls=False) as url:
        result = runner.invoke(
            agent_app,
            ["register", "--server", url, "--bootstrap-token", "t" * 20, "--ip-address", "::1"],
            env={"AAMI_AGENT_CONFIG": str(tmp_path / "agent.yaml")},
        )
    assert result.exit_code == 2
    assert "refusing plain HTTP" in result.stderr
    assert "Traceback" not in result.output
    assert seen == []  # the bootstrap token never left the node
    assert not (tmp_path / "agent.yaml").exists()


def test_a_server_the_ca_does_not_vouch_for_is_refused(tmp_path: Path) -> None:
    server = FakeServer()
    server.set_checks([make_check("c", ECHO)])
    # A CA of its own that did not issue the server's certificate.
    from aami.security.tls import ensure_stack_tls

    stranger = ensure_stack_tls(tmp_path / "other-ca").ca_file
    with serve(server.handle) as url:
        config = agent_yaml(tmp_path, url, ca_file=str(stranger))
        result = runner.invoke(agent_app, ["once", "--config", str(config)])
    assert result.exit_code == 1
    assert "server not trusted" in result.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr or "certificate" in result.stderr
    assert server.requests == []
    metrics = (tmp_path / "textfile" / AGENT_FILE).read_text()
    assert 'aami_agent_sync_error{reason="tls"} 1' in metrics


def test_register_over_https_unknown_ca_fails_before_sending_the_token(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500)

    with serve(handle) as url:  # the test CA is not among the system's CAs
        result = runner.invoke(
            agent_app,
            ["register", "--server", url, "--bootstrap-token", "t" * 20, "--ip-address", "::1"],
            env={"AAMI_AGENT_CONFIG": str(tmp_path / "agent.yaml")},
        )
    assert result.exit_code == 1
    assert "TLS" in result.stderr
    assert seen == []


# ---- key rotation --------------------------------------------------------------------


def offered(*keys: object) -> list[OfferedKey]:
    return parse_key_document(key_document(*keys))  # type: ignore[arg-type]


def test_update_trust_follows_an_endorsed_rotation() -> None:
    current = {kid(SERVER_KEY): raw(SERVER_KEY)}

    during = update_trust(current, offered(SERVER_KEY, OTHER_KEY))
    assert during.added == [kid(OTHER_KEY)]
    assert during.removed == []
    assert set(during.keys) == {kid(SERVER_KEY), kid(OTHER_KEY)}

    after = update_trust(during.keys, offered(OTHER_KEY))
    assert after.keys == {kid(OTHER_KEY): raw(OTHER_KEY)}
    assert after.removed == [kid(SERVER_KEY)]


def test_update_trust_ignores_keys_nobody_trusted_endorsed() -> None:
    current = {kid(SERVER_KEY): raw(SERVER_KEY)}
    # The next key alone, without the current one: no endorsement by a pinned key.
    alone = update_trust(current, offered(OTHER_KEY))
    assert alone.keys == current
    assert not alone.changed
    # An endorsement that does not verify (signed over another key's bytes).
    forged = OfferedKey(
        kid(OTHER_KEY),
        raw(OTHER_KEY),
        (Signature(kid(SERVER_KEY), SERVER_KEY.sign(endorsement_message(b"\x00" * 32))),),
    )
    assert update_trust(current, [forged]).keys == current


def test_the_key_document_must_name_its_keys_right() -> None:
    document = key_document(SERVER_KEY)
    document["keys"][0]["key_id"] = key_id(raw(OTHER_KEY))  # type: ignore[index]
    with pytest.raises(KeysError, match="does not match"):
        parse_key_document(document)
    document = key_document(SERVER_KEY)
    document["keys"][0]["public_key"] = base64.b64encode(b"short").decode()  # type: ignore[index]
    with pytest.raises(KeysError, match="32 bytes"):
        parse_key_document(document)


def test_the_agent_follows_a_key_rotation(config: AgentConfig, server: FakeServer) -> None:
    server.set_checks([make_check("c", ECHO)])
    assert run(config, server).exit_code == 0
    assert list(load_keys(config.keys_path)) == [kid(SERVER_KEY)]

    # 1. the server holds the next key: it signs with both and offers it, endorsed
    server.keys = [SERVER_KEY, OTHER_KEY]
    both = sign(make_check("c", ECHO, signed=False), SERVER_KEY, OTHER_KEY)
    server.set_checks([both])
    assert run(config, server).exit_code == 0
    assert set(load_keys(config.keys_path)) == {kid(SERVER_KEY), kid(OTHER_KEY)}
    metrics = samples(config)
    assert metrics[("aami_agent_signing_key_info", (("key_id", kid(OTHER_KEY)),))] == 1

    # 2. the next key becomes the only one: the old one is retired on the node too
    server.keys = [OTHER_KEY]
    server.set_checks([sign(make_check("c", 'echo "probe_ok 2"\n', signed=False), OTHER_KEY)])
    report = run(config, server)
    assert reasons(report) == {"c": None}
    assert list(load_keys(config.keys_path)) == [kid(OTHER_KEY)]
    assert (config.textfile_dir / check_filename("c")).read_text() == "probe_ok 2\n"

    # 3. a script signed by the retired key alone is now refused
    server.set_checks([make_check("c", 'echo "probe_ok 3"\n')])
    assert reasons(run(config, server)) == {"c": "unknown_signing_key"}


def test_a_node_that_missed_the_rotation_refuses_until_it_is_pinned_again(
    tmp_path: Path,
) -> None:
    server = FakeServer(keys=[OTHER_KEY])
    server.set_checks([sign(make_check("c", ECHO, signed=False), OTHER_KEY)])
    with serve(server.handle) as url:
        config = agent_yaml(tmp_path, url)  # pins SERVER_KEY, the retired key
        refused = runner.invoke(agent_app, ["once", "--config", str(config)])
        pinned = runner.invoke(agent_app, ["pin-keys", "--config", str(config)])
        again = runner.invoke(agent_app, ["once", "--config", str(config)])
    assert refused.exit_code == 1
    assert "unknown_signing_key" in refused.stderr
    assert pinned.exit_code == 0, pinned.output
    assert f"replaced {kid(SERVER_KEY)} with {kid(OTHER_KEY)}" in pinned.stdout
    assert again.exit_code == 0, again.output


def test_pin_keys_fails_clearly_when_the_server_is_unreachable(tmp_path: Path) -> None:
    config = agent_yaml(tmp_path, f"https://127.0.0.1:{free_port()}")
    result = runner.invoke(agent_app, ["pin-keys", "--config", str(config)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot pin the server's check-signing keys")
    assert "Traceback" not in result.output
