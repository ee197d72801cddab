"""Rule files on disk: built with a stamp, staged, validated, backed up, renamed into
place, restorable.

Files are ``group-<group_id>.yml`` and ``global.yml`` in the rule directory. Each file's
one rule group starts with a recording rule, ``aami_rule_group_info``, whose labels carry
the file's stamp (revision and fingerprint): ``/api/v1/rules`` then tells which version
of each file Prometheus has loaded. Staging (one directory per pass) and backups live in
dot-directories beside the files, which Prometheus's ``*.yml`` glob does not reach.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from aami.alerts.rendering import dump_rule_file, render_rule_file
from aami.common.files import fsync_dir, write_atomic
from aami.common.ids import is_valid_id
from aami.publishing.files import (
    FINGERPRINT_PLACEHOLDER,
    Stamp,
    read_stamp,
    seal,
    stamp_line,
    verify,
)

__all__ = [
    "SENTINEL_RECORD",
    "Backup",
    "PromtoolResult",
    "RuleFileInfo",
    "RuleFileStore",
    "WrittenFile",
    "build_rule_file",
    "group_name",
    "promtool_budget",
    "promtool_check",
]

GLOBAL_FILE = "global.yml"
SENTINEL_RECORD = "aami_rule_group_info"
_FILES_PER_WORKER = 100
FILES_PER_TIMEOUT = 1000  # rule files one promtool process checks per AAMI_PROMTOOL_TIMEOUT
_GROUP_FILE = re.compile(r"^group-(.+)\.yml$")


def group_name(scope: str) -> str:
    """The rule group a scope's file holds: ``aami-<group_id>`` or ``aami-global``."""
    return f"aami-{scope or 'global'}"


def build_rule_file(
    scope: str, rules: Iterable[dict[str, Any]], *, revision: int, title: str
) -> tuple[str, str]:
    """The file for one scope at a revision, stamped; returns (text, fingerprint)."""
    document = render_rule_file(scope or "global", rules)
    group = document["groups"][0]
    group["rules"].insert(
        0,
        {
            "record": SENTINEL_RECORD,
            "expr": "vector(1)",
            "labels": {
                "aami_rule_group": group["name"],
                "aami_revision": str(revision),
                "aami_fingerprint": FINGERPRINT_PLACEHOLDER,
            },
        },
    )
    return seal(dump_rule_file(document, header=f"{title}\n{stamp_line(revision)}"))


@dataclass(frozen=True, slots=True)
class RuleFileInfo:
    name: str
    group_id: str | None
    path: str
    sha256: str
    rule_count: int
    modified_at: datetime
    revision: int | None = None
    fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class WrittenFile:
    """What a file on disk says it holds, and whether it still is what was sealed."""

    stamp: Stamp | None
    intact: bool


@dataclass(frozen=True, slots=True)
class Backup:
    """How to undo one change: copy ``saved`` back, or delete the file when it is None."""

    name: str
    saved: Path | None


@dataclass(frozen=True, slots=True)
class PromtoolResult:
    ok: bool
    output: str
    rejected: dict[str, str]  # path -> promtool's words about it
    tool_failed: bool  # promtool itself failed (missing, hung, crashed): no file is to blame


def _promtool_blame(paths: list[Path], output: str) -> dict[str, str]:
    """Which files promtool's output names as failing, with its lines about each."""
    blame: dict[str, list[str]] = {}
    for line in output.splitlines():
        for path in paths:
            text = str(path)
            if line.startswith(f"{text}:") or line.startswith(f"  {text}:"):
                blame.setdefault(text, []).append(line.strip().removeprefix(f"{text}:").strip())
    return {path: "; ".join(lines) for path, lines in blame.items()}


