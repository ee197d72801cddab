"""The AAMI API as a rule evaluator sees it: its rule set and its status report.

Errors::

    AamiError                 AAMI could not give us what we asked for
     ├── AamiUnreachable      connection refused, timeout, 5xx: keep the last good rules
     ├── AamiRejected         4xx (bad token, unknown evaluator): carries the server's detail
     └── BadResponse          an answer that does not match the API contract

The evaluator token goes in an ``Authorization: Bearer`` header to AAMI and nowhere else; it
is never part of a message or a log line.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

__all__ = [
    "MAX_ERROR_CHARS",
    "AamiClient",
    "AamiError",
    "AamiRejected",
    "AamiUnreachable",
    "BadResponse",
    "RuleFile",
    "RuleSet",
    "valid_evaluator_name",
]

USER_AGENT = "aami-rules-sync"
MAX_ERROR_CHARS = 2000
MAX_WAIT = 60
_EVALUATOR_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class AamiError(Exception):
    """AAMI could not give us what we asked for."""


class AamiUnreachable(AamiError):
    """No usable answer: connection error, timeout or a 5xx."""


class AamiRejected(AamiError):
    """A 4xx answer; ``detail`` is the server's explanation."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


class BadResponse(AamiError):
    """An answer that does not match the API contract."""


def valid_evaluator_name(name: str) -> bool:
    """Lowercase letters, digits and '-', 1 to 63 characters (safe in a URL path)."""
    return _EVALUATOR_NAME.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class RuleFile:
    """One file of the set: its name is checked by ``files`` before anything is written."""

    name: str
    content: str
    sha256: str


@dataclass(frozen=True, slots=True)
class RuleSet:
    """What AAMI wants the evaluator to run: the set of files IS the desired state."""

    evaluator: str
    kind: str
    revision: str
    files: tuple[RuleFile, ...]

    def contents(self) -> dict[str, str]:
        """File name -> text."""
        return {file.name: file.content for file in self.files}

    @classmethod
    def from_json(cls, body: object) -> RuleSet:
        """Build a rule set from the API's answer; ``BadResponse`` if malformed."""
        if not isinstance(body, dict):
            raise BadResponse("the rule set is not an object")
        revision, kind = body.get("revision"), body.get("kind")
        if not isinstance(revision, str) or not _HEX64.fullmatch(revision):
            raise BadResponse("the rule set's revision is not 64 hex digits")
        if not isinstance(kind, str) or not kind:
            raise BadResponse("the rule set has no kind")
        items = body.get("files")
        if not isinstance(items, list):
            raise BadResponse("the rule set's files are not a list")
        files = tuple(_rule_file(item) for item in items)
        names = [file.name for file in files]
        if len(set(names)) != len(names):
            raise BadResponse("the rule set names a file twice")
        return cls(str(body.get("evaluator") or ""), kind, revision, files)


def _rule_file(item: object) -> RuleFile:
    if not isinstance(item, dict):
        raise BadResponse("a rule file is not an object")
    name, content, digest = item.get("name"), item.get("content"), item.get("sha256")
    if not isinstance(name, str) or not isinstance(content, str) or not isinstance(digest, str):
        raise BadResponse("a rule file needs string name, content and sha256")
    if hashlib.sha256(content.encode("utf-8")).hexdigest() != digest.lower():
        raise BadResponse(f"{name!r}: the content does not match its sha256")
    return RuleFile(name, content, digest.lower())


def _detail(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])[:300]
    return response.reason_phrase


def _verify(ca_file: Path | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=str(ca_file)) if ca_file else True


class AamiClient:
    """The evaluator's two routes on one AAMI server.

    ``token`` is called for every request, so a token file rotated in place is picked up
    without a restart.
    """

    def __init__(
        self,
        server: str,
        evaluator: str,
        token: Callable[[], str],
        *,
        ca_file: Path | None = None,
        timeout: float = 10,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not valid_evaluator_name(evaluator):
            raise ValueError(
                f"evaluator name {evaluator!r}: lowercase letters, digits and '-' (1-63)"
            )
        self.server = server.rstrip("/")
        self.evaluator = evaluator
        self._token = token
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=self.server,
            verify=_verify(ca_file),
            headers={"User-Agent": USER_AGENT},
            transport=transport,
            timeout=timeout,
        )

    def __enter__(self) -> AamiClient:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token()}", **kwargs.pop("headers", {})}
        try:
            response = self._http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            # The message names the URL at most; the request's headers are not in it.
            raise AamiUnreachable(f"{self.server}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 500:
            raise AamiUnreachable(f"{self.server}: {response.status_code} {_detail(response)}")
        if 400 <= response.status_code < 500:
            raise AamiRejected(response.status_code, _detail(response))
        return response

    def fetch(self, etag: str | None, wait: float = 0) -> RuleSet | None:
        """The rule set, or None when it is still ``etag`` (a 304).

        With ``etag`` and ``wait`` > 0, AAMI holds the request until the set changes or
        ``wait`` seconds pass (long-poll).
        """
        wait = max(0.0, min(float(wait), MAX_WAIT)) if etag else 0.0
        headers = {"If-None-Match": f'"{etag}"'} if etag else {}
        params = {"wait": f"{wait:g}"} if wait else {}
        response = self._request(
            "GET",
            f"/api/v1/evaluators/{self.evaluator}/rules",
            headers=headers,
            params=params,
            timeout=self._timeout + wait,
        )
        if response.status_code == 304:
            if etag is None:
                raise BadResponse("304 Not Modified to a request without If-None-Match")
            return None
        if response.status_code != 200:
            raise BadResponse(f"unexpected status {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise BadResponse("the rule set is not JSON") from None
        return RuleSet.from_json(body)

    def report(self, loaded_revision: str | None, error: str | None) -> None:
        """Tell AAMI which revision the evaluator runs (confirmed) and what went wrong."""
        if error is not None and len(error) > MAX_ERROR_CHARS:
            error = error[: MAX_ERROR_CHARS - 1] + "…"
        self._request(
            "POST",
            f"/api/v1/evaluators/{self.evaluator}/status",
            json={"loaded_revision": loaded_revision, "error": error},
        )
