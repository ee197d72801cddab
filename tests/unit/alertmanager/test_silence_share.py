"""The silence share guard, against Alertmanager's /api/v2/alerts answers (MockTransport)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from aami.alertmanager.client import AlertmanagerClient
from aami.alertmanager.schemas import SilenceCreate
from aami.alertmanager.silences import _check_share
from aami.config import Settings
from aami.errors import Invalid


def _alert(instance: str, *, suppressed: bool) -> dict[str, Any]:
    return {
        "labels": {"alertname": "GPUHot", "instance": instance, "rack": instance[:2]},
        "status": {"state": "suppressed" if suppressed else "active"},
    }


def _client(alerts: list[dict[str, Any]]) -> AlertmanagerClient:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.params["silenced"] == "true"  # every firing alert is counted
        assert request.url.params["inhibited"] == "true"
        wanted = [re.fullmatch(r'(\w+)="(.*)"', f) for f in request.url.params.get_list("filter")]
        found = [a for a in alerts if all(m and a["labels"].get(m[1]) == m[2] for m in wanted)]
        return httpx.Response(200, json=found)

    return AlertmanagerClient("http://am.test", transport=httpx.MockTransport(handle))


def _silence(**labels: str) -> SilenceCreate:
    return SilenceCreate.model_validate(
        {
            "matchers": [{"name": k, "value": v} for k, v in labels.items()],
            "duration": "1h",
            "created_by": "ops",
            "comment": "test",
        }
    )


SETTINGS = Settings(silence_max_share=0.5, silence_max_share_min_alerts=2)


def test_alerts_already_silenced_count_towards_a_silences_reach() -> None:
    # Rack r1's six nodes are silenced already; four others fire loud. A silence of rack r1
    # newly mutes none of the loud ones, but it covers 6 of the 10 firing alerts.
    alerts = [_alert(f"r1n{n}", suppressed=True) for n in range(6)]
    alerts += [_alert(f"r2n{n}", suppressed=False) for n in range(4)]
    with pytest.raises(Invalid, match="would mute 6 of the 10 firing alerts, more than 50%"):
        _check_share(_client(alerts), SETTINGS, _silence(rack="r1"))


def test_muting_the_rest_in_steps_is_refused_too() -> None:
    # Rack r1 is silenced; a silence of rack r2 mutes 4 of 10 firing (under half) but all
    # 4 of those not yet silenced.
    alerts = [_alert(f"r1n{n}", suppressed=True) for n in range(6)]
    alerts += [_alert(f"r2n{n}", suppressed=False) for n in range(4)]
    with pytest.raises(Invalid, match="would mute 4 of the 4 alerts not yet silenced"):
        _check_share(_client(alerts), SETTINGS, _silence(rack="r2"))


def test_a_narrow_silence_passes_and_says_whether_it_matches() -> None:
    alerts = [_alert(f"r2n{n}", suppressed=False) for n in range(4)]
    assert _check_share(_client(alerts), SETTINGS, _silence(instance="r2n1")) is True
    assert _check_share(_client(alerts), SETTINGS, _silence(instance="r9n9")) is False
