"""See before you save, in a real browser: the rule form's preview with a near miss, a
backtest of a metric that went over the threshold and back, and a template save that
shows the affected rule before and after first."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.wait import wait_for
from tests.web.browser import TOKEN, Live, Shots, in_chromium

pytestmark = pytest.mark.e2e

METRIC = "aami_browser_gpu_temp"
TEMPLATE = {
    "name": "BrowserHotGpu",
    "query_template": (
        f'max by (instance, gpu) ({METRIC}{{group_id="{{{{.group_id}}}}"}}) > {{{{.threshold}}}}'
    ),
    "default_config": {"threshold": 80},
    "parameters": {"threshold": {"type": "number", "min": 0, "max": 120, "unit": "°C"}},
    "for_duration": "0s",
}


def write_temps(live: Live, gpu0: float) -> None:
    """The textfile node_exporter serves: GPU 0 at ``gpu0``, GPU 1 at 40 (written whole,
    then renamed)."""
    text = f'# TYPE {METRIC} gauge\n{METRIC}{{gpu="0"}} {gpu0}\n{METRIC}{{gpu="1"}} 40\n'
    tmp = live.tmp / "textfile" / ".gpu.prom.tmp"
    tmp.write_text(text)
    tmp.rename(live.tmp / "textfile" / "gpu.prom")


def gpu0_is(live: Live, value: int) -> bool:
    return bool(live.query(f'{METRIC}{{group_id="prod", gpu="0"}} == {value}'))


def setup(live: Live) -> str:
    """A group with node_exporter scraped through AAMI, the template and a rule of it."""
    write_temps(live, 70)
    live.scraped_node()
    assert live.api("POST", "/api/v1/alert-templates", json=TEMPLATE).status_code == 201
    rule = live.api(
        "POST",
        "/api/v1/alert-rules",
        json={"id": "hot-prod", "template_id": "BrowserHotGpu", "group_id": "prod"},
    )
    assert rule.status_code == 201, rule.text
    wait_for(lambda: gpu0_is(live, 70), timeout=60, what="Prometheus scraping the GPU metric")
    return "hot-prod"


def login(page: Any, live: Live, expect: Any) -> None:
    page.goto(f"{live.url}/ui/login")
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("h1")).to_have_text("Dashboard")


def _walk(page: Any, live: Live, shoot: Shots, expect: Any) -> None:
    rule_id = setup(live)
    login(page, live, expect)

    # (a) The preview: nothing fires at 80; GPU 0 at 70 is the nearest miss, 10 below.
    page.goto(f"{live.url}/ui/rules/{rule_id}")
    page.get_by_role("button", name="Preview").click()
    preview = page.get_by_test_id("rule-preview")
    expect(preview.get_by_test_id("preview-state")).to_contain_text(
        "all 2 series are below the threshold"
    )
    nearest = preview.get_by_test_id("preview-near-misses").locator("tbody tr").first
    expect(nearest).to_contain_text("gpu=0")
    expect(nearest.locator("[data-value]")).to_have_text("70")
    expect(nearest).to_contain_text("> 80")
    expect(nearest.locator("[data-distance]")).to_have_text("10")
    shoot("rule-preview")

    # (b) The backtest: GPU 0 goes to 90 for a few seconds and back. At the saved 80 that
    # fired once; at a proposed 95 it would not have.
    write_temps(live, 90)
    wait_for(
        lambda: live.query(
            f'sum_over_time(({METRIC}{{group_id="prod", gpu="0"}} == bool 90)[1m:1s]) >= 3'
        ),
        timeout=60,
        what="GPU 0 at 90 for three seconds",
    )
    write_temps(live, 70)
    # Back at 70 a second ago already: the backtest's last point (now, down to the step)
    # sees it too.
    wait_for(
        lambda: live.query(f'{METRIC}{{group_id="prod", gpu="0"}} offset 1s == 70'),
        timeout=60,
        what="GPU 0 back at 70",
    )
    page.get_by_label("threshold (°C)").fill("95")
    page.get_by_label("Backtest over the last (hours)").fill("1")
    page.get_by_label("Step (seconds)").fill("1")
    page.get_by_role("button", name="Backtest").click()
    totals = page.get_by_test_id("backtest-totals")
    expect(totals.locator('tr[data-row="episodes"] [data-run="current"]')).to_have_text("1")
    expect(totals.locator('tr[data-row="episodes"] [data-run="proposed"]')).to_have_text("0")
    expect(totals).to_contain_text("saved rule hot-prod")
    expect(totals).to_contain_text("> 95")
    shoot("rule-backtest")
    # Nothing was saved.
    saved = live.api("GET", f"/api/v1/alert-rules/{rule_id}").json()
    assert saved["config"] == {}

    # (c) Saving the template first shows the rule before and after, then saves on Confirm.
    page.goto(f"{live.url}/ui/alert-templates/BrowserHotGpu")
    query = page.get_by_label("Query template (PromQL)")
    query.fill(str(TEMPLATE["query_template"]).replace("max by", "avg by"))
    page.get_by_label("For", exact=True).fill("2m")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("h1")).to_have_text("Save template BrowserHotGpu?")
    affected = page.get_by_test_id("impact-rule")
    expect(affected).to_have_count(1)
    expect(affected.locator('[data-field="expr"] [data-side="before"]')).to_have_text(
        f'max by (instance, gpu) ({METRIC}{{group_id="prod"}}) > 80'
    )
    expect(affected.locator('[data-field="expr"] [data-side="after"]')).to_have_text(
        f'avg by (instance, gpu) ({METRIC}{{group_id="prod"}}) > 80'
    )
    expect(affected.locator('[data-field="for"]')).to_contain_text("0s")
    expect(affected.locator('[data-field="for"]')).to_contain_text("2m")
    shoot("template-confirm")
    # Still the old template until confirmed.
    assert live.api("GET", "/api/v1/alert-templates/BrowserHotGpu").json()["for_duration"] == "0s"
    page.get_by_role("button", name="Confirm and save").click()
    expect(page.get_by_role("status").first).to_have_text("Saved.")
    saved_template = live.api("GET", "/api/v1/alert-templates/BrowserHotGpu").json()
    assert saved_template["for_duration"] == "2m"
    assert saved_template["query_template"].startswith("avg by")


def test_see_before_you_save_in_a_browser(live: Live, request: pytest.FixtureRequest) -> None:
    in_chromium(live, request, _walk)
