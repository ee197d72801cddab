"""The silence matcher editor in a real browser against the real Alertmanager: two alerts
fire for real (a rule on a node_exporter textfile metric, one series per GPU); the preview
lists exactly the one the matchers select, and the silence made holds those matchers and
ends by itself once its alert resolves."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.wait import wait_for
from tests.web.browser import TOKEN, Live, Shots, in_chromium

pytestmark = pytest.mark.e2e

METRIC = "aami_test_gpu_temp_celsius"


def test_the_silence_editor_in_a_browser(live: Live, request: pytest.FixtureRequest) -> None:
    in_chromium(live, request, _walk)


def _write_textfile(live: Live, temps: dict[str, int]) -> None:
    """node_exporter's textfile metrics, replaced at once (it reads only ``*.prom``)."""
    lines = [f"# TYPE {METRIC} gauge"]
    lines += [f'{METRIC}{{gpu="{gpu}"}} {temp}' for gpu, temp in temps.items()]
    directory = live.tmp / "textfile"
    staging = directory / "gpu.prom.tmp"
    staging.write_text("\n".join(lines) + "\n")
    staging.replace(directory / "gpu.prom")


def _am_alerts(live: Live) -> list[dict[str, Any]]:
    response = httpx.get(f"{live.alertmanager_url}/api/v2/alerts", timeout=5)
    response.raise_for_status()
    return [a for a in response.json() if "gpu" in a["labels"]]


def _gpu_states(live: Live) -> dict[str, str]:
    return {a["labels"]["gpu"]: a["status"]["state"] for a in _am_alerts(live)}


def _silence_state(live: Live, silence_id: str) -> str:
    response = httpx.get(f"{live.alertmanager_url}/api/v2/silence/{silence_id}", timeout=5)
    response.raise_for_status()
    return str(response.json()["status"]["state"])


def _two_alerts_firing(live: Live) -> str:
    """Make the alerts of GPU 0 and GPU 1 fire through AAMI's rule; their alertname."""
    live.scraped_node()
    _write_textfile(live, {"0": 95, "1": 97})
    template = {
        "name": "GPUTooHot",
        "query_template": METRIC + '{group_id="{{.group_id}}"} > {{.threshold}}',
        "default_config": {"threshold": 90},
        "severity": "critical",
        "for_duration": "0s",
    }
    created = live.api("POST", "/api/v1/alert-templates", json=template)
    assert created.status_code == 201, created.text
    rule = {"template_id": created.json()["id"], "group_id": "prod"}
    created = live.api("POST", "/api/v1/alert-rules", json=rule)
    assert created.status_code == 201, created.text
    states = wait_for(
        lambda: _gpu_states(live) if len(_gpu_states(live)) == 2 else None,
        timeout=120,
        what="the alerts of GPU 0 and GPU 1 in Alertmanager",
    )
    assert states == {"0": "active", "1": "active"}
    names = {str(a["labels"]["alertname"]) for a in _am_alerts(live)}
    assert len(names) == 1
    return names.pop()


def _walk(page: Any, live: Live, shoot: Shots, expect: Any) -> None:
    url = live.url
    alertname = _two_alerts_firing(live)
    page.goto(f"{url}/ui/login?next=/ui/silences")
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{url}/ui/silences")
    page.get_by_role("link", name="New silence").click()
    expect(page.locator("h1")).to_have_text("New silence")

    # Two matchers; the regex first with a mistake the real Alertmanager names.
    page.get_by_label("Label of matcher 1").fill("gpu")
    page.get_by_label("Value of matcher 1").fill("0")
    page.get_by_label("Label of matcher 2").fill("alertname")
    page.get_by_label("Operator of matcher 2").select_option("=~")
    page.get_by_label("Value of matcher 2").fill("GPUTooHot(")
    page.get_by_label("Duration").fill("1h")
    page.get_by_role("button", name="Preview", exact=True).click()
    regex_error = page.locator("#e-m1_value")
    expect(regex_error).to_contain_text("is not a regular expression Alertmanager accepts")
    expect(regex_error).to_contain_text("error parsing regexp")
    expect(page.get_by_label("Value of matcher 2")).to_have_attribute("aria-invalid", "true")
    shoot("silence-editor-error")

    # The preview lists exactly the alert of GPU 0, by Alertmanager's own matching.
    page.get_by_label("Value of matcher 2").fill("GPUToo.*")
    page.get_by_label("Value of matcher 2").press("Enter")  # Enter previews, creates nothing
    preview = page.locator("#preview-alerts tbody tr")
    expect(preview).to_have_count(1)
    expect(preview).to_contain_text('gpu="0"')
    expect(page.locator("#preview-alerts")).not_to_contain_text('gpu="1"')
    expect(page.locator("#preview-count")).to_have_text(
        "Would mute 1 of the 2 alerts Alertmanager holds now."
    )
    expect(page.locator("#preview-verdict")).to_contain_text("Within the guardrails")
    assert httpx.get(f"{live.alertmanager_url}/api/v2/silences", timeout=5).json() == []
    shoot("silence-editor-preview")

    # Created with expire-on-resolve: Alertmanager holds the matchers, mutes GPU 0 only.
    page.get_by_label("Comment").fill("reseating GPU 0")
    page.get_by_label("Expire when the alerts resolve").check()
    page.get_by_role("button", name="Create silence").click()
    expect(page).to_have_url(f"{url}/ui/silences?notice=silenced")
    row = page.locator("main table tbody tr").first
    expect(row).to_contain_text('gpu="0"')
    expect(row).to_contain_text('alertname=~"GPUToo.*"')
    expect(row).to_contain_text("ends when its alerts resolve")
    expect(row).to_contain_text("reseating GPU 0")
    shoot("silences-expire-on-resolve")
    [silence] = httpx.get(f"{live.alertmanager_url}/api/v2/silences", timeout=5).json()
    assert silence["matchers"] == [
        {"name": "gpu", "value": "0", "isRegex": False, "isEqual": True},
        {"name": "alertname", "value": "GPUToo.*", "isRegex": True, "isEqual": True},
    ]
    assert silence["comment"] == "reseating GPU 0"
    assert silence["status"]["state"] == "active"
    wait_for(
        lambda: _gpu_states(live) == {"0": "suppressed", "1": "active"},
        timeout=30,
        what="Alertmanager muting GPU 0's alert and only it",
    )

    # A link such as the alerts page makes: the matchers come from the query string.
    link = "&".join(
        "matcher=" + quote(text, safe="") for text in (f'alertname="{alertname}"', "gpu=1")
    )
    page.goto(f"{url}/ui/silences/new?{link}")
    expect(page.get_by_label("Value of matcher 1")).to_have_value(alertname)
    expect(page.get_by_label("Value of matcher 2")).to_have_value("1")
    expect(page.locator("#preview-alerts tbody tr")).to_have_count(1)
    expect(page.locator("#preview-alerts")).to_contain_text('gpu="1"')
    shoot("silence-editor-link")

    # GPU 0 cools down: its alert resolves and the silence ends by itself.
    _write_textfile(live, {"0": 40, "1": 97})
    wait_for(
        lambda: _silence_state(live, silence["id"]) == "expired",
        timeout=120,
        what="the expire-on-resolve silence to expire once GPU 0's alert resolved",
    )
    page.goto(f"{url}/ui/silences")
    expect(page.locator("main table tbody tr").first).to_contain_text("expired")
