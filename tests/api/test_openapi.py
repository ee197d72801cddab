"""The OpenAPI schema describes every successful answer: no 2xx response of any operation
is a bare object (``dict[str, Any]``), an untyped ``{}`` or a list of those."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from aami.api.state import services
from aami.app import create_app
from aami.config import Settings


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The schema, from an app built as scripts/gen-api-docs builds it (no database)."""
    tmp = tmp_path_factory.mktemp("openapi")
    settings = Settings(
        admin_token="openapi-test-token-0123456789",
        database_url=f"sqlite:///{tmp}/unused.db",
        PROMETHEUS_RULE_PATH=tmp / "rules",
    )
    app = create_app(settings, migrate=False)
    try:
        yield app.openapi()
    finally:
        services(app).engine.dispose()


def _weak(schema: dict[str, Any] | None) -> bool:
    """An untyped schema: empty, an object with no properties that takes any keys, a list
    of such, or a union with such a member."""
    if not schema:
        return True
    if "$ref" in schema:
        return False
    kind = schema.get("type")
    if (
        kind == "object"
        and not schema.get("properties")
        and schema.get("additionalProperties") in (None, True, {})
    ):
        return True
    if kind == "array":
        return _weak(schema.get("items", {}))
    if "anyOf" in schema:
        return any(_weak(member) for member in schema["anyOf"])
    return False


def _weak_responses(spec: dict[str, Any]) -> list[str]:
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for code, response in operation.get("responses", {}).items():
                if not code.startswith("2"):
                    continue
                content = response.get("content", {})
                if not content and code != "204":
                    found.append(f"{method.upper()} {path} {code}: no content described")
                for media, item in content.items():
                    if _weak(item.get("schema")):
                        found.append(f"{method.upper()} {path} {code} {media}: untyped schema")
    return found


def test_every_success_response_has_a_typed_schema(openapi: dict[str, Any]) -> None:
    weak = _weak_responses(openapi)
    assert not weak, "operations without a typed 2xx response model:\n" + "\n".join(weak)


def _answer(code: str, schema: dict[str, Any] | None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": "an answer"}
    if schema is not None:
        response["content"] = {"application/json": {"schema": schema}}
    return {"responses": {code: response}}


def test_the_check_finds_untyped_schemas() -> None:
    bare = {"type": "object", "additionalProperties": True}
    spec = {
        "paths": {
            "/typed": {"get": _answer("200", {"$ref": "#/components/schemas/Thing"})},
            "/bare": {"get": _answer("200", bare)},
            "/list": {"get": _answer("200", {"type": "array", "items": bare})},
            "/any": {"get": _answer("200", {})},
            "/union": {"get": _answer("200", {"anyOf": [{"type": "string"}, bare]})},
            "/none": {"get": _answer("200", None)},
            "/gone": {"delete": _answer("204", None)},
            "/error": {"get": _answer("404", bare)},
        }
    }
    assert [line.split(" ")[1] for line in _weak_responses(spec)] == [
        "/bare",
        "/list",
        "/any",
        "/union",
        "/none",
    ]
