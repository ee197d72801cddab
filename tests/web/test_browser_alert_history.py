"""The alerts page (grouping, the silenced and inhibited filters, labels and receivers,
auto-refresh) and the alert history after a fire / resolve / fire cycle, in Chromium
against the real programs of the ``live`` stack (tests/web/browser.py), whose Alertmanager
posts every alert to AAMI's history webhook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.wait import wait_for
from tests.web.browser import TOKEN, Live, Shots, in_chromium

pytestmark = pytest.mark.e2e

BUILD = 'node_exporter_build_info{group_id="{{.group_id}}"} > {{.threshold}}'
STATUSES = "rows => rows.map(row => row.getAttribute('data-status'))"


def _flap(live: Live, value: int) -> None:
    """The textfile metric the Flappy rule fires on (written whole, then renamed)."""
    textfile = live.tmp / "textfile"
    tmp = textfile / ".flap.tmp"
    tmp.write_text(f"aami_browser_flap {value}\n")
    tmp.rename(textfile / "flap.prom")


def _setup(live: Live) -> None:
    """Three alerts on gpu-node-01: Flappy (active, flips), Source (silenced, and it
    inhibits) and Muted (inhibited by Source)."""
    _flap(live, 1)
    live.scraped_node()
    for name, severity, query, labels in (
        ("Flappy", "critical", 'aami_browser_flap{group_id="{{.group_id}}"} > {{.threshold}}', {}),
        ("Source", "info", BUILD, {"browser_inhibitor": "yes"}),
        ("Muted", "warning", BUILD, {"browser_inhibited": "yes"}),
    ):
        template = {
            "name": name,
            "query_template": query,
            "default_config": {"threshold": 0},
            "severity": severity,
            "for_duration": "0s",
            "labels": labels,
        }
        response = live.api("POST", "/api/v1/alert-templates", json=template)
        assert response.status_code == 201, response.text
        rule = live.api(
            "POST", "/api/v1/alert-rules", json={"template_id": name, "group_id": "prod"}
        )
        assert rule.status_code == 201, rule.text
    now = datetime.now(UTC)
    silence = httpx.post(
        f"{live.alertmanager_url}/api/v2/silences",
        json={
            "matchers": [
                {
                    "name": "alertname",
                    "value": "Source_Production",
                    "isRegex": False,
                    "isEqual": True,
                }
            ],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(hours=1)).isoformat(),
            "createdBy": "browser test",
            "comment": "the silenced one",
        },
        timeout=10,
    )
    assert silence.status_code == 200, silence.text


def _history(live: Live) -> list[str]:
    response = live.api("GET", "/api/v1/alert-history", params={"alertname": "Flappy_Production"})
    return [t["status"] for t in reversed(response.json()["data"])]


def test_alerts_and_their_history_in_a_browser(live: Live, request: pytest.FixtureRequest) -> None:
    _setup(live)
    in_chromium(live, request, _walk)


def _walk(page: Any, live: Live, shoot: Shots, expect: Any) -> None:
    url = live.url
    page.goto(f"{url}/ui/login?next=/ui/alerts")
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{url}/ui/alerts")

    def all_three() -> bool:
        page.goto(f"{url}/ui/alerts")
        text = page.locator("#alert-list").inner_text()
        return all(f"{n}_Production" in text for n in ("Flappy", "Source", "Muted"))

    wait_for(all_three, timeout=120, what="the three alerts on the alerts page")

    # Grouped by alert name: one section each, every label and receiver shown.
    page.get_by_label("Group by").select_option(label="alert name")
    page.get_by_role("button", name="Show", exact=True).click()
    expect(page).to_have_url(
        f"{url}/ui/alerts?filtered=1&group=&severity=&target=&by=alertname&show=active&show=silenced&show=inhibited"
    )
    sections = page.locator("section.alert-section h2")
    expect(sections).to_have_count(3)
    expect(sections.nth(0)).to_contain_text("Flappy_Production")
    flappy = page.locator('section[data-group="Flappy_Production"]')
    expect(flappy.locator("td.labels")).to_contain_text("aami_template=Flappy")
    expect(flappy.locator("td.labels")).to_contain_text("instance=gpu-node-01")
    expect(flappy.locator("td.receivers")).to_contain_text("aami-history")
    expect(flappy.locator("td.receivers")).to_contain_text("null")
    expect(page.locator('section[data-group="Source_Production"] td.state')).to_contain_text(
        "silenced"
    )
    expect(page.locator('section[data-group="Muted_Production"] td.state')).to_contain_text(
        "inhibited"
    )
    shoot("alerts-by-name")

    # Only the silenced ones, then only the inhibited ones (Alertmanager's own filters).
    page.get_by_label("active").uncheck()
    page.get_by_label("inhibited").uncheck()
    page.get_by_role("button", name="Show", exact=True).click()
    expect(page.locator("#alert-list")).to_contain_text("Source_Production")
    expect(page.locator("#alert-list")).not_to_contain_text("Flappy_Production")
    expect(page.locator("#alert-list")).not_to_contain_text("Muted_Production")
    expect(page.get_by_label("Group by")).to_have_value("alertname")  # kept
    shoot("alerts-silenced")
    page.get_by_label("silenced").uncheck()
    page.get_by_label("inhibited").check()
    page.get_by_role("button", name="Show", exact=True).click()
    expect(page.locator("#alert-list")).to_contain_text("Muted_Production")
    expect(page.locator("#alert-list")).not_to_contain_text("Source_Production")
    shoot("alerts-inhibited")

    # Grouped by severity, active only, refreshed every 5 s: the list follows the alert
    # resolving and firing again without a reload, and keeps its filters.
    page.goto(f"{url}/ui/alerts?filtered=1&show=active&by=severity&refresh=5")
    toggle = page.get_by_label("Auto-refresh every 5 s")
    expect(toggle).to_be_visible()
    expect(toggle).to_be_checked()
    listing = page.locator("#alert-list")
    expect(listing).to_contain_text("Flappy_Production")
    expect(listing).not_to_contain_text("Muted_Production")
    _flap(live, 0)
    expect(listing).to_contain_text("No alert matches.", timeout=90_000)
    wait_for(lambda: _history(live)[:2] == ["firing", "resolved"], timeout=90, what="resolved")
    _flap(live, 1)
    expect(listing.locator('section[data-group="0critical"]')).to_contain_text(
        "Flappy_Production", timeout=90_000
    )
    expect(listing).not_to_contain_text("Muted_Production")
    expect(page).to_have_url(f"{url}/ui/alerts?filtered=1&show=active&by=severity&refresh=5")
    expect(page.locator("#auto-refresh-status")).to_contain_text("updated")
    toggle.uncheck()
    expect(page.locator("#auto-refresh-status")).to_have_text("paused")
    shoot("alerts-refreshed")

    # The history: both transitions and the flap, from the alert's own link. (A scrape
    # missed on a loaded machine is a real flap too: the counts follow what was recorded.)
    wait_for(
        lambda: _history(live)[:3] == ["firing", "resolved", "firing"],
        timeout=90,
        what="the alert firing again in the history",
    )
    page.get_by_role("link", name="history", exact=True).first.click()
    expect(page.get_by_label("Alert name")).to_have_value("Flappy_Production")
    expect(page.locator("h1")).to_have_text("Alert history")
    timeline = page.locator("#timeline tr.transition")
    statuses = list(reversed(timeline.evaluate_all(STATUSES)))
    assert statuses[:3] == ["firing", "resolved", "firing"], statuses
    flaps = page.locator("#flaps tbody tr").first
    expect(flaps).to_contain_text("Flappy_Production")
    expect(flaps.locator("td.flaps")).to_have_text(str(statuses.count("firing") - 1))
    shoot("alert-history")

    # Per target: the target's link in the summary shows every alert name of it.
    page.get_by_role("link", name="gpu-node-01").first.click()
    expect(page).to_have_url(f"{url}/ui/alert-history?target=gpu-node-01")
    expect(page.get_by_label("Target")).to_have_value("gpu-node-01")
    expect(page.get_by_label("Alert name")).to_have_value("")
    expect(page.locator("#timeline")).to_contain_text("Flappy_Production")
    recorded = page.locator("#timeline tr.transition").evaluate_all(STATUSES)
    assert len(recorded) >= len(statuses), recorded
    shoot("alert-history-target")
