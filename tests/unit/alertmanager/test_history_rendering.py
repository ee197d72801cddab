"""The alert-history receiver in the rendered Alertmanager config: first, for every alert,
and the shipped routing unchanged after it (amtool check-config and routes test)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from aami.alertmanager.rendering import (
    HISTORY_RECEIVER,
    ChannelSpec,
    ConfigError,
    HistorySpec,
    RouteSpec,
    render_config,
)
from tests.support.processes import binary

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
ROUTE_CASES: list[dict[str, Any]] = yaml.safe_load(
    (REPO / "deploy" / "alertmanager" / "tests" / "routes.yml").read_text()
)
SECRETS = Path("/etc/alertmanager/aami-secrets")
HISTORY = HistorySpec(
    url="https://aami.example.com/api/v1/alert-history/webhook",
    credentials_file=str(SECRETS / HISTORY_RECEIVER),
    ca_file="/etc/alertmanager/aami-ca.pem",
)


def _rendered(tmp_path: Path, **kwargs: Any) -> Path:
    config = render_config(
        yaml.safe_load(SHIPPED.read_text()),
        kwargs.get("channels", []),
        kwargs.get("routes", []),
        secrets_dir=SECRETS,
        history=HISTORY,
    )
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("amtool"), *args], capture_output=True, text=True, check=False, timeout=60
    )


def test_the_history_receiver_and_route(tmp_path: Path) -> None:
    config = yaml.safe_load(_rendered(tmp_path).read_text())
    first, rest = config["route"]["routes"]
    assert first == {"receiver": "aami-history", "group_by": ["..."], "continue": True}
    assert rest["receiver"] == "default"  # what no route matches still goes to the default
    assert "matchers" not in rest
    assert [r.get("matchers") for r in rest["routes"]][:2] == [
        ['group="production"'],
        ['severity="critical"'],
    ]
    (hook,) = next(r for r in config["receivers"] if r["name"] == "aami-history")["webhook_configs"]
    assert hook == {
        "url": "https://aami.example.com/api/v1/alert-history/webhook",
        "send_resolved": True,
        "http_config": {
            "authorization": {
                "type": "Bearer",  # written out: some releases send a bare token without it
                "credentials_file": "/etc/alertmanager/aami-secrets/aami-history",
            },
            "tls_config": {"ca_file": "/etc/alertmanager/aami-ca.pem"},
        },
    }


def test_amtool_check_config_accepts_it(tmp_path: Path) -> None:
    result = _amtool("check-config", str(_rendered(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "aami-history" not in result.stderr


@pytest.mark.parametrize("case", ROUTE_CASES, ids=[case["name"] for case in ROUTE_CASES])
def test_every_alert_is_recorded_and_routed_as_before(tmp_path: Path, case: dict[str, Any]) -> None:
    expected = ["aami-history", *case["receivers"]]
    labels = [f"{name}={json.dumps(str(value))}" for name, value in case["labels"].items()]
    result = _amtool(
        "config",
        "routes",
        "test",
        f"--config.file={_rendered(tmp_path)}",
        f"--verify.receivers={','.join(expected)}",
        *labels,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_managed_routes_stay_before_the_shipped_ones(tmp_path: Path) -> None:
    path = _rendered(
        tmp_path,
        channels=[ChannelSpec("gpu-team", "webhook", {"url": "http://hooks/gpu"})],
        routes=[RouteSpec("gpu", "gpu-team", ('group="production"',), continue_=True)],
    )
    rest = yaml.safe_load(path.read_text())["route"]["routes"][1]
    assert rest["routes"][0]["receiver"] == "gpu-team"
    result = _amtool(
        "config",
        "routes",
        "test",
        f"--config.file={path}",
        "--verify.receivers=aami-history,gpu-team,production-team,oncall",
        'severity="critical"',
        'group="production"',
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_channel_may_not_take_the_history_receivers_name() -> None:
    with pytest.raises(ConfigError, match="aami-history"):
        render_config(
            yaml.safe_load(SHIPPED.read_text()),
            [ChannelSpec("aami-history", "webhook", {"url": "http://x/"})],
            [],
            secrets_dir=SECRETS,
            history=HISTORY,
        )


def test_without_history_nothing_changes() -> None:
    base = yaml.safe_load(SHIPPED.read_text())
    config = render_config(base, [], [], secrets_dir=SECRETS)
    assert config["route"] == base["route"]
    assert "aami-history" not in {r["name"] for r in config["receivers"]}