def _kill_group(process: subprocess.Popen[str]) -> None:
    """Kill a tool and whatever it started (it runs in a session of its own)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()  # reaps it and closes its pipes


def promtool_budget(timeout: float, files_per_process: int) -> float:
    """The time one check may take: ``timeout`` for every ``FILES_PER_TIMEOUT`` files each
    promtool process checks (at least once). promtool's work grows with the rules: a fixed
    limit that suits 1,000 files kills every check of 10,000, and no publish could pass."""
    return timeout * max(1.0, files_per_process / FILES_PER_TIMEOUT)


def promtool_check(paths: list[Path], *, timeout: float = 30) -> PromtoolResult:
    """Run ``promtool check rules`` on the paths.

    Fails closed: without promtool, or when it hangs past ``timeout``, validation cannot
    pass. promtool spends its time per rule on one core, so a large batch is split over
    one process per core.
    """
    promtool = shutil.which("promtool")
    if promtool is None:
        return PromtoolResult(
            False,
            "promtool is not installed but PROMETHEUS_VALIDATE_RULES is on: install the "
            "prometheus package or turn validation off",
            {},
            True,
        )
    if not paths:
        return PromtoolResult(True, "", {}, False)
    workers = max(1, min(os.cpu_count() or 1, len(paths) // _FILES_PER_WORKER))
    chunks = [paths[index::workers] for index in range(workers)]
    timeout = promtool_budget(timeout, max(len(chunk) for chunk in chunks))
    processes = [
        subprocess.Popen(
            [promtool, "check", "rules", "--lint=none", *map(str, chunk)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        for chunk in chunks
    ]
    ok, outputs = True, []
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            output, _ = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in processes:
                _kill_group(other)
            return PromtoolResult(
                False, f"promtool did not finish within {timeout:g}s and was killed", {}, True
            )
        ok = ok and process.returncode == 0
        outputs.append(output.strip())
    output = "\n".join(outputs)
    if ok:
        return PromtoolResult(True, output, {}, False)
    rejected = _promtool_blame(paths, output)
    return PromtoolResult(False, output, rejected, not rejected)


class RuleFileStore:
    def __init__(self, root: Path, *, backups: bool = True, keep: int = 10) -> None:
        self.root = root
        self.backups_enabled = backups
        self.keep = keep
        self.backup_dir = root / ".backups"
        self._staging: Path | None = None
        # name -> ((inode, size, mtime_ns), what it says): a file re-read only when changed;
        # the publisher and status requests read it from different threads.
        self._seen: dict[str, tuple[tuple[int, int, int], WrittenFile]] = {}
        self._seen_lock = threading.Lock()

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def file_name(scope: str) -> str:
        """``""`` (global) -> ``global.yml``; a group id -> ``group-<id>.yml``."""
        if scope == "":
            return GLOBAL_FILE
        if not is_valid_id(scope):
            raise ValueError(f"{scope!r} cannot name a rule file")
        return f"group-{scope}.yml"

    @staticmethod
    def scope_of(name: str) -> str | None:
        if name == GLOBAL_FILE:
            return ""
        match = _GROUP_FILE.match(name)
        return match.group(1) if match else None

    def path(self, name: str) -> Path:
        return self.root / name

    def read(self, name: str) -> str | None:
        try:
            return self.path(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def managed(self) -> list[str]:
        """Names of the rule files AAMI owns in the directory."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_file() and self.scope_of(p.name) is not None
        )

    def foreign(self) -> list[Path]:
        """Other ``*.yml`` files in the directory: Prometheus loads them too, so a broken
        one fails every reload."""
        if not self.root.is_dir():
            return []
        return sorted(
            p for p in self.root.glob("*.yml") if p.is_file() and self.scope_of(p.name) is None
        )

    def written(self) -> dict[str, WrittenFile]:
        """What each managed file says it holds, by scope; unchanged files are not re-read."""
        with self._seen_lock:
            return self._written()

    def _written(self) -> dict[str, WrittenFile]:
        found: dict[str, WrittenFile] = {}
        for name in self.managed():
            scope = self.scope_of(name)
            if scope is None:
                continue
            try:
                stat = self.path(name).stat()
            except FileNotFoundError:
                continue
            key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            seen = self._seen.get(name)
            if seen is not None and seen[0] == key:
                found[scope] = seen[1]
                continue
            text = self.read(name)
            if text is None:
                continue
            stamp = read_stamp(text)
            state = WrittenFile(stamp, stamp is not None and verify(text, stamp))
            self._seen[name] = (key, state)
            found[scope] = state
        for gone in set(self._seen) - {self.file_name(s) for s in found}:
            self._seen.pop(gone, None)
        return found

    def stage(self, contents: dict[str, str]) -> dict[str, Path]:
        """Write candidate files into this pass's own staging directory (fsynced)."""
        if self._staging is None:
            self._staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        staged = {}
        for name, content in contents.items():
            path = self._staging / name
            with path.open("w", encoding="utf-8") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            staged[name] = path
        return staged

    def discard_staging(self) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None

    def clear_stale_staging(self) -> None:
        """Remove staging directories and temp files other publishers left behind."""
        if not self.root.is_dir():
            return
        for path in self.root.iterdir():
            if path == self._staging:
                continue
            if path.is_dir() and path.name.startswith(".staging"):
                shutil.rmtree(path, ignore_errors=True)
            elif path.is_file() and path.name.startswith(".") and path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)

    def _backup(self, name: str) -> Backup:
        current = self.path(name)
        if not current.exists():
            return Backup(name, None)
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        saved = self.backup_dir / f"{name}.{stamp}"
        counter = 1
        while saved.exists():  # two backups in the same microsecond must not overwrite
            saved = self.backup_dir / f"{name}.{stamp}-{counter}"
            counter += 1
        shutil.copy2(current, saved)
        return Backup(name, saved)

    def _prune_backups(self, name: str) -> None:
        if not self.backup_dir.is_dir():
            return
        mine = sorted(p for p in self.backup_dir.iterdir() if p.name.startswith(name + "."))
        for old in mine[: max(0, len(mine) - self.keep)]:
            old.unlink(missing_ok=True)

    def install(self, staged: dict[str, Path]) -> list[Backup]:
        """Back up the current files, then rename the staged ones into place."""
        undo = [self._backup(name) for name in staged]
        for name, path in staged.items():
            os.replace(path, self.path(name))  # rename(2) is atomic
        fsync_dir(self.root)
        for name in staged:
            self._prune_backups(name)
        return undo

    def remove(self, names: list[str]) -> list[Backup]:
        undo = [self._backup(name) for name in names]
        for name in names:
            self.path(name).unlink(missing_ok=True)
        fsync_dir(self.root)
        return undo

    def restore(self, undo: list[Backup]) -> None:
        """Put back what ``install``/``remove`` replaced."""
        for backup in undo:
            if backup.saved is None:
                self.path(backup.name).unlink(missing_ok=True)
            else:
                write_atomic(self.path(backup.name), backup.saved.read_text(encoding="utf-8"))
        fsync_dir(self.root)
        if not self.backups_enabled:
            for backup in undo:
                if backup.saved is not None:
                    backup.saved.unlink(missing_ok=True)

    def forget(self, undo: list[Backup]) -> None:
        """Drop the undo copies when backups are not to be kept."""
        if not self.backups_enabled:
            for backup in undo:
                if backup.saved is not None:
                    backup.saved.unlink(missing_ok=True)

    def info(self) -> list[RuleFileInfo]:
        files = []
        for name in self.managed():
            path = self.path(name)
            data = path.read_bytes()
            try:
                document = yaml.load(data, Loader=yaml.CSafeLoader) or {}
                count = sum(
                    1
                    for g in document.get("groups") or []
                    for rule in g.get("rules") or []
                    if rule.get("record") != SENTINEL_RECORD
                )
            except (yaml.YAMLError, AttributeError):
                count = 0
            scope = self.scope_of(name)
            stamp = read_stamp(data.decode("utf-8", "replace"))
            files.append(
                RuleFileInfo(
                    name=name,
                    group_id=scope or None,
                    path=str(path),
                    sha256=hashlib.sha256(data).hexdigest(),
                    rule_count=count,
                    modified_at=datetime.fromtimestamp(path.stat().st_mtime, UTC),
                    revision=stamp.revision if stamp else None,
                    fingerprint=stamp.fingerprint if stamp else None,
                )
            )
        return files
