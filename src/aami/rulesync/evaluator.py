"""The local rule evaluator: a Prometheus or a vmalert beside this process.

Each of our files holds one rule group whose first rule is the stamp, a recording rule
``aami_rule_group_info`` labelled with the file's ``aami_revision`` and
``aami_fingerprint``. The evaluator's ``/api/v1/rules`` (vmalert's is Prometheus-compatible:
``data.groups[].name``, ``.file``, ``.rules[].name``, ``.rules[].labels``) shows those
labels once it runs the file, so "loaded" is read from the evaluator, never assumed from
the files on disk.
"""

from __future__ import annotations

import os
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from aami.rulesync.files import is_our_name

__all__ = [
    "DEFAULT_URLS",
    "KINDS",
    "STAMP_RECORD",
    "Evaluator",
    "EvaluatorError",
    "LoadedGroup",
    "Prometheus",
    "Stamp",
    "Vmalert",
    "compare",
    "expected_stamps",
    "make_evaluator",
]

STAMP_RECORD = "aami_rule_group_info"
KINDS = ("prometheus", "vmalert")
DEFAULT_URLS = {"prometheus": "http://localhost:9090", "vmalert": "http://localhost:8880"}
_MAX_OUTPUT = 1500


class EvaluatorError(Exception):
    """The evaluator could not be reached, or refused what we asked."""


@dataclass(frozen=True, slots=True)
class Stamp:
    revision: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class LoadedGroup:
    """A rule group as the evaluator reports it."""

    name: str
    file: str
    stamp: Stamp | None


def _stamp(labels: object) -> Stamp | None:
    if not isinstance(labels, dict):
        return None
    revision, fingerprint = labels.get("aami_revision"), labels.get("aami_fingerprint")
    if revision is None or fingerprint is None:
        return None
    return Stamp(str(revision), str(fingerprint))


def _file_stamp(name: str, text: str) -> tuple[str, Stamp]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{name}: not YAML: {exc}") from None
    groups = document.get("groups") if isinstance(document, dict) else None
    if not isinstance(groups, list) or len(groups) != 1 or not isinstance(groups[0], dict):
        raise ValueError(f"{name}: expected exactly one rule group")
    group = groups[0]
    rules = group.get("rules")
    first = rules[0] if isinstance(rules, list) and rules else None
    stamp = _stamp(first.get("labels")) if isinstance(first, dict) else None
    if not isinstance(first, dict) or first.get("record") != STAMP_RECORD or stamp is None:
        raise ValueError(f"{name}: the group does not start with its {STAMP_RECORD} stamp")
    group_name = group.get("name")
    if not isinstance(group_name, str) or not group_name.startswith("aami-"):
        raise ValueError(f"{name}: the group's name must start with aami-")
    return group_name, stamp


def expected_stamps(contents: Mapping[str, str]) -> dict[str, Stamp]:
    """Group name -> stamp for each file of a set; ``ValueError`` if a file has none."""
    expected: dict[str, Stamp] = {}
    for name, text in sorted(contents.items()):
        group, stamp = _file_stamp(name, text)
        if group in expected:
            raise ValueError(f"{name}: rule group {group} is in two files")
        expected[group] = stamp
    return expected


def compare(expected: Mapping[str, Stamp], loaded: Iterable[LoadedGroup]) -> list[str]:
    """What keeps the evaluator from running exactly ``expected``; empty when it does.

    Every expected group must be loaded with its stamp; a stamped group from one of our
    files (by base name) that is no longer in the set must be gone."""
    problems = []
    found: dict[str, list[Stamp | None]] = {}
    for group in loaded:
        found.setdefault(group.name, []).append(group.stamp)
        ours = is_our_name(os.path.basename(group.file))
        if group.name not in expected and group.stamp is not None and ours:
            problems.append(f"{group.name}: still loaded from {group.file}")
    for name, stamp in sorted(expected.items()):
        stamps = found.get(name)
        if not stamps:
            problems.append(f"{name}: not loaded")
            continue
        for seen in stamps:
            if seen != stamp:
                have = f"revision {seen.revision}" if seen else "no stamp"
                problems.append(f"{name}: runs {have}, want revision {stamp.revision}")
    return problems


def _groups(body: Any) -> list[LoadedGroup]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or "groups" not in data:
        raise EvaluatorError("/api/v1/rules: no data.groups in the answer")
    # vmalert with no rule group at all answers "groups": null
    groups = [] if data["groups"] is None else data["groups"]
    if not isinstance(groups, list):
        raise EvaluatorError("/api/v1/rules: no data.groups in the answer")
    loaded = []
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("name"), str):
            continue
        stamp = None
        for rule in group.get("rules") or []:
            if isinstance(rule, dict) and rule.get("name") == STAMP_RECORD:
                stamp = _stamp(rule.get("labels"))
                break
        loaded.append(LoadedGroup(group["name"], str(group.get("file") or ""), stamp))
    return loaded


