"""Where would an alert go? Alertmanager's own answer: ``amtool config routes test`` on a
rendered config, its matching tree read back into routes.

``amtool`` runs with its arguments as a list (never through a shell); each label is given
as ``name="value"`` with the value escaped as amtool's matcher syntax reads it, so a comma,
quote or brace in a value is part of the value.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aami.errors import Invalid, Unavailable

__all__ = ["ROOT", "Match", "TreeNode", "label_argument", "parse_tree", "route_test"]

_BRANCHES = ("├── ", "└── ", "│   ", "    ")
_RECEIVER = "  receiver: "
ROOT = "default-route"


@dataclass(frozen=True, slots=True)
class TreeNode:
    depth: int
    route: str
    receiver: str | None


@dataclass(frozen=True, slots=True)
class Match:
    receiver: str
    path: tuple[str, ...]
    branch: int | None = None  # which of the root's matched children it is under, in order


def label_argument(name: str, value: str) -> str:
    """``name="value"`` in amtool's matcher syntax (backslash and quote escaped)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}="{escaped}"'


def _node(line: str) -> TreeNode | None:
    depth, rest = 0, line
    while rest.startswith(_BRANCHES):
        depth, rest = depth + 1, rest[4:]
    if depth == 0:
        return None
    route, sep, receiver = rest.rpartition(_RECEIVER)
    if not sep:
        route, receiver = rest, ""
    return TreeNode(depth - 1, route.strip(), receiver.strip() or None)


def parse_tree(output: str) -> tuple[list[str], list[Match]]:
    """amtool's ``--tree`` output: the receivers (its last line) and the matched routes
    (the tree's leaves, each with the path from the root)."""
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines:
        return [], []
    receivers = [r for r in lines[-1].split(",") if r]
    matches: list[Match] = []
    path: list[str] = []
    branch = -1
    for line in lines[:-1]:
        node = _node(line)
        if node is None:
            continue
        del path[node.depth :]
        path.append(node.route)
        if node.depth == 1:
            branch += 1
        if node.receiver is not None:
            matches.append(Match(node.receiver, tuple(path), branch if node.depth else None))
    if [m.receiver for m in matches] != receivers:
        # A tree that does not read back (a route's matcher text spanning lines): the
        # receivers are amtool's answer either way.
        matches = [Match(r, ()) for r in receivers]
    return receivers, matches


def route_test(
    config_text: str, labels: Mapping[str, str], *, timeout: float
) -> tuple[list[str], list[Match]]:
    """Run ``amtool config routes test --tree`` on ``config_text`` for an alert with
    ``labels``; ``Unavailable`` when amtool is missing or slow, ``Invalid`` when it
    refuses the config or the labels."""
    amtool = shutil.which("amtool")
    if amtool is None:
        raise Unavailable(
            "amtool is not installed, so routes cannot be tested; install the "
            "prometheus-alertmanager package"
        )
    arguments: Sequence[str] = [label_argument(k, v) for k, v in labels.items()]
    with tempfile.TemporaryDirectory(prefix="aami-routes-") as tmp:
        config = Path(tmp) / "alertmanager.yml"
        config.write_text(config_text, encoding="utf-8")
        try:
            completed = subprocess.run(
                [
                    amtool,
                    "config",
                    "routes",
                    "test",
                    f"--config.file={config}",
                    "--tree",
                    *arguments,
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise Unavailable(f"amtool did not answer within {timeout:g}s") from None
        if completed.returncode != 0:
            output = (completed.stderr + completed.stdout).replace(tmp, "<staging>")
            lines = [line for line in output.splitlines() if not line.startswith("Warning:")]
            raise Invalid(f"amtool could not test the routes: {' '.join(lines).strip()}")
    return parse_tree(completed.stdout)
