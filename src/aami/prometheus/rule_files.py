"""Rule files on disk: staged, validated, backed up, renamed into place, restorable.

Files are ``group-<group_id>.yml`` and ``global.yml`` in the rule directory. Staging and
backups live in ``.staging/`` and ``.backups/`` beside them, which Prometheus's
``*.yml`` glob does not reach.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from aami.common.ids import is_valid_id

__all__ = ["Backup", "RuleFileInfo", "RuleFileStore", "promtool_check", "write_atomic"]

GLOBAL_FILE = "global.yml"
_FILES_PER_WORKER = 100
_GROUP_FILE = re.compile(r"^group-(.+)\.yml$")


@dataclass(frozen=True, slots=True)
class RuleFileInfo:
    name: str
    group_id: str | None
    path: str
    sha256: str
    rule_count: int
    modified_at: datetime


@dataclass(frozen=True, slots=True)
class Backup:
    """How to undo one change: copy ``saved`` back, or delete the file when it is None."""

    name: str
    saved: Path | None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, content: str) -> None:
    """Write a temp file in the same directory, fsync it, rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)  # rename(2) is atomic
    _fsync_dir(path.parent)


def promtool_check(paths: list[Path], *, timeout: float = 120) -> tuple[bool, str]:
    """Run ``promtool check rules`` on the paths; (ok, output).

    Fails closed: without promtool, validation cannot pass. promtool spends its time per
    rule on one core, so a large batch is split over one process per core.
    """
    promtool = shutil.which("promtool")
    if promtool is None:
        return False, (
            "promtool is not installed but PROMETHEUS_VALIDATE_RULES is on: install the "
            "prometheus package or turn validation off"
        )
    if not paths:
        return True, ""
    workers = max(1, min(os.cpu_count() or 1, len(paths) // _FILES_PER_WORKER))
    chunks = [paths[index::workers] for index in range(workers)]
    processes = [
        subprocess.Popen(
            [promtool, "check", "rules", "--lint=none", *map(str, chunk)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
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
                other.kill()
                other.wait()
            return False, f"promtool did not finish in {timeout:.0f}s"
        ok = ok and process.returncode == 0
        outputs.append(output.strip())
    return ok, "\n".join(outputs)


class RuleFileStore:
    def __init__(self, root: Path, *, backups: bool = True, keep: int = 10) -> None:
        self.root = root
        self.backups_enabled = backups
        self.keep = keep
        self.staging = root / ".staging"
        self.backup_dir = root / ".backups"

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

    def stage(self, contents: dict[str, str]) -> dict[str, Path]:
        """Write candidate files into the staging directory (fsynced)."""
        self.staging.mkdir(parents=True, exist_ok=True)
        staged = {}
        for name, content in contents.items():
            path = self.staging / name
            with path.open("w", encoding="utf-8") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            staged[name] = path
        return staged

    def discard_staging(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

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
        _fsync_dir(self.root)
        for name in staged:
            self._prune_backups(name)
        return undo

    def remove(self, names: list[str]) -> list[Backup]:
        undo = [self._backup(name) for name in names]
        for name in names:
            self.path(name).unlink(missing_ok=True)
        _fsync_dir(self.root)
        return undo

    def restore(self, undo: list[Backup]) -> None:
        """Put back what ``install``/``remove`` replaced."""
        for backup in undo:
            if backup.saved is None:
                self.path(backup.name).unlink(missing_ok=True)
            else:
                write_atomic(self.path(backup.name), backup.saved.read_text(encoding="utf-8"))
        _fsync_dir(self.root)
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
                count = sum(len(g.get("rules") or []) for g in document.get("groups") or [])
            except yaml.YAMLError:
                count = 0
            scope = self.scope_of(name)
            files.append(
                RuleFileInfo(
                    name=name,
                    group_id=scope or None,
                    path=str(path),
                    sha256=hashlib.sha256(data).hexdigest(),
                    rule_count=count,
                    modified_at=datetime.fromtimestamp(path.stat().st_mtime, UTC),
                )
            )
        return files
