"""The rules directory: the files AAMI wants there, written so that the evaluator never
reads half a file, and put back as they were when the new set is not taken.

Ours are ``global.yml`` and ``group-*.yml``; anything else in the directory is left
alone. A set is staged in a dot-directory beside the files (same file system, so each
file's rename is atomic; the evaluator's ``*.yml`` glob does not reach it), validated
there, then renamed into place. The files it replaces are kept (hard links) until the
evaluator has taken the new set. ``.aami-sync.json`` records the revision installed and
each file's sha256, so a restart knows what it finds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "STATE_FILE",
    "FileNameRefused",
    "Installed",
    "RulesDirectory",
    "Staged",
    "Undo",
    "check_name",
    "is_our_name",
    "sha256_text",
]

STATE_FILE = ".aami-sync.json"
_WORK_PREFIX = ".aami-sync-"
# group-<id>.yml with AAMI's id grammar (lowercase letters, digits, '.', '_', '-'; no
# '..'): no separator, no leading dot, so the name stays a plain file in this directory.
_NAME = re.compile(r"^(global|group-[a-z0-9][a-z0-9._-]{0,62})\.yml$")
_MODE = 0o644


class FileNameRefused(ValueError):
    """A name that is not ours to write: the whole set is refused, nothing is written."""


def is_our_name(name: str) -> bool:
    """``global.yml`` or ``group-<id>.yml``: a name this sync may write."""
    return _NAME.fullmatch(name) is not None and ".." not in name


def check_name(name: str) -> None:
    """Raise ``FileNameRefused`` unless ``name`` is ``global.yml`` or ``group-<id>.yml``."""
    if not is_our_name(name):
        raise FileNameRefused(
            f"refused file name {name!r}: only global.yml and group-<lowercase id>.yml are written"
        )


def _named_like_ours(name: str) -> bool:
    return name == "global.yml" or (name.startswith("group-") and name.endswith(".yml"))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, _MODE)  # whatever the umask, the evaluator's user reads it


@dataclass(frozen=True, slots=True)
class Installed:
    """A revision as written to the directory."""

    revision: str
    kind: str
    files: Mapping[str, str]  # name -> sha256

    def to_json(self) -> str:
        return json.dumps(
            {
                "revision": self.revision,
                "kind": self.kind,
                "files": dict(sorted(self.files.items())),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> Installed | None:
        try:
            body = json.loads(text)
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        revision, kind, files = body.get("revision"), body.get("kind"), body.get("files")
        if not isinstance(revision, str) or not isinstance(kind, str):
            return None
        if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()
        ):
            return None
        return cls(revision, kind, dict(files))


@dataclass(frozen=True, slots=True)
class Staged:
    """A set written whole in its own directory, not yet in place."""

    directory: Path
    paths: dict[str, Path]  # name -> staged path


@dataclass(slots=True)
class Undo:
    """How to put the directory back as it was before ``install``."""

    backup_dir: Path
    saved: dict[str, Path | None] = field(default_factory=dict)  # name -> old copy, or absent
    state: str | None = None  # the state file's previous text


class RulesDirectory:
    """The directory the evaluator loads our rule files from."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    def ensure(self) -> None:
        """Create the directory if needed; remove what an interrupted run left behind."""
        self.root.mkdir(parents=True, exist_ok=True)
        for path in self.root.iterdir():
            if not path.name.startswith(_WORK_PREFIX) or path.is_symlink():
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def ours(self) -> list[str]:
        """Names in the directory that look like our files (whoever wrote them)."""
        if not self.root.is_dir():
            return []
        return sorted(
            path.name
            for path in self.root.iterdir()
            if _named_like_ours(path.name) and (path.is_symlink() or path.is_file())
        )

    def read(self, name: str) -> str | None:
        check_name(name)
        try:
            return (self.root / name).read_text(encoding="utf-8")
        except (FileNotFoundError, UnicodeDecodeError):
            return None

    def read_state(self) -> Installed | None:
        try:
            return Installed.from_json(self.state_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, UnicodeDecodeError):
            return None

    def installed(self) -> Installed | None:
        """The revision on disk: the state file's, if the files are exactly the ones it
        lists (no more, none changed); else None and the next set is written whole."""
        state = self.read_state()
        if state is None or sorted(state.files) != self.ours():
            return None
        for name, digest in state.files.items():
            try:
                if sha256_text((self.root / name).read_text(encoding="utf-8")) != digest:
                    return None
            except (OSError, UnicodeDecodeError, FileNameRefused):
                return None
        return state

    def contents(self, installed: Installed) -> dict[str, str]:
        """The text of each file of an installed revision."""
        found = {}
        for name in installed.files:
            text = self.read(name)
            if text is not None:
                found[name] = text
        return found

    def stage(self, contents: Mapping[str, str]) -> Staged:
        """Write the set into a fresh staging directory, each file fsynced. Every name is
        checked first: a refused name means nothing at all is written."""
        for name in contents:
            check_name(name)
        self.ensure()
        directory = Path(tempfile.mkdtemp(prefix=f"{_WORK_PREFIX}stage-", dir=self.root))
        try:
            paths = {}
            for name, text in contents.items():
                path = directory / name
                _write_synced(path, text.encode("utf-8"))
                paths[name] = path
            _fsync_dir(directory)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return Staged(directory, paths)

    def discard(self, staged: Staged) -> None:
        shutil.rmtree(staged.directory, ignore_errors=True)

    def _save(self, undo: Undo, name: str) -> None:
        current = self.root / name
        if name in undo.saved:
            return
        if not (current.is_symlink() or current.exists()):
            undo.saved[name] = None
            return
        kept = undo.backup_dir / name
        try:
            os.link(current, kept, follow_symlinks=False)
        except OSError:  # a file system without hard links
            shutil.copy2(current, kept, follow_symlinks=False)
        undo.saved[name] = kept

    def install(self, staged: Staged, installed: Installed) -> Undo:
        """Rename the staged files into place, remove our files not in the set, record the
        state. The replaced files are kept in ``Undo`` until ``commit`` or ``restore``."""
        undo = Undo(Path(tempfile.mkdtemp(prefix=f"{_WORK_PREFIX}backup-", dir=self.root)))
        with contextlib.suppress(FileNotFoundError):
            undo.state = self.state_path.read_text(encoding="utf-8")
        try:
            stale = [name for name in self.ours() if name not in staged.paths]
            for name in [*staged.paths, *stale]:
                self._save(undo, name)
            for name, path in staged.paths.items():
                os.replace(path, self.root / name)  # rename(2) is atomic
            for name in stale:
                (self.root / name).unlink(missing_ok=True)
            self._write_state(installed.to_json())
            _fsync_dir(self.root)
        except BaseException:
            self.restore(undo)
            raise
        finally:
            shutil.rmtree(staged.directory, ignore_errors=True)
        return undo

    def restore(self, undo: Undo) -> None:
        """Put back every file ``install`` replaced or removed, and the old state."""
        for name, kept in undo.saved.items():
            if kept is None:
                (self.root / name).unlink(missing_ok=True)
            else:
                os.replace(kept, self.root / name)
        if undo.state is None:
            self.state_path.unlink(missing_ok=True)
        else:
            self._write_state(undo.state)
        _fsync_dir(self.root)
        shutil.rmtree(undo.backup_dir, ignore_errors=True)

    def commit(self, undo: Undo) -> None:
        """The new set is taken: drop the old copies."""
        shutil.rmtree(undo.backup_dir, ignore_errors=True)

    def _write_state(self, text: str) -> None:
        fd, name = tempfile.mkstemp(prefix=f"{_WORK_PREFIX}state-", dir=self.root)
        tmp = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, _MODE)
            os.replace(tmp, self.state_path)  # rename(2) is atomic
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
