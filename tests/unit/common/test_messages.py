"""Validation errors read as sentences, in the API's detail and next to form fields."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

from aami.checks.schemas import ScriptTemplateCreate
from aami.common.messages import validation_message
from aami.groups.schemas import GroupCreate
from aami.targets.schemas import ExporterInline


class _Form(BaseModel):
    count: int = Field(ge=1, le=10)
    ratio: float
    mode: Literal["group", "target"]
    enabled: bool
    name: str = Field(min_length=1, max_length=5)


def _messages(model: type[BaseModel], data: dict[str, object]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return {
        ".".join(str(p) for p in error["loc"]): validation_message(error)
        for error in caught.value.errors()
    }


def test_types_bounds_and_choices_in_words() -> None:
    said = _messages(_Form, {"count": "many", "ratio": "half", "mode": "rack", "enabled": "maybe"})
    assert said == {
        "count": "must be a whole number",
        "ratio": "must be a number",
        "mode": "must be 'group' or 'target'",
        "enabled": "must be true or false",
        "name": "is required",
    }
    said = _messages(_Form, {"count": 11, "ratio": 1, "mode": "group", "enabled": 1, "name": ""})
    assert said == {"count": "must be at most 10", "name": "must not be empty"}


def test_our_patterns_say_what_to_type_not_the_regex() -> None:
    said = _messages(
        ScriptTemplateCreate, {"id": "Mount Check", "name": "Mount", "script_content": "x"}
    )
    assert said["id"] == (
        "use lowercase letters, digits, '.', '-' and '_', starting with a letter or a digit, "
        "63 characters at most"
    )
    assert said["name"] == (
        "use lowercase letters, digits, '-' and '_', starting with a letter or a digit"
    )
    said = _messages(GroupCreate, {"id": "g", "name": "two\nlines"})
    assert said["name"] == "must not contain control characters such as line breaks or tabs"
    said = _messages(ExporterInline, {"type": "node_exporter", "metrics_path": "metrics"})
    assert "starts with '/'" in said["metrics_path"]
    assert all("^" not in message for message in said.values())


def test_the_api_detail_says_it_too(client: object) -> None:
    from fastapi.testclient import TestClient

    from tests.conftest import AUTH

    assert isinstance(client, TestClient)
    response = client.post(
        "/api/v1/script-templates",
        headers=AUTH,
        json={"id": "Mount Check", "name": "mount", "script_content": "#!/bin/sh\n"},
    )
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "id: use lowercase letters, digits, '.', '-' and '_', starting with a letter or a "
        "digit, 63 characters at most"
    )
