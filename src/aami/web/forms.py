"""Reading HTML form posts and turning what a person typed into service input.

Forms are ``application/x-www-form-urlencoded`` and parsed here with the standard library,
so the UI needs no multipart package. Errors are a mapping of field name to message; the
key ``""`` is for a message shown at the top of the form.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from pydantic import ValidationError

from aami.common.messages import validation_message
from aami.errors import BadRequest

__all__ = [
    "MAX_FORM_BYTES",
    "Errors",
    "FieldError",
    "FormData",
    "attach_error",
    "format_config",
    "format_kv",
    "parse_bool",
    "parse_config",
    "parse_form",
    "parse_json_object",
    "parse_kv",
    "parse_scalar",
    "validation_errors",
]

# A script may be 256 KiB; URL encoding can triple it.
MAX_FORM_BYTES = 1024 * 1024
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_FIELD_PREFIX = re.compile(r"^([a-z_][a-z0-9_]*)(\[\d+\])?(\.[a-z_]+)?:\s")
# "config key 'threshold': ..." (rendering) or "config.threshold: ..." (parameters).
_CONFIG_KEY = re.compile(
    r"config key '([A-Za-z_][A-Za-z0-9_]*)'|(?:^|: )config\.([A-Za-z_][A-Za-z0-9_]*): "
)

Errors = dict[str, str]


class FieldError(ValueError):
    """A value a person typed that cannot be read; ``field`` says where to show it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class FormData:
    """The fields of one submitted form."""

    def __init__(self, fields: Mapping[str, list[str]] | None = None) -> None:
        self._fields: dict[str, list[str]] = {k: list(v) for k, v in (fields or {}).items()}

    def get(self, name: str, default: str = "") -> str:
        """The first value of a field, as typed."""
        values = self._fields.get(name)
        return values[0] if values else default

    def text(self, name: str, default: str = "") -> str:
        """The first value of a field, without surrounding whitespace."""
        return self.get(name, default).strip()

    def optional(self, name: str) -> str | None:
        """The trimmed value, or None when left empty."""
        return self.text(name) or None

    def getlist(self, name: str) -> list[str]:
        return list(self._fields.get(name, []))

    def has(self, name: str) -> bool:
        return name in self._fields

    def names(self) -> list[str]:
        return list(self._fields)

    def as_dict(self) -> dict[str, str]:
        """First values of every field, for re-filling a form."""
        return {name: values[0] for name, values in self._fields.items() if values}


def parse_form(body: bytes, content_type: str) -> FormData:
    """Parse an urlencoded body; raise BadRequest for anything else."""
    if len(body) > MAX_FORM_BYTES:
        raise BadRequest(f"the form is larger than {MAX_FORM_BYTES // 1024} KiB")
    media = content_type.split(";", 1)[0].strip().lower()
    if body and media != "application/x-www-form-urlencoded":
        raise BadRequest("forms must be sent as application/x-www-form-urlencoded")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the form is not UTF-8") from None
    try:
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=2000)
    except ValueError as exc:
        raise BadRequest(f"the form cannot be read: {exc}") from None
    # Browsers send CRLF line ends from a textarea; scripts and queries want LF.
    return FormData({k: [v.replace("\r\n", "\n") for v in vs] for k, vs in fields.items()})


def parse_kv(text: str, field: str) -> dict[str, str]:
    """``key=value`` lines into a mapping; blank lines are skipped."""
    result: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise FieldError(field, f"line {number}: {line!r} is not key=value")
        if key.strip() in result:
            raise FieldError(field, f"line {number}: {key.strip()!r} is given twice")
        result[key.strip()] = value.strip()
    return result


def format_kv(values: Mapping[str, Any] | None) -> str:
    """A mapping as ``key=value`` lines, for a textarea."""
    return "\n".join(f"{key}={value}" for key, value in (values or {}).items())


