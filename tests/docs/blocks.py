"""Fenced code blocks of the documentation: which run, and how they are found."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Only ```sh blocks run, and all of them. Commands for a real host (systemd, compose,
# `make up`) are fenced ```console; output and files are ```text, ```yaml, ```json, ...
RUNNABLE = "sh"
# Fences that look like shell but would not run: refused, so nothing is skipped silently.
SHELL_LIKE = {"bash", "shell", "zsh", "shell-session", "sh-session", "http"}
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[^`\s]*)\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Every fenced block in a Markdown file, in order."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    opened: tuple[int, str] | None = None
    body: list[str] = []
    for number, line in enumerate(lines, start=1):
        match = _FENCE.match(line)
        if opened is None:
            if match:
                opened, body = (number, match["lang"]), []
        elif match and not match["lang"]:
            found.append(Block(path, opened[0], opened[1], "\n".join(body) + "\n"))
            opened = None
        else:
            body.append(line)
    assert opened is None, f"{path}:{opened[0]}: the fenced block is never closed"
    return found


def runnable(path: Path) -> list[Block]:
    return [block for block in blocks(path) if block.lang == RUNNABLE]


_EXPORT = re.compile(r"^\s*#?\s*export\s+(?P<rest>.*)$", re.MULTILINE)
_ASSIGNED = re.compile(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=")


def exported(path: Path) -> set[str]:
    """The variables a document tells its reader to export (``export NAME=...``, in any
    block, a comment in a block too): all its examples may use besides their own."""
    names: set[str] = set()
    for block in blocks(path):
        for line in _EXPORT.finditer(block.text):
            names.update(_ASSIGNED.findall(" " + line["rest"]))
    return names


_SINGLE_QUOTED = re.compile(r"'[^']*'")
_USED = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_DEFINED = re.compile(r"(?:^|[\s;(])(?:export\s+|local\s+)?([A-Za-z_][A-Za-z0-9_]*)=", re.MULTILINE)
_LOOP = re.compile(r"\bfor\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\b")
_COMMENT = re.compile(r"(?:^|(?<=\s))#.*$", re.MULTILINE)
SHELL_VARIABLES = {"PWD", "HOME"}  # what every shell has set


def used_from_outside(path: Path) -> set[str]:
    """Variables the runnable blocks use without setting them (single-quoted text, which
    the shell does not expand, aside)."""
    used: set[str] = set()
    defined: set[str] = set()
    for block in runnable(path):
        text = _COMMENT.sub("", _SINGLE_QUOTED.sub("''", block.text))
        used.update(_USED.findall(text))
        defined.update(_DEFINED.findall(text))
        defined.update(_LOOP.findall(text))
    return used - defined - SHELL_VARIABLES
