"""Managed receivers and routes on top of the shipped config (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aami.alertmanager.rendering import ChannelSpec, ConfigError, RouteSpec, render_config
from aami.alertmanager.schemas import Matcher

BASE: dict[str, Any] = {
    "route": {
        "receiver": "default",
        "group_by": ["alertname", "group_id"],
        "routes": [{"receiver": "oncall", "matchers": ['severity="critical"']}],
    },
    "receivers": [{"name": "default"}, {"name": "oncall"}],
}
SECRETS = Path("/etc/alertmanager/aami-secrets")


def test_managed_routes_go_first_and_secrets_go_to_files() -> None:
    config = render_config(
        BASE,
        [
            ChannelSpec("prod-slack", "slack", {"channel": "#prod"}, has_secret=True),
            ChannelSpec("prod-hook", "webhook", {"url": "http://hooks/prod"}),
        ],
        [
            RouteSpec("b", "prod-hook", ('group="production"',), position=20, continue_=True),
            RouteSpec("a", "prod-slack", ('group="production"',), position=10, group_wait="0s"),
        ],
        secrets_dir=SECRETS,
    )
    assert [r["receiver"] for r in config["route"]["routes"]] == [
        "prod-slack",
        "prod-hook",
        "oncall",
    ]
    assert config["route"]["routes"][0]["group_wait"] == "0s"
    slack = next(r for r in config["receivers"] if r["name"] == "prod-slack")
    assert slack["slack_configs"][0]["api_url_file"] == str(SECRETS / "prod-slack")
    assert BASE["route"]["routes"] == [
        {
            "receiver": "oncall",  # the base is not modified
            "matchers": ['severity="critical"'],
        }
    ]


def test_names_and_receivers_are_checked() -> None:
    with pytest.raises(ConfigError, match="shipped"):
        render_config(
            BASE, [ChannelSpec("oncall", "webhook", {"url": "http://x/"})], [], secrets_dir=SECRETS
        )
    with pytest.raises(ConfigError, match="no receiver"):
        render_config(BASE, [], [RouteSpec("r", "ghost", ('a="b"',))], secrets_dir=SECRETS)


def test_matcher_syntax_escapes_values() -> None:
    assert Matcher(name="path", value='a"b\\c').promql() == 'path="a\\"b\\\\c"'
    assert Matcher(name="x", value="a.*", is_regex=True, is_equal=False).promql() == 'x!~"a.*"'