def _config_value(text: str) -> Any:
    """A config value as typed after ``=``: a JSON literal (``80``, ``0.5``, ``true``,
    ``"80"``, ``[1, 2]``) is that value; anything else is the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_config(text: str, field: str) -> dict[str, Any]:
    """Config typed as ``key=value`` lines, like labels: ``threshold=80`` is the number 80,
    ``paths=/data,/mnt`` the text, ``threshold="80"`` the text "80". Every bad line is
    named at once. A JSON object (``{...}``) is read as JSON."""
    if text.strip().startswith("{"):
        return parse_json_object(text, field)
    result: dict[str, Any] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"line {number}: {line!r} is not key=value")
        elif key in result:
            problems.append(f"line {number}: {key!r} is given twice")
        else:
            result[key] = _config_value(value.strip())
    if problems:
        raise FieldError(field, "; ".join(problems))
    return result


def _one_line(text: str) -> bool:
    return text.splitlines() == [text]


def _line_key(key: str) -> bool:
    return (
        _one_line(key) and key == key.strip() and "=" not in key and not key.startswith(("#", "{"))
    )


def format_config(values: Mapping[str, Any] | None) -> str:
    """Config as ``key=value`` lines that :func:`parse_config` reads back to the same
    values: text that would read as something else (``80``, ``true``, a line break) is
    written as a JSON string. A key lines cannot hold (``=``, a line break, a leading
    ``#`` or ``{``) makes the whole config JSON."""
    if any(not _line_key(key) for key in values or {}):
        return json.dumps(values, indent=2, ensure_ascii=False)
    lines = []
    for key, value in (values or {}).items():
        if isinstance(value, str) and (
            not value or not _one_line(value.strip()) or _config_value(value.strip()) != value
        ):
            lines.append(f"{key}={json.dumps(value)}")
        elif isinstance(value, str):
            lines.append(f"{key}={value}")
        else:
            lines.append(f"{key}={json.dumps(value, ensure_ascii=False)}")
    return "\n".join(lines)


def parse_json_object(text: str, field: str) -> dict[str, Any]:
    """A JSON object typed in a textarea; empty means ``{}``."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FieldError(field, f"not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(value, dict):
        raise FieldError(field, 'must be a JSON object, e.g. {"threshold": 80}')
    return value


def parse_bool(text: str) -> bool | None:
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    return None


def parse_scalar(text: str, like: object) -> str | int | float | bool:
    """A config value typed as text, given the type of the value it overrides.

    A number stays a number and a boolean a boolean when the text reads as one; anything
    else is passed on as typed, for the service to accept or explain.
    """
    value = text.strip()
    if isinstance(like, bool):
        parsed = parse_bool(value)
        return parsed if parsed is not None else value
    if isinstance(like, int | float) and _NUMBER.match(value):
        number = float(value)
        if number.is_integer() and "." not in value and "e" not in value.lower():
            return int(value)
        return number
    return value


def _message(error: Mapping[str, Any]) -> str:
    return validation_message(error)


def validation_errors(exc: ValidationError, fields: Iterable[str], prefix: str = "") -> Errors:
    """Pydantic errors keyed by the form field they belong to."""
    known = set(fields)
    errors: Errors = {}
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        name = prefix + loc[0] if loc else ""
        where = ".".join(loc[1:])
        message = f"{where}: {_message(error)}" if where else _message(error)
        if name not in known:
            name, message = "", f"{'.'.join(loc)}: {_message(error)}" if loc else message
        errors[name] = f"{errors[name]}; {message}" if name in errors else message
    return errors


def attach_error(errors: Errors, detail: str, fields: Iterable[str]) -> Errors:
    """Put a service's message next to the field it names, else at the top of the form."""
    known = set(fields)
    config_key = _CONFIG_KEY.search(detail)
    key = config_key and (config_key.group(1) or config_key.group(2))
    if key and f"config.{key}" in known:
        errors[f"config.{key}"] = detail
        return errors
    prefix = _FIELD_PREFIX.match(detail)
    if prefix and prefix.group(1) in known:
        errors[prefix.group(1)] = detail
        return errors
    first_word = detail.split(" ", 1)[0]
    if first_word in known:
        errors[first_word] = detail
        return errors
    if config_key and "config" in known:
        errors["config"] = detail
        return errors
    errors[""] = detail
    return errors
