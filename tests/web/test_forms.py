"""Reading what a person typed (pure code)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from aami.errors import BadRequest
from aami.groups.schemas import GroupCreate
from aami.web.forms import (
    FieldError,
    attach_error,
    format_config,
    format_kv,
    parse_config,
    parse_form,
    parse_json_object,
    parse_kv,
    parse_scalar,
    validation_errors,
)

URLENCODED = "application/x-www-form-urlencoded"


def test_parse_form_keeps_blank_values_and_turns_crlf_into_lf() -> None:
    form = parse_form(b"a=1&b=&c=x%0D%0Ay&a=2", URLENCODED + "; charset=utf-8")
    assert form.get("a") == "1"
    assert form.getlist("a") == ["1", "2"]
    assert form.has("b")
    assert form.get("b") == ""
    assert form.optional("b") is None
    assert form.get("c") == "x\ny"
    assert not form.has("d")


def test_parse_form_refuses_other_encodings_and_huge_bodies() -> None:
    with pytest.raises(BadRequest):
        parse_form(b"--boundary", "multipart/form-data; boundary=boundary")
    with pytest.raises(BadRequest):
        parse_form(b"a=" + b"x" * (2 * 1024 * 1024), URLENCODED)
    with pytest.raises(BadRequest):
        parse_form(b"a=\xff", URLENCODED)
    assert parse_form(b"", "").names() == []


def test_key_value_lines() -> None:
    assert parse_kv("env=prod\n\n rack = r7 \nurl=a=b", "labels") == {
        "env": "prod",
        "rack": "r7",
        "url": "a=b",
    }
    assert format_kv({"env": "prod", "rack": "r7"}) == "env=prod\nrack=r7"
    with pytest.raises(FieldError, match="line 2") as caught:
        parse_kv("a=1\nnonsense", "labels")
    assert caught.value.field == "labels"
    with pytest.raises(FieldError, match="twice"):
        parse_kv("a=1\na=2", "labels")


def test_json_object() -> None:
    assert parse_json_object("", "config") == {}
    assert parse_json_object('{"threshold": 80}', "config") == {"threshold": 80}
    with pytest.raises(FieldError, match="JSON object"):
        parse_json_object("[1]", "config")
    with pytest.raises(FieldError, match="not valid JSON"):
        parse_json_object("{nope", "config")


def test_scalar_follows_the_type_it_overrides() -> None:
    assert parse_scalar("90", 80) == 90
    assert isinstance(parse_scalar("90", 80), int)
    assert parse_scalar("0.5", 80) == 0.5
    assert parse_scalar("1e3", 1.0) == 1000.0
    assert parse_scalar("true", False) is True
    assert parse_scalar("maybe", False) == "maybe"
    assert parse_scalar('80"} or vector(1)', 80) == '80"} or vector(1)'
    assert parse_scalar("5m", "1m") == "5m"
    assert parse_scalar("90", None) == "90"


def test_errors_go_next_to_their_field() -> None:
    fields = ("name", "group_ids", "config.threshold", "for_duration", "config")
    assert attach_error({}, "config key 'threshold': bad", fields) == {
        "config.threshold": "config key 'threshold': bad"
    }
    assert attach_error({}, "missing config key 'threshold': set it", fields) == {
        "config.threshold": "missing config key 'threshold': set it"
    }
    assert attach_error({}, "config key 'other': bad", fields) == {
        "config": "config key 'other': bad"
    }
    assert attach_error({}, "group_ids: unknown group(s) 'x'", fields) == {
        "group_ids": "group_ids: unknown group(s) 'x'"
    }
    assert "for_duration" in attach_error({}, "for_duration '5x' is not a duration", fields)
    assert attach_error({}, "something else broke", fields) == {"": "something else broke"}


def test_validation_errors_by_field() -> None:
    with pytest.raises(ValidationError) as caught:
        GroupCreate.model_validate({"id": "Bad Id", "name": "", "labels": {"bad-key": "v"}})
    errors = validation_errors(caught.value, ("id", "name", "labels"))
    assert set(errors) == {"id", "name", "labels"}
    assert "bad-key" in errors["labels"]
    assert not errors["labels"].startswith("Value error")
    assert set(validation_errors(caught.value, ("name",))) == {"name", ""}


def test_config_lines_read_as_values() -> None:
    text = 'threshold=80\nratio=0.5\nenabled=true\npaths=/data,/mnt/models\ncode="80"\n\n# note\n'
    assert parse_config(text, "config") == {
        "threshold": 80,
        "ratio": 0.5,
        "enabled": True,
        "paths": "/data,/mnt/models",
        "code": "80",
    }
    assert parse_config('{"threshold": 80}', "config") == {"threshold": 80}
    assert parse_config("", "config") == {}


def test_config_lines_name_every_bad_line_at_once() -> None:
    with pytest.raises(FieldError) as caught:
        parse_config("threshold\nx=1\nx=2\n=3", "config")
    assert caught.value.field == "config"
    assert caught.value.message == (
        "line 1: 'threshold' is not key=value; line 3: 'x' is given twice; "
        "line 4: '=3' is not key=value"
    )


_KEYS = st.text(min_size=1, max_size=12).filter(lambda k: k == k.strip())
_VALUES = st.one_of(
    st.text(max_size=20),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
)


@given(st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_config_lines_read_back_what_was_written(config: dict[str, object]) -> None:
    assert parse_config(format_config(config), "config") == config
