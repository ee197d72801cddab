"""Run the default check scripts as the agent does, with fake tools on PATH.

The script is installed and started exactly as ``aami.agent.runner`` starts a check:
``build_argv`` (the interpreter, the script, the config values in order), ``build_env``
(``AAMI_CONFIG_<KEY>``) and the config as JSON on stdin. Only ``PATH`` differs: it names a
directory of fake ``nvidia-smi``, ``nvme`` and ``dmesg`` commands that print the fixtures
in ``fixtures/`` (written for these tests from the tools' documented formats) or fail the
way the real tools fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from aami.agent.client import Check
from aami.agent.output import canonicalise
from aami.agent.runner import RESERVED_PREFIXES, build_argv, build_env
from aami.checks.defaults import DEFAULT_SCRIPT_TEMPLATES

FIXTURES = Path(__file__).parent / "fixtures"
TEMPLATES = {t["name"]: t for t in DEFAULT_SCRIPT_TEMPLATES}

Labels = tuple[tuple[str, str], ...]


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    samples: dict[tuple[str, Labels], float]
    types: dict[str, str]

    def value(self, metric: str, /, **labels: str) -> float:
        """The one sample of ``name`` with exactly these labels."""
        return self.samples[(metric, tuple(sorted(labels.items())))]

    def series(self, name: str) -> dict[Labels, float]:
        """Every sample of ``name``, by its sorted labels."""
        return {labels: v for (n, labels), v in self.samples.items() if n == name}

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}


def check(name: str, config: Mapping[str, object] | None = None) -> Check:
    """The seeded template ``name`` as the agent receives it (template defaults + config)."""
    template = TEMPLATES[name]
    content = template["script_content"]
    merged = {**template["default_config"], **(config or {})}
    return Check.from_json(
        {
            "name": name,
            "script_type": template["script_type"],
            "script_content": content,
            "language": template["language"],
            "config": merged,
            "version": template["version"],
            "hash": hashlib.sha256(content.encode()).hexdigest(),
            "timeout_seconds": template.get("timeout_seconds", 30),
        }
    )


def run(
    name: str,
    tmp_path: Path,
    *,
    path: list[Path],
    config: Mapping[str, object] | None = None,
) -> Run:
    """Run the default script ``name`` like the agent, with ``path`` as PATH; parse its output."""
    item = check(name, config)
    script = tmp_path / f"{name}.script"
    script.write_text(item.script_content)
    script.chmod(0o700)
    env = build_env(item)
    env["PATH"] = os.pathsep.join(str(p) for p in path)
    done = subprocess.run(
        build_argv(item, script),
        input=json.dumps(item.config),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    samples: dict[tuple[str, Labels], float] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(done.stdout):
        types[family.name] = family.type
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = sample.value
    # What the agent would write: its own parser must accept the output as well.
    canonicalise(done.stdout, reserved_prefixes=RESERVED_PREFIXES)
    return Run(done.returncode, done.stdout, done.stderr, samples, types)


def fake_bin(tmp_path: Path, **commands: Mapping[str, object]) -> Path:
    """A directory of fake commands; ``commands[name]`` is the fake's spec (see ``FAKE``)."""
    directory = tmp_path / "bin"
    directory.mkdir(exist_ok=True)
    for command, spec in commands.items():
        (directory / f"{command}.json").write_text(json.dumps(spec))
        tool = directory / command
        tool.write_text(f"#!{sys.executable}\n" + FAKE)
        tool.chmod(0o755)
    return directory


# One fake for every tool. Its spec lists rules; the first whose `match` items are all in
# the argv (an item ending in "=" matches an argument it starts) answers: the fixture file
# (or `stdout` text) on stdout, `stderr`, `exit`. A rule with `fields` checks the
# --query-gpu / --query-remapped-rows list against the fixture's header line, the way
# nvidia-smi refuses a field it does not know; with "noheader" in --format the header is
# not printed.
FAKE = r"""
import json, os, sys
spec = json.load(open(os.path.abspath(sys.argv[0]) + ".json"))
argv = sys.argv[1:]
line = " ".join(argv)


def present(item):
    if item.endswith("="):
        return any(a.startswith(item) for a in argv)
    return item in argv


for rule in spec["rules"]:
    if all(present(m) for m in rule.get("match", [])):
        break
else:
    sys.stderr.write("fake: no rule for: " + line + "\n")
    sys.exit(2)
text = rule.get("stdout", "")
if "file" in rule:
    text = open(rule["file"]).read()
if rule.get("fields"):
    wanted = next(a.split("=", 1)[1] for a in argv if a.startswith(rule["fields"] + "="))
    header, _, body = text.partition("\n")
    have = [h.strip() for h in header.split(",")]
    for field in wanted.split(","):
        if field not in have:
            sys.stdout.write('Field "%s" is not a valid field to query.\n\n' % field)
            sys.exit(2)
    if wanted.split(",") != have:
        sys.stderr.write("fake: fixture columns %s, asked %s\n" % (have, wanted))
        sys.exit(2)
    if "noheader" not in line:
        body = header + "\n" + body
    text = body
sys.stdout.write(text)
sys.stderr.write(rule.get("stderr", ""))
sys.exit(rule.get("exit", 0))
"""


def fixture(*parts: str) -> str:
    return str(FIXTURES.joinpath(*parts))


def boot_time() -> int:
    """/proc/stat's btime: the scripts turn dmesg's seconds since boot into Unix time."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return int(line.split()[1])
    raise AssertionError("no btime in /proc/stat")
