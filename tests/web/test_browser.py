"""The UI in a real browser (Debian's Chromium, driven by Playwright) against a real AAMI
server, Prometheus, Alertmanager and node_exporter on free loopback ports (tests/web/browser.py).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.wait import wait_for
from tests.web.browser import QUERY_END, QUERY_START, TOKEN, Live, Shots, in_chromium

pytestmark = pytest.mark.e2e


def test_the_ui_in_a_browser(live: Live, request: pytest.FixtureRequest) -> None:
    in_chromium(live, request, _walk_through)


def test_the_route_tester_in_a_browser(live: Live, request: pytest.FixtureRequest) -> None:
    in_chromium(live, request, _notifications_walk)


def _walk_through(page: Any, live: Live, shoot: Shots, expect: Any) -> None:
    url = live.url

    # Login: every page sends an anonymous visitor there, and back after.
    page.goto(f"{url}/ui/groups")
    expect(page).to_have_url(f"{url}/ui/login?next=/ui/groups")
    shoot("login")
    page.get_by_label("API token").fill("not-the-token-at-all")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not the admin token")
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{url}/ui/groups")
    expect(page.locator("main")).to_contain_text("No groups yet")
    shoot("groups-empty")

    # A group.
    page.get_by_role("link", name="New group").click()
    page.get_by_label("Id (optional)").fill("prod")
    page.get_by_label("Name").fill("production")
    page.get_by_label("Labels").fill("env=prod")
    shoot("group-new")
    page.get_by_role("button", name="Create group").click()
    expect(page).to_have_url(f"{url}/ui/groups/prod?notice=created")
    expect(page.get_by_role("status")).to_have_text("Created.")
    shoot("group-detail")

    # A target in it, scraped through its node_exporter.
    page.goto(f"{url}/ui/targets/new")
    page.get_by_label("Hostname").fill("gpu-node-01")
    page.get_by_label("IP address").fill("127.0.0.1")
    page.get_by_label("Groups").fill("prod")
    page.get_by_label("node_exporter port").fill(str(live.node_exporter_port))
    page.get_by_label("Labels").fill("rack=r7")
    shoot("target-new")
    page.get_by_role("button", name="Create target").click()
    expect(page.locator("h1")).to_contain_text("gpu-node-01")
    wait_for(
        lambda: live.query('node_exporter_build_info{group_id="prod",instance="gpu-node-01"}'),
        timeout=60,
        what="Prometheus scraping gpu-node-01 through AAMI's service discovery",
    )

    # An alert template, with the live preview following the typing.
    page.goto(f"{url}/ui/alert-templates/new")
    page.get_by_label("Name", exact=True).fill("ExporterBuild")
    page.get_by_label("Default config", exact=True).fill("threshold=0")
    page.get_by_label("Parameters (JSON)").fill(
        '{"threshold": {"type": "number", "min": 0, "max": 100, "unit": "%"}}'
    )
    page.get_by_label("For", exact=True).fill("0s")
    page.get_by_label("Annotations").fill("summary=node_exporter answers on {{ $labels.instance }}")
    editor = page.get_by_label("Query template (PromQL)")
    editor.fill(QUERY_START)
    status = page.locator("#preview-status")
    expect(status).to_contain_text("Invalid")
    expect(status).to_contain_text("not valid PromQL")
    editor.press("End")
    editor.press_sequentially(QUERY_END, delay=15)
    expect(status).to_have_text("Valid (group production)")
    expect(page.locator("#preview-rule")).to_contain_text(
        'expr: node_exporter_build_info{group_id="prod"} > 0'
    )
    expect(page.locator("#preview-rule")).to_contain_text("alert: ExporterBuild_Production")
    expect(page.locator("#preview-matches")).to_have_text("1 series would be pending or firing now")
    expect(page.locator("#preview-series")).to_contain_text("gpu-node-01")
    page.get_by_label("Render for").select_option(label="global (every node)")
    expect(status).to_contain_text("global rule")
    page.get_by_label("Render for").select_option(label="group production")
    expect(status).to_have_text("Valid (group production)")
    shoot("template-editor")
    page.get_by_role("button", name="Create template").click()
    expect(page.get_by_role("status").first).to_have_text("Created.")

    # A rule: the threshold is a typed number input with the template's unit and bounds; a
    # value out of them is refused with the key, the value and the type, and changes nothing.
    page.goto(f"{url}/ui/rules/new")
    page.get_by_label("Template").select_option(label="ExporterBuild")
    page.get_by_label("Group").select_option(label="production")
    page.get_by_role("button", name="Continue").click()
    threshold = page.get_by_label("threshold (%)")
    expect(threshold).to_have_attribute("type", "number")
    expect(threshold).to_have_attribute("min", "0")
    expect(threshold).to_have_attribute("max", "100")
    threshold.fill("150")
    page.get_by_role("button", name="Create rule").click()
    expect(page.locator("#e-config-threshold")).to_have_text(
        "config.threshold: 150 is above the maximum 100 "
        "(ExporterBuild.threshold: number, %, 0\u2013100)"
    )
    expect(page.get_by_label("threshold (%)")).to_have_value("150")
    expect(page.get_by_label("threshold (%)")).to_have_attribute("aria-invalid", "true")
    shoot("rule-invalid-threshold")
    assert live.api("GET", "/api/v1/alert-rules").json()["pagination"]["total"] == 0
    page.get_by_label("threshold").fill("0")
    page.get_by_role("button", name="Create rule").click()
    expect(page.locator("h1")).to_have_text("ExporterBuild_Production")
    shoot("rule-detail")
    page.goto(f"{url}/ui/rules")
    expect(page.locator("main table")).to_contain_text("ExporterBuild_Production")
    shoot("rules")

    # The rule file appears on the publishing page (the publisher runs in the background).
    def rule_file_listed() -> bool:
        page.goto(f"{url}/ui/publishing")
        return bool(page.get_by_role("link", name="group-prod.yml").count() == 1)

    wait_for(rule_file_listed, timeout=30, what="group-prod.yml on the publishing page")
    page.get_by_role("button", name="Regenerate all rule files").click()
    expect(page.locator("#h-result")).to_contain_text("ok")
    shoot("publishing")
    page.get_by_role("link", name="group-prod.yml").click()
    expect(page.locator("pre.file")).to_contain_text("ExporterBuild_Production")
    shoot("rule-file")

    # The alert reaches Alertmanager; silence its target from the alert's row.
    def alert_listed() -> bool:
        page.goto(f"{url}/ui/alerts")
        return bool(page.get_by_role("cell", name="ExporterBuild_Production").count() > 0)

    wait_for(alert_listed, timeout=90, what="the alert on the alerts page")
    shoot("alerts")
    page.get_by_text("Silence…").first.click()
    page.get_by_label("Comment").first.fill("swapping the PSU")
    page.get_by_role("button", name="Silence", exact=True).first.click()
    expect(page).to_have_url(f"{url}/ui/silences?notice=silenced")
    expect(page.locator("main table")).to_contain_text('instance="gpu-node-01"')
    # A guardrail of the service: the message is shown, no silence is made.
    page.get_by_label("Hostname or group").fill("gpu-node-01")
    page.get_by_label("Hours").fill("48")
    page.get_by_label("Comment").fill("too long")
    page.get_by_role("button", name="Create silence").click()
    expect(page.get_by_role("alert")).to_contain_text("at most")
    shoot("silences")
    assert len(httpx.get(f"{live.alertmanager_url}/api/v2/silences", timeout=5).json()) == 1
    page.get_by_role("button", name="Expire silence").first.click()
    expect(page.get_by_role("status").first).to_have_text("Silence expired.")

    _live_views(page, live, shoot, expect)

    # The other pages, for the record (and the width and label checks).
    for path, name in (
        ("/ui/audit", "audit"),
        ("/ui/targets", "targets"),
        ("/ui/targets/gpu-node-01", "target-detail"),
        ("/ui/groups", "groups"),
        ("/ui/alert-templates", "templates"),
        ("/ui/scripts/new", "script-new"),
        ("/ui/scripts", "scripts"),
        ("/ui/policies/new", "policy-new"),
        ("/ui/policies", "policies"),
    ):
        page.goto(url + path)
        expect(page.locator("h1")).to_be_visible()
        shoot(name)


def _live_views(page: Any, live: Live, shoot: Shots, expect: Any) -> None:
    """The dashboard and the target's scrape health, from the real programs."""
    url = live.url
    # Dashboard: counts, scrape health and firing alerts from the real programs.
    page.goto(f"{url}/ui/")
    expect(page.locator("main")).to_contain_text("Prometheus reachable")
    expect(page.locator("main")).to_contain_text("Alertmanager reachable")
    expect(page.locator(".tile").first).to_contain_text("1")
    shoot("dashboard")

    # Scrape health on the target's page: Prometheus's own view of its exporter.
    page.goto(f"{url}/ui/targets/gpu-node-01")
    scrapes = page.locator('table[aria-labelledby="h-scrapes"]')
    expect(scrapes).to_contain_text(f"node_exporter:{live.node_exporter_port}")
    expect(scrapes.locator(".status.ok")).to_have_text("up")


