"""The browser harness: a real AAMI server (UI installed), Prometheus, Alertmanager and
node_exporter on free loopback ports, and Debian's Chromium driven by Playwright.

Screenshots of every page at 1280 and 390 px go to the test's tmp dir; the path is written
to stdout and recorded as the test's ``screenshots`` property.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from aami.alertmanager.rendering import HistorySpec, history_receiver, route_with_history
from tests.support.ports import free_port
from tests.support.processes import Process, alertmanager, node_exporter, prometheus
from tests.support.prometheus_config import shipped_config_for_test

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "browser-admin-token-0123456789"
HISTORY_TOKEN = "browser-history-token-0123456789"
REPO = Path(__file__).resolve().parents[2]
WIDTHS = (1280, 390)

QUERY_START = 'node_exporter_build_info{group_id="{{.group_id}}"} >'
QUERY_END = " {{.threshold}}"

# Every control needs a name a screen reader can say: a label, or aria-label.
UNLABELLED = """() => Array.from(document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button')).filter(el => {
  if (el.tagName === 'BUTTON') return !(el.textContent.trim() || el.getAttribute('aria-label'));
  return !(el.labels && el.labels.length) && !el.getAttribute('aria-label');
}).map(el => el.outerHTML.slice(0, 160))"""


@dataclass
class Live:
    tmp: Path
    url: str
    prometheus_url: str
    alertmanager_url: str
    node_exporter_port: int
    server: Process
    processes: list[Process] = field(default_factory=list)

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method,
            self.url + path,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
            **kwargs,
        )

    def scraped_node(self, hostname: str = "gpu-node-01", group: str = "prod") -> None:
        """A group and a node in it whose exporter is this stack's node_exporter, which
        Prometheus then scrapes through AAMI's service discovery."""
        assert self.api("POST", "/api/v1/groups", json={"id": group, "name": "production"})
        target = {
            "hostname": hostname,
            "ip_address": "127.0.0.1",
            "group_ids": [group],
            "exporters": [{"type": "node_exporter", "port": self.node_exporter_port}],
        }
        assert self.api("POST", "/api/v1/targets", json=target).status_code == 201

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.prometheus_url}/api/v1/query", params={"query": promql}, timeout=5
        )
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result


def _quick_history(route: dict[str, Any]) -> dict[str, Any]:
    """The history route reports each change within a second (a test need not wait)."""
    history, *rest = route["routes"]
    return {**route, "routes": [{**history, "group_wait": "0s", "group_interval": "1s"}, *rest]}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The AAMI server (UI installed), node_exporter, Prometheus and Alertmanager."""
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: scripts/setup (through scripts/setup-web) installs the "
        "Debian package chromium"
    )
    server_port, prom_port, am_port, ne_port = (free_port() for _ in range(4))
    rules_dir = tmp_path / "rules"
    (rules_dir / "generated").mkdir(parents=True)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    url = f"http://127.0.0.1:{server_port}"
    history_token_file = tmp_path / "history-token"
    history_token_file.write_text(HISTORY_TOKEN)
    am_config = tmp_path / "alertmanager.yml"
    # Every alert also goes to AAMI's alert history (the receiver AAMI renders), quickly.
    history = HistorySpec(url + "/api/v1/alert-history/webhook", str(history_token_file))
    am_config.write_text(
        yaml.safe_dump(
            {
                "route": _quick_history(
                    route_with_history(
                        {"receiver": "null", "group_by": ["alertname"], "group_wait": "0s"}
                    )
                ),
                "receivers": [{"name": "null"}, history_receiver(history)],
                # Only alerts carrying these labels (tests/web/test_browser_alert_history.py).
                "inhibit_rules": [
                    {
                        "source_matchers": ['browser_inhibitor="yes"'],
                        "target_matchers": ['browser_inhibited="yes"'],
                        "equal": ["instance"],
                    }
                ],
            }
        )
    )
    prom_config = shipped_config_for_test(
        tmp_path,
        server_url=url,
        token_file=token_file,
        rules_dir=rules_dir,
        prometheus_port=prom_port,
        alertmanager=f"127.0.0.1:{am_port}",
    )
    server = Process(
        "aami-server-ui",
        [sys.executable, "-m", "tests.web.server", "--port", str(server_port)],
        tmp_path / "aami-server.log",
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "AAMI_ADMIN_TOKEN": TOKEN,
            "AAMI_HISTORY_TOKEN": HISTORY_TOKEN,
            "AAMI_DATABASE_URL": f"sqlite:///{tmp_path / 'aami.db'}",
            "PROMETHEUS_RULE_PATH": str(rules_dir / "generated"),
            "PROMETHEUS_URL": f"http://127.0.0.1:{prom_port}",
            "PROMETHEUS_RELOAD_TIMEOUT": "3s",
            "ALERTMANAGER_URL": f"http://127.0.0.1:{am_port}",
        },
    )
    processes = [
        alertmanager(tmp_path, port=am_port, config=am_config),
        node_exporter(tmp_path, port=ne_port, textfile_dir=textfile),
        server,
        prometheus(tmp_path, port=prom_port, config=prom_config),
    ]
    running = Live(
        tmp_path,
        url,
        f"http://127.0.0.1:{prom_port}",
        f"http://127.0.0.1:{am_port}",
        ne_port,
        server,
        processes,
    )
    try:
        for process in processes:
            process.start()
        server.wait_http(f"{url}/health/ready")
        processes[0].wait_http(f"{running.alertmanager_url}/-/ready")
        processes[1].wait_http(f"http://127.0.0.1:{ne_port}/metrics")
        processes[3].wait_http(f"{running.prometheus_url}/-/ready")
        yield running
    finally:
        for process in reversed(processes):
            process.stop()


class Shots:
    """Screenshots at each width; each also checks the page fits and names its controls."""

    def __init__(self, page: Any, directory: Path) -> None:
        self.page = page
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.taken: list[str] = []

    def __call__(self, name: str) -> None:
        page = self.page
        assert page.evaluate(UNLABELLED) == [], f"controls without a name on {page.url}"
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            path = self.directory / f"{len(self.taken) // 2 + 1:02d}-{name}-{width}.png"
            page.screenshot(path=str(path), full_page=True)
            self.taken.append(path.name)
            # Only tables scroll sideways (inside their wrapper); the page itself never does.
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= width, f"{page.url} is {scroll_width}px wide at {width}px"
        page.set_viewport_size({"width": 1280, "height": 900})


def in_chromium(live: Live, request: pytest.FixtureRequest, walk: Any) -> None:
    """Run ``walk(page, live, shoot, expect)`` in Chromium; no page error or console error."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail(
            "playwright is not installed: it is in the dev extras that scripts/setup installs"
        )

    screenshots = live.tmp / "screenshots"
    request.node.user_properties.append(("screenshots", str(screenshots)))
    sys.stdout.write(f"\nscreenshots: {screenshots}\n")
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(15_000)
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on(
                "console",
                lambda msg: (
                    problems.append(f"console: {msg.text}")
                    if msg.type == "error" and "Failed to load resource" not in msg.text
                    else None
                ),
            )
            page.on("dialog", lambda dialog: dialog.accept())
            walk(page, live, Shots(page, screenshots), expect)
        finally:
            browser.close()
    sys.stdout.write(f"screenshots: {screenshots}\n")
    assert problems == []
