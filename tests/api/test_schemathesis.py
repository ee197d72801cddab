"""Schemathesis against the app in process: no server error, and every response matches
the documented schema (error bodies included); a fixed seed and a bounded number of
examples per operation, so a run is the same run every time. It takes 30 s alone on
2 cores and about 60 s beside the other suites, so it keeps the suite's 300 s limit: a
tighter one fired inside Hypothesis, which reported it as the operation being "flaky".

Prometheus and Alertmanager are closed ports here, so routes that need them answer 503
``unavailable``: documented, and the only 5xx accepted."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import response_schema_conformance

from aami.app import create_app
from aami.config import Settings
from tests.conftest import AUTH, TOKEN

SEED = 20261129
EXAMPLES = 6  # per operation and mode
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


@pytest.fixture
def api_schema(sqlite_template: Path, tmp_path: Path) -> Iterator[Any]:
    database = tmp_path / "aami.db"
    shutil.copyfile(sqlite_template, database)
    settings = Settings(
        database_url=f"sqlite:///{database}",
        admin_token=TOKEN,
        PROMETHEUS_RULE_PATH=tmp_path / "rules",
        PROMETHEUS_URL="http://127.0.0.1:1",
        PROMETHEUS_RELOAD_ENABLED=False,
        ALERTMANAGER_URL="http://127.0.0.1:1",
        publish_check_interval=3600,
    )
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}},
        }
    )
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", create_app(settings), config=config)
    finally:
        shutdown_lifespans()  # the app's publisher and database, started by the first call


_NOT_CONSTRAINTS = frozenset({"type", "title", "description"})


def _negatable(operation: Any) -> bool:
    """Whether a request can break the schema: a body, or a parameter constrained beyond
    "some string" (on the wire every parameter is a string, so those cannot)."""
    raw = operation.definition.raw
    if "requestBody" in raw:
        return True
    for parameter in raw.get("parameters", []):
        schema = parameter.get("schema", {})
        variants = [v for v in schema.get("anyOf", [schema]) if v.get("type") != "null"]
        if any(v.get("type") != "string" or set(v) - _NOT_CONSTRAINTS for v in variants):
            return True
    return False


def _query(operation: Any, mode: GenerationMode) -> dict[str, Any] | None:
    """``wait`` is how long a publish request waits for its pass: a valid one is 0 here
    (Prometheus is a closed port, the pass would use all of it)."""
    names = {p["name"] for p in operation.definition.raw.get("parameters", [])}
    return {"wait": 0} if mode is GenerationMode.POSITIVE and "wait" in names else None


def _check(case: Any) -> None:
    response = case.call()
    if response.status_code == 503:
        assert response.json()["error"] == "unavailable", response.text
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])


def test_no_server_error_and_responses_match_the_schema(api_schema: Any) -> None:
    failures: list[str] = []
    calls = 0
    started = time.monotonic()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    for operation in operations:
        for mode in MODES if _negatable(operation) else MODES[:1]:

            @seed(SEED)
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(mode, headers=AUTH, query=_query(operation, mode)))
            def run(case: Any) -> None:
                nonlocal calls
                calls += 1
                _check(case)

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing in the request can be invalid
            except (Exception, BaseExceptionGroup) as exc:  # report, and go on to the next
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:1500]}")
    elapsed = time.monotonic() - started
    sys.stderr.write(
        f"schemathesis: {len(operations)} operations, {calls} calls, {elapsed:.1f} s\n"
    )
    assert len(operations) > 50
    assert failures == [], f"{len(failures)} failures:\n\n" + "\n\n".join(failures)