def _notifications_walk(page: Any, live: Live, shoot: Shots, expect: Any) -> None:
    """A node scraped through AAMI (its scrape health on its page); a channel with a
    secret, a route to it, and the route tester naming it; the audit and token pages."""
    url = live.url
    live.scraped_node()
    page.goto(f"{url}/ui/login")
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("h1")).to_have_text("Dashboard")
    wait_for(
        lambda: live.query('up{instance="gpu-node-01"} == 1'),
        timeout=60,
        what="Prometheus scraping gpu-node-01 through AAMI's service discovery",
    )
    page.goto(f"{url}/ui/targets/gpu-node-01")
    scrapes = page.locator('table[aria-labelledby="h-scrapes"]')
    expect(scrapes).to_contain_text(f"node_exporter:{live.node_exporter_port}")
    expect(scrapes.locator(".status.ok")).to_have_text("up")
    shoot("target-scrape-health")

    page.goto(f"{url}/ui/notifications")
    page.get_by_role("link", name="New channel").click()
    page.get_by_label("Name", exact=True).fill("gpu-team")
    page.get_by_label("Type").select_option("webhook")
    page.get_by_label("Settings").fill("url=http://127.0.0.1:9/hook")
    page.get_by_label("Secret", exact=True).fill("browser-secret-0123")
    shoot("channel-new")
    page.get_by_role("button", name="Create channel").click()
    expect(page.get_by_role("status").first).to_have_text("Created.")
    expect(page.locator("#secret-state")).to_have_text("Secret: set")
    assert "browser-secret-0123" not in page.content()

    page.goto(f"{url}/ui/notifications/routes/new")
    page.get_by_label("Name", exact=True).fill("production-gpu")
    page.get_by_label("Matchers").fill('group="production"')
    page.get_by_label("Receiver").select_option("gpu-team")
    page.get_by_label("Position").fill("10")
    page.get_by_role("button", name="Create route").click()
    expect(page.get_by_role("status").first).to_have_text("Created.")

    page.goto(f"{url}/ui/notifications")
    labels = page.get_by_label("Alert labels")
    labels.fill("alertname=GPUHot\ngroup=production\nseverity=critical")
    page.get_by_role("button", name="Test route").click()
    expect(page.locator("#route-receivers")).to_have_text("gpu-team")
    result = page.locator("#route-result")
    expect(result).to_contain_text('default-route → {group="production"}')
    expect(result.get_by_role("link", name="production-gpu")).to_be_visible()
    expect(page.get_by_label("Alert labels")).to_have_value(
        "alertname=GPUHot\ngroup=production\nseverity=critical"
    )
    shoot("route-tester")

    page.get_by_label("Alert labels").fill("group=staging")
    page.get_by_role("button", name="Test route").click()
    expect(page.locator("#route-receivers")).to_have_text("default")
    expect(result).to_contain_text("default route")

    page.get_by_label("Alert labels").fill("bad label=x")
    page.get_by_role("button", name="Test route").click()
    expect(page.locator("#e-labels")).to_contain_text("not a valid label name")
    expect(page.get_by_label("Alert labels")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#route-receivers")).to_have_count(0)
    shoot("route-tester-error")

    for path, name in (("/ui/audit", "audit"), ("/ui/bootstrap-tokens", "bootstrap-tokens")):
        page.goto(url + path)
        expect(page.locator("h1")).to_be_visible()
        shoot(name)
    expect(page.locator("main")).to_contain_text("No bootstrap token")
    page.goto(f"{url}/ui/audit?entity_type=notification_channel")
    expect(page.locator("#audit")).to_contain_text("gpu-team")
