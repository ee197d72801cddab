"""The rule preview and the backtest against a real Prometheus with a known history.

The history is written as OpenMetrics with timestamps and loaded with ``promtool tsdb
create-blocks-from openmetrics`` before Prometheus starts, so two hours of data exist at
once. Samples are 10 s apart on multiples of 10 s, and the backtest's step is 10 s, so
every grid point is a sample and the expected episodes follow from the data alone.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from aami.app import create_app
from aami.cli.main import app as cli
from aami.config import Settings
from tests.conftest import AUTH, TOKEN
from tests.support.api import create
from tests.support.ports import free_port
from tests.support.processes import aami_server, binary, prometheus

pytestmark = pytest.mark.e2e

STEP = 10
TEMPLATE = {
    "name": "HotGpu",
    "query_template": 'max by (instance) (gpu_temp{group_id="{{.group_id}}"}) > {{.threshold}}',
    "default_config": {"threshold": 80},
    "parameters": {"threshold": {"type": "number", "min": 0, "max": 120}},
    "for_duration": "1m",
}


def history(now: int) -> dict[tuple[str, str], dict[int, float]]:
    """By (group_id, instance): value per timestamp, from two hours ago to ``now``."""
    start = now - 7200
    a = dict.fromkeys(range(start, now + 1, STEP), 60.0)
    b = dict.fromkeys(range(start, now + 1, STEP), 50.0)
    c = dict.fromkeys(range(start, now + 1, STEP), 99.0)

    def excursion(series: dict[int, float], first: int, points: int, value: float) -> None:
        for t in range(first, first + points * STEP, STEP):
            series[t] = value

    excursion(a, now - 3000, 3, 85.0)  # 30 s: shorter than for (1m) at any threshold
    excursion(a, now - 2400, 18, 90.0)  # 170 s: fires from 60 s in, 12 points: 120 s
    excursion(a, now - 1800, 30, 75.0)  # above 70 only: 30 points, fires 24: 240 s
    excursion(b, now - 1200, 10, 95.0)  # 10 points, fires 4: 40 s
    excursion(b, now - 1090, 10, 95.0)  # the same after a one-point gap: a second episode
    return {("prod", "a"): a, ("prod", "b"): b, ("dev", "c"): c}


def openmetrics(data: dict[tuple[str, str], dict[int, float]]) -> str:
    lines = ["# HELP gpu_temp GPU temperature.", "# TYPE gpu_temp gauge"]
    for (group, instance), points in data.items():
        labels = f'{{group_id="{group}",instance="{instance}"}}'
        lines += [f"gpu_temp{labels} {value} {t}" for t, value in sorted(points.items())]
    return "\n".join([*lines, "# EOF", ""])


@dataclass
class Backfilled:
    now: int  # the last sample's time
    url: str
    api: TestClient


@pytest.fixture(scope="module")
def backfilled(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Backfilled]:
    tmp = tmp_path_factory.mktemp("backtest")
    now = int(time.time()) // STEP * STEP
    source = tmp / "history.om"
    source.write_text(openmetrics(history(now)))
    data = tmp / "prometheus-data"
    data.mkdir()
    subprocess.run(
        [binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
        cwd=tmp,
    )
    config = tmp / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\n")
    port = free_port()
    process = prometheus(tmp, port=port, config=config).start()
    url = f"http://127.0.0.1:{port}"
    database = tmp / "aami.db"
    database.write_bytes(sqlite_template.read_bytes())
    settings = Settings(
        database_url=f"sqlite:///{database}",
        admin_token=TOKEN,
        PROMETHEUS_RULE_PATH=tmp / "rules",
        PROMETHEUS_URL=url,
        PROMETHEUS_RELOAD_ENABLED=False,
        ALERTMANAGER_URL="http://127.0.0.1:1",
        publish_check_interval=3600,
    )
    try:
        process.wait_http(f"{url}/-/ready")
        with TestClient(create_app(settings), headers=AUTH) as api:
            for group, name in (("prod", "production"), ("dev", "development"), ("idle", "idle")):
                create(api, "/api/v1/groups", {"id": group, "name": name})
            create(api, "/api/v1/alert-templates", TEMPLATE)
            create(
                api,
                "/api/v1/alert-rules",
                {"id": "hot-prod", "template_id": "HotGpu", "group_id": "prod"},
            )
            yield Backfilled(now, url, api)
    finally:
        process.stop()


def per_instance(run: dict[str, Any]) -> dict[str, tuple[int, float, float]]:
    return {
        s["labels"]["instance"]: (s["episodes"], s["firing_seconds"], s["longest_seconds"])
        for s in run["series"]
    }


def test_a_backtest_counts_episodes_for_the_current_and_a_proposed_threshold(
    backfilled: Backfilled,
) -> None:
    response = backfilled.api.post(
        "/api/v1/alert-rules/hot-prod/backtest",
        json={"config": {"threshold": 70}, "hours": 1, "step": STEP},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["step_seconds"] == STEP
    assert body["current_source"] == "saved rule hot-prod"
    current, proposed = body["current"], body["proposed"]
    assert current["error"] is None
    assert proposed["error"] is None
    assert current["for"] == "1m"
    assert current["expr"] == 'max by (instance) (gpu_temp{group_id="prod"}) > 80'
    assert proposed["expr"] == 'max by (instance) (gpu_temp{group_id="prod"}) > 70'

    assert per_instance(current) == {"a": (1, 120.0, 120.0), "b": (2, 80.0, 40.0)}
    assert (current["episodes"], current["firing_seconds"], current["longest_seconds"]) == (
        3,
        200.0,
        120.0,
    )
    assert per_instance(proposed) == {"a": (2, 360.0, 240.0), "b": (2, 80.0, 40.0)}
    assert (proposed["episodes"], proposed["firing_seconds"], proposed["longest_seconds"]) == (
        4,
        440.0,
        240.0,
    )
    assert current["series_seen"] == proposed["series_seen"] == 2


def test_a_backtest_of_an_unsaved_rule_compares_with_the_template_defaults(
    backfilled: Backfilled,
) -> None:
    response = backfilled.api.post(
        "/api/v1/alert-rules/backtest",
        json={
            "template_id": "HotGpu",
            "group_id": "development",
            "config": {"threshold": 100},
            "hours": 1,
            "step": STEP,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["current_source"] == "template defaults"
    # c is at 99 all along: firing the whole hour at 80 (less the minute of for), never at 100.
    assert body["current"]["episodes"] == 1
    assert body["current"]["series"][0]["firing_at_end"] is True
    assert body["current"]["firing_seconds"] >= 3600 - 60
    assert (body["proposed"]["episodes"], body["proposed"]["series_seen"]) == (0, 0)


def preview(backfilled: Backfilled, **body: Any) -> dict[str, Any]:
    response = backfilled.api.post(
        "/api/v1/alert-rules/preview", json={"template_id": "HotGpu", **body}
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_the_preview_shows_what_would_fire_and_the_near_misses(backfilled: Backfilled) -> None:
    found = preview(backfilled, group_id="prod", config={"threshold": 55})["evaluation"]
    assert found["state"] == "firing"
    assert (found["firing_count"], found["series_count"]) == (1, 2)
    assert found["firing"] == [{"labels": {"instance": "a"}, "value": 60.0, "distance": None}]
    assert found["near_misses"] == [{"labels": {"instance": "b"}, "value": 50.0, "distance": 5.0}]
    assert found["comparison"]["op"] == ">"
    assert found["comparison"]["threshold"] == 55
    assert found["summary"] == "1 series would fire now"


def test_the_preview_says_when_all_series_are_below(backfilled: Backfilled) -> None:
    found = backfilled.api.get("/api/v1/alert-rules/hot-prod/preview", params={"near": 1})
    evaluation = found.json()["evaluation"]
    assert evaluation["state"] == "all_below"
    assert evaluation["summary"] == "all 2 series are below the threshold"
    assert evaluation["firing"] == []
    assert evaluation["near_misses"] == [
        {"labels": {"instance": "a"}, "value": 60.0, "distance": 20.0}
    ]


def test_the_preview_says_when_there_is_no_such_metric(backfilled: Backfilled) -> None:
    template = {**TEMPLATE, "name": "GpuPower", "query_template": TEMPLATE["query_template"]}
    template["query_template"] = str(template["query_template"]).replace(
        "gpu_temp", "gpu_power_watts"
    )
    create(backfilled.api, "/api/v1/alert-templates", template)
    found = backfilled.api.post(
        "/api/v1/alert-rules/preview", json={"template_id": "GpuPower", "group_id": "prod"}
    ).json()["evaluation"]
    assert found["state"] == "no_such_metric"
    assert found["absent_metrics"] == ["gpu_power_watts"]
    assert "no such metric" in found["summary"]
    # The metric exists, but not for this group's label.
    found = preview(backfilled, group_id="idle")["evaluation"]
    assert found["state"] == "no_such_metric"
    assert found["absent_metrics"] == []
    assert "gpu_temp exist" in found["summary"]


def test_an_expression_without_a_comparison_has_no_near_misses(backfilled: Backfilled) -> None:
    template = {
        "name": "GpuSeen",
        "query_template": 'gpu_temp{group_id="{{.group_id}}"}',
    }
    create(backfilled.api, "/api/v1/alert-templates", template)
    response = backfilled.api.post(
        "/api/v1/alert-rules/preview", json={"template_id": "GpuSeen", "group_id": "dev"}
    )
    found = response.json()["evaluation"]
    assert found["state"] == "firing"
    assert found["near_misses_available"] is False
    assert "no top-level comparison" in found["near_misses_note"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, backfilled: Backfilled) -> Iterator[str]:
    """The AAMI server as a process on the same Prometheus, with the same rule."""
    tmp = tmp_path_factory.mktemp("cli-server")
    port = free_port()
    process = aami_server(
        tmp,
        port=port,
        token=TOKEN,
        env={"PROMETHEUS_URL": backfilled.url, "PROMETHEUS_RELOAD_ENABLED": "false"},
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_http(f"{url}/health/ready")
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as api:
            for body in (
                ("/api/v1/groups", {"id": "prod", "name": "production"}),
                ("/api/v1/alert-templates", TEMPLATE),
                (
                    "/api/v1/alert-rules",
                    {"id": "hot-prod", "template_id": "HotGpu", "group_id": "prod"},
                ),
            ):
                assert api.post(body[0], json=body[1]).status_code == 201
        yield url
    finally:
        process.stop()


def aami(server: str, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, [*args, "--server", server, "--token", TOKEN])
    assert result.exit_code == code, result.output
    return result


def test_the_cli_backtests_a_proposed_threshold(server: str) -> None:
    result = aami(
        server,
        "alert-rules",
        "backtest",
        "hot-prod",
        "--config",
        "threshold=70",
        "--hours",
        "1",
        "--step",
        str(STEP),
        "-o",
        "json",
    )
    body = json.loads(result.stdout)
    assert (body["current"]["episodes"], body["proposed"]["episodes"]) == (3, 4)
    assert (body["current"]["firing_seconds"], body["proposed"]["firing_seconds"]) == (200, 440)
    table = aami(
        server,
        "alert-rules",
        "backtest",
        "hot-prod",
        "--config",
        "threshold=70",
        "--hours",
        "1",
        "--step",
        str(STEP),
    ).stdout
    assert "times fired" in table
    assert "CURRENT (saved rule hot-prod)" in table
    assert "3m20s" in table
    assert "7m20s" in table


def test_the_cli_previews_a_rule_and_a_draft(server: str) -> None:
    table = aami(server, "alert-rules", "preview", "hot-prod").stdout
    assert "all_below: all 2 series are below the threshold" in table
    assert "instance=a" in table
    assert "20" in table
    draft = aami(
        server,
        "alert-rules",
        "preview",
        "--template",
        "HotGpu",
        "--group",
        "prod",
        "--config",
        "threshold=55",
        "-o",
        "json",
    )
    assert json.loads(draft.stdout)["evaluation"]["firing_count"] == 1
    refused = aami(
        server, "alert-rules", "backtest", "hot-prod", "--config", "threshold=hot", code=2
    )
    assert "'hot' is not a number" in refused.output
    usage = aami(server, "alert-rules", "preview", code=2)
    assert "give RULE_ID" in usage.output


def test_the_cli_shows_a_template_changes_impact(server: str) -> None:
    result = aami(server, "alert-templates", "impact", "HotGpu", "--set", "for_duration=5m")
    assert "the change would be saved" in result.stdout
    assert "hot-prod (group production): for" in result.stdout
