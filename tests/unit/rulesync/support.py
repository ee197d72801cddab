"""A fake AAMI and a fake evaluator behind httpx.MockTransport, and rule files shaped
like the ones AAMI serves."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from aami.rulesync.client import AamiClient
from aami.rulesync.evaluator import Evaluator, make_evaluator
from aami.rulesync.files import RulesDirectory
from aami.rulesync.loop import Sync, SyncSettings

AAMI_URL = "https://aami.test"
EVALUATOR_URL = "http://prometheus.test:9090"
TOKEN = "evaluator-token-0123456789abcdef"


def rule_file(scope: str, revision: int, *, expr: str = "up == 0", alert: str = "NodeDown") -> str:
    """A stamped rule file as AAMI renders it: one group ``aami-<scope>``."""
    body = {
        "groups": [
            {
                "name": f"aami-{scope}",
                "rules": [
                    {
                        "record": "aami_rule_group_info",
                        "expr": "vector(1)",
                        "labels": {
                            "aami_rule_group": f"aami-{scope}",
                            "aami_revision": str(revision),
                            "aami_fingerprint": hashlib.sha256(
                                f"{scope}{revision}{expr}".encode()
                            ).hexdigest()[:16],
                        },
                    },
                    {"alert": alert, "expr": expr, "for": "1m", "labels": {"severity": "warning"}},
                ],
            }
        ]
    }
    return f"# aami: revision={revision}\n" + yaml.safe_dump(body, sort_keys=False)


def rule_set_body(files: dict[str, str], *, kind: str = "prometheus") -> dict[str, Any]:
    digest = hashlib.sha256()
    for name, text in sorted(files.items()):
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    return {
        "evaluator": "prom-a",
        "kind": kind,
        "revision": digest.hexdigest(),
        "files": [
            {"name": name, "content": text, "sha256": hashlib.sha256(text.encode()).hexdigest()}
            for name, text in sorted(files.items())
        ],
    }


@dataclass
class FakeAami:
    """The evaluator routes of an AAMI server: a rule set with its ETag, and reports."""

    body: dict[str, Any]
    down: bool = False
    requests: list[httpx.Request] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)

    @property
    def revision(self) -> str:
        return str(self.body["revision"])

    def serve(self, files: dict[str, str], *, kind: str = "prometheus") -> str:
        self.body = rule_set_body(files, kind=kind)
        return self.revision

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"detail": "bad token"})
        etag = f'"{self.revision}"'
        if request.method == "GET" and request.url.path == "/api/v1/evaluators/prom-a/rules":
            if request.headers.get("If-None-Match") == etag:
                return httpx.Response(304, headers={"ETag": etag})
            return httpx.Response(200, json=self.body, headers={"ETag": etag})
        if request.method == "POST" and request.url.path == "/api/v1/evaluators/prom-a/status":
            self.reports.append(json.loads(request.content))
            return httpx.Response(200, json={})
        return httpx.Response(404, json={"detail": "no such route"})

    def fetches(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "GET"]


@dataclass
class FakeEvaluator:
    """A Prometheus that, on reload, loads the ``*.yml`` files of its rules directory."""

    rules_dir: Path
    down: bool = False
    reload_status: int = 200
    ignore_reloads: bool = False  # answers 200 but keeps what it had (a stuck evaluator)
    reloads: int = 0
    groups: list[dict[str, Any]] = field(default_factory=list)

    def load(self) -> None:
        groups = []
        for path in sorted(self.rules_dir.glob("*.yml")):
            for group in yaml.safe_load(path.read_text())["groups"]:
                rules = [
                    {"name": rule.get("record") or rule.get("alert"), "labels": rule.get("labels")}
                    for rule in group["rules"]
                ]
                groups.append({"name": group["name"], "file": str(path), "rules": rules})
        self.groups = groups

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.method == "POST" and request.url.path == "/-/reload":
            self.reloads += 1
            if self.reload_status != 200:
                return httpx.Response(self.reload_status, text="error loading rules")
            if not self.ignore_reloads:
                self.load()
            return httpx.Response(200)
        if request.method == "GET" and request.url.path == "/api/v1/rules":
            return httpx.Response(200, json={"status": "success", "data": {"groups": self.groups}})
        return httpx.Response(404)


@dataclass
class Clock:
    """A clock that moves only when the code under test sleeps."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Rig:
    aami: FakeAami
    evaluator: FakeEvaluator
    directory: RulesDirectory
    clock: Clock
    http: httpx.Client
    client: AamiClient
    settings: SyncSettings

    def sync(self) -> Sync:
        """A new sync process on the same directory (a restart makes another)."""

        def evaluators(kind: str) -> Evaluator:
            return make_evaluator(kind, EVALUATOR_URL, None, self.http)

        return Sync(
            self.client,
            self.directory,
            evaluators,
            self.settings,
            clock=self.clock,
            sleep=self.clock.sleep,
        )


def make_rig(rules_dir: Path, files: dict[str, str], **settings: Any) -> Rig:
    aami = FakeAami(rule_set_body(files))
    evaluator = FakeEvaluator(rules_dir)
    http = httpx.Client(transport=httpx.MockTransport(evaluator.handle))
    client = AamiClient(
        AAMI_URL, "prom-a", lambda: TOKEN, transport=httpx.MockTransport(aami.handle)
    )
    values: dict[str, Any] = {"confirm_timeout": 5, "confirm_interval": 0.5, **settings}
    return Rig(
        aami, evaluator, RulesDirectory(rules_dir), Clock(), http, client, SyncSettings(**values)
    )