def _shorten(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _MAX_OUTPUT else text[:_MAX_OUTPUT] + "…"


class Evaluator(ABC):
    """What the sync needs from a rule evaluator: validate files, reload, read its rules."""

    kind = ""
    tool = ""

    def __init__(
        self, url: str, binary: str, http: httpx.Client, *, tool_timeout: float = 60
    ) -> None:
        self.url = url.rstrip("/")
        self.binary = binary
        self._http = http
        self._tool_timeout = tool_timeout

    @abstractmethod
    def _argv(self, directory: Path, paths: list[Path]) -> list[str]:
        """The checker's command line for these staged files."""

    def _explain(self, output: str) -> str:
        return output

    def validate(self, directory: Path, paths: list[Path]) -> str | None:
        """Run the evaluator's own checker on staged files; None when it accepts them.

        Fails closed: a missing, hung or crashed checker refuses the set."""
        if not paths:
            return None
        try:
            result = subprocess.run(
                self._argv(directory, paths),
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=self._tool_timeout,
                check=False,
            )
        except FileNotFoundError:
            return f"{self.binary} not found: install it or give its path (--{self.tool})"
        except subprocess.TimeoutExpired:
            return f"{self.binary} did not finish within {self._tool_timeout:g}s"
        except OSError as exc:
            return f"{self.binary}: {exc}"
        if result.returncode == 0:
            return None
        output = self._explain(result.stdout + "\n" + result.stderr)
        output = output.replace(f"{directory}{os.sep}", "")
        return _shorten(output) or f"{self.binary} exited {result.returncode}"

    def _post_reload(self) -> httpx.Response:
        return self._http.post(f"{self.url}/-/reload")

    def reload(self) -> None:
        """Ask the evaluator to re-read its rule files; ``EvaluatorError`` if it does not."""
        try:
            response = self._post_reload()
        except httpx.HTTPError as exc:
            raise EvaluatorError(
                f"cannot reach {self.kind} at {self.url}: {type(exc).__name__}: {exc}"
            ) from None
        if response.status_code == 403:
            raise EvaluatorError(
                f"{self.kind} at {self.url} refused the reload (403): its lifecycle API is "
                "off; start it with --web.enable-lifecycle"
            )
        if response.status_code >= 300:
            raise EvaluatorError(
                f"{self.kind} at {self.url} failed the reload ({response.status_code}): "
                f"{_shorten(response.text)}"
            )

    def loaded(self) -> list[LoadedGroup]:
        """The rule groups the evaluator runs, with their stamps."""
        try:
            response = self._http.get(f"{self.url}/api/v1/rules")
            response.raise_for_status()
            body = response.json()
        except httpx.HTTPStatusError as exc:
            raise EvaluatorError(
                f"{self.kind} at {self.url}: /api/v1/rules answered {exc.response.status_code}"
            ) from None
        except httpx.HTTPError as exc:
            raise EvaluatorError(
                f"cannot reach {self.kind} at {self.url}: {type(exc).__name__}: {exc}"
            ) from None
        except ValueError:
            raise EvaluatorError(f"{self.kind} at {self.url}: /api/v1/rules is not JSON") from None
        return _groups(body)


class Prometheus(Evaluator):
    """``promtool check rules`` to validate, ``POST /-/reload`` (needs
    ``--web.enable-lifecycle``); the reload answers once the rules are swapped in."""

    kind = "prometheus"
    tool = "promtool"

    def _argv(self, directory: Path, paths: list[Path]) -> list[str]:
        return [self.binary, "check", "rules", *map(str, paths)]

    def _explain(self, output: str) -> str:
        # Keep what promtool says is wrong, not its progress lines.
        noise = ("Checking ", "SUCCESS:", "FAILED:")
        lines = [line.strip() for line in output.splitlines()]
        kept = [line for line in lines if line and not line.startswith(noise)]
        return "\n".join(kept) or output


class Vmalert(Evaluator):
    """``vmalert -dryRun -rule=<dir>/*.yml`` to validate; ``/-/reload`` only signals the
    reload, so the rules are confirmed by polling ``/api/v1/rules``."""

    kind = "vmalert"
    tool = "vmalert"

    def _argv(self, directory: Path, paths: list[Path]) -> list[str]:
        return [self.binary, "-dryRun", f"-rule={directory}{os.sep}*.yml"]

    def _explain(self, output: str) -> str:
        # vmalert logs "time<TAB>level<TAB>caller<TAB>message"; the fatal/error lines say why.
        lines = []
        for line in output.splitlines():
            fields = line.split("\t", 3)
            if len(fields) == 4 and fields[1] in ("error", "fatal", "panic"):
                lines.append(fields[3])
        return "\n".join(lines) or output

    def _post_reload(self) -> httpx.Response:
        response = self._http.post(f"{self.url}/-/reload")
        if response.status_code == 405:  # releases that take GET only
            response = self._http.get(f"{self.url}/-/reload")
        return response


def make_evaluator(kind: str, url: str | None, binary: str | None, http: httpx.Client) -> Evaluator:
    """The evaluator of ``kind`` at ``url`` (its default port on localhost when None)."""
    if kind == "prometheus":
        return Prometheus(url or DEFAULT_URLS[kind], binary or "promtool", http)
    if kind == "vmalert":
        return Vmalert(url or DEFAULT_URLS[kind], binary or "vmalert", http)
    raise ValueError(f"unknown evaluator kind {kind!r}: prometheus or vmalert")
