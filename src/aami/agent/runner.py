"""Run checks and write textfiles: one agent run (``run_once``) and the loop (``run_forever``).

A check runs only if its script matches its sha256 and one of its signatures verifies with
a key this node pinned (``aami.agent.signing``); a refused check is reported, the others run.
It runs as ``[interpreter, script, *config values]`` in its own session, never through a
shell string, with the config also in ``AAMI_CONFIG_<KEY>`` and as JSON on stdin. Its output
is parsed before anything is written; a failed check leaves its previous file in place.
While checks run, a watchdog process (``aami.agent.watchdog``) holds their process groups and
kills them if the agent dies, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import select
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

import httpx

from aami.agent.client import Check, ChecksClient, ServerError, SyncResult, sync_checks
from aami.agent.config import AgentConfig
from aami.agent.output import MetricFamily, OutputError, Sample, canonicalise, serialise
from aami.agent.signing import KeysError, load_keys, save_keys, update_trust, verify_check
from aami.agent.watchdog import command as watchdog_command

__all__ = [
    "AGENT_FILE",
    "INTERPRETERS",
    "RESERVED_PREFIXES",
    "AgentBusy",
    "CheckResult",
    "RunReport",
    "Watchdog",
    "agent_metrics",
    "build_argv",
    "build_env",
    "check_filename",
    "config_value",
    "install_script",
    "remove_stale",
    "run_check",
    "run_checks",
    "run_forever",
    "run_once",
    "write_textfile",
]

log = logging.getLogger("aami.agent")

AGENT_FILE = "aami_agent.prom"
RESERVED_PREFIXES = ("aami_check_", "aami_agent_")
INTERPRETERS = {"bash": "/bin/bash", "sh": "/bin/sh", "python": sys.executable}
EXTENSIONS = {"bash": "sh", "sh": "sh", "python": "py"}
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_CHUNK = 65536
_STDERR_KEEP = 4096
_CHECK_FILE_RE = re.compile(r"aami_[a-zA-Z0-9_-]+\.prom")
_CHECK_TEMP_RE = re.compile(r"\.aami_[a-zA-Z0-9_-]+\.prom\.tmp")
_SCRIPT_RE = re.compile(r"[0-9a-f]{64}\.(sh|py)")
_WATCHDOG_EXIT_SECONDS = 5.0


class AgentBusy(Exception):
    """Another agent run holds the lock on the cache directory."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check: ``output`` is canonical Prometheus text when ``ok``."""

    name: str
    ok: bool
    reason: str | None = None
    detail: str = ""
    output: str | None = None
    started_at: float = 0.0
    duration: float = 0.0
    exit_code: int | None = None
    stdout_bytes: int = 0
    pgid: int | None = None


@dataclass(frozen=True, slots=True)
class RunReport:
    """What one agent run did."""

    sync: SyncResult
    results: list[CheckResult]
    removed: list[str]
    duration: float

    @property
    def exit_code(self) -> int:
        """0 if there was a check list and every check succeeded, else 1."""
        if self.sync.checks is None:
            return 1
        return 0 if all(result.ok for result in self.results) else 1


@dataclass(frozen=True, slots=True)
class _Execution:
    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool
    too_large: bool


class Watchdog:
    """The agent's side of the check watchdog (``aami.agent.watchdog``); thread-safe.

    ``register`` a check's process group right after spawning it and ``unregister`` it once
    the group is killed; ``close`` when no check runs. If the agent dies in between, the
    kernel closes the pipe and the watchdog kills the groups still registered. A watchdog
    that is gone never fails a check: the first failed write is logged, later ones skipped.
    """

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None
        self.process = process
        self._stdin = process.stdin
        self._lock = threading.Lock()
        self._broken = False

    @classmethod
    def start(cls) -> Watchdog:
        """Start the watchdog process in its own session, its stdin a pipe from us."""
        process = subprocess.Popen(
            watchdog_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,  # a terminal's Ctrl-C must not reach it
            close_fds=True,
        )
        assert process.stdin is not None
        # A watchdog that stops reading must not block a check: a full pipe is a failure.
        os.set_blocking(process.stdin.fileno(), False)
        return cls(process)

    @property
    def pid(self) -> int:
        """The watchdog's process id."""
        return self.process.pid

    def register(self, pgid: int) -> None:
        """Have group ``pgid`` killed if the agent dies before ``unregister(pgid)``."""
        self._send(f"+{pgid}\n")

    def unregister(self, pgid: int) -> None:
        """Forget group ``pgid``: call it before reaping the leader, while the pgid is ours."""
        self._send(f"-{pgid}\n")

    def close(self) -> None:
        """Close the pipe (the watchdog kills any group still registered) and reap it."""
        with self._lock:
            self._broken = True
            self._stdin.close()
        if not _reap(self.process, _WATCHDOG_EXIT_SECONDS):
            log.warning("the check watchdog (pid %d) did not exit; killing it", self.pid)
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Watchdog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, message: str) -> None:
        with self._lock:
            if self._broken:
                return
            try:
                # One write of less than PIPE_BUF bytes: atomic, never split.
                os.write(self._stdin.fileno(), message.encode("ascii"))
            except OSError as exc:
                self._broken = True
                log.warning(
                    "the check watchdog (pid %d) is gone (%s): until the next run, checks "
                    "would outlive a killed agent",
                    self.pid,
                    exc,
                )


def check_filename(name: str) -> str:
    """The textfile a check writes: ``aami_<name>.prom``, the name made safe for a path."""
    return f"aami_{re.sub(r'[^a-zA-Z0-9_-]', '_', name)}.prom"


def config_value(value: object) -> str:
    """A config value as one argv/env string (JSON spelling for non-strings)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"))


def build_argv(check: Check, script: Path) -> list[str]:
    """``[interpreter, script, *config values]``: values are data, never shell words."""
    return [INTERPRETERS[check.language], str(script), *map(config_value, check.config.values())]


def build_env(check: Check) -> dict[str, str]:
    """A minimal environment plus ``AAMI_CONFIG_<KEY>`` per config key."""
    env = {"PATH": SAFE_PATH, "HOME": os.path.expanduser("~"), "LANG": "C.UTF-8"}
    for key, value in check.config.items():
        env["AAMI_CONFIG_" + re.sub(r"[^A-Z0-9_]", "_", key.upper())] = config_value(value)
    return env


def install_script(check: Check, scripts_dir: Path) -> Path:
    """Write a verified script to ``<scripts_dir>/<sha256>.<ext>`` (0700) unless it is there."""
    data = check.script_content.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    path = scripts_dir / f"{digest}.{EXTENSIONS[check.language]}"
    with contextlib.suppress(OSError):
        if path.read_bytes() == data and (path.stat().st_mode & 0o777) == 0o700:
            return path
    fd, temp = tempfile.mkstemp(dir=scripts_dir, prefix=f".{digest}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            os.fchmod(handle.fileno(), 0o700)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def run_check(
    check: Check,
    script: Path,
    *,
    max_output_bytes: int,
    work_dir: Path | None = None,
    watchdog: Watchdog | None = None,
) -> CheckResult:
    """Run one installed check and parse its output; ``watchdog`` guards its process group."""
    started_at, start = time.time(), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="check-", dir=work_dir) as cwd:
        try:
            execution, pgid = _execute(
                build_argv(check, script),
                env=build_env(check),
                stdin=json.dumps(check.config).encode("utf-8"),
                cwd=cwd,
                timeout=check.timeout_seconds,
                limit=max_output_bytes,
                watchdog=watchdog,
            )
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in argv or env
            duration = time.monotonic() - start
            return CheckResult(
                check.name, False, "exec_error", str(exc), None, started_at, duration
            )
    result = CheckResult(
        check.name,
        True,
        started_at=started_at,
        duration=time.monotonic() - start,
        exit_code=execution.returncode,
        stdout_bytes=len(execution.stdout),
        pgid=pgid,
    )
    if execution.timed_out:
        return replace(result, ok=False, reason="timeout", detail=f"{check.timeout_seconds:g}s")
    if execution.too_large:
        detail = f"more than {max_output_bytes} bytes of output"
        return replace(result, ok=False, reason="output_too_large", detail=detail)
    if execution.returncode != 0:
        stderr = execution.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = f"exit code {execution.returncode}" + (f": {stderr[-1]}" if stderr else "")
        return replace(result, ok=False, reason="exit_code", detail=detail)
    try:
        output = canonicalise(execution.stdout, reserved_prefixes=RESERVED_PREFIXES)
    except OutputError as exc:
        return replace(result, ok=False, reason="bad_output", detail=str(exc))
    return replace(result, output=output)


def run_checks(
    checks: Sequence[Check],
    *,
    keys: Mapping[str, bytes],
    scripts_dir: Path,
    parallelism: int,
    max_output_bytes: int,
    work_dir: Path | None = None,
    watchdog: Watchdog | None = None,
) -> list[CheckResult]:
    """Verify (hash, then a signature by one of ``keys``), install and run checks in
    parallel; results in the order of ``checks``. A refused check fails alone.

    ``watchdog`` kills the checks' process groups if the agent dies while they run.
    """
    results: list[CheckResult | None] = [None] * len(checks)
    jobs: list[tuple[int, Check, Path]] = []
    files: set[str] = {AGENT_FILE}
    scripts_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for index, check in enumerate(checks):
        failure = _refuse(check, files, keys)
        if failure is None:
            try:
                jobs.append((index, check, install_script(check, scripts_dir)))
            except OSError as exc:
                failure = ("exec_error", f"cannot install the script: {exc}")
        if failure is not None:
            results[index] = CheckResult(check.name, False, *failure, started_at=time.time())
    if jobs:
        with ThreadPoolExecutor(max_workers=min(parallelism, len(jobs))) as pool:
            futures = {
                index: pool.submit(
                    run_check,
                    check,
                    script,
                    max_output_bytes=max_output_bytes,
                    work_dir=work_dir,
                    watchdog=watchdog,
                )
                for index, check, script in jobs
            }
            for index, future in futures.items():
                results[index] = future.result()
    return [result for result in results if result is not None]


def write_textfile(directory: Path, filename: str, content: str) -> None:
    """Write ``directory/filename`` atomically via ``.<filename>.tmp`` (fsync, rename)."""
    temp = directory / f".{filename}.tmp"
    temp.unlink(missing_ok=True)
    # O_EXCL|O_NOFOLLOW: a symlink planted at the temp name cannot redirect a root write.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temp, flags, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content.encode("utf-8"))
            handle.flush()
            os.fchmod(handle.fileno(), 0o644)  # node_exporter may run as another user
            os.fsync(handle.fileno())
        os.replace(temp, directory / filename)  # rename(2) is atomic
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def remove_stale(directory: Path, keep: set[str]) -> list[str]:
    """Delete ``aami_*.prom`` files of checks no longer assigned (never the agent's own)."""
    removed: list[str] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            name = entry.name
            stale = _CHECK_FILE_RE.fullmatch(name) and name != AGENT_FILE and name not in keep
            # Temp files can only be left by a crashed run: we hold the lock.
            if (stale or _CHECK_TEMP_RE.fullmatch(name)) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    if stale:
                        removed.append(name)
    return sorted(removed)


def agent_metrics(
    sync: SyncResult,
    results: Sequence[CheckResult],
    duration: float,
    keys: Sequence[str] = (),
) -> str:
    """The agent's own metrics file, as Prometheus text (``keys``: pinned key ids)."""
    per_check: list[MetricFamily] = [
        MetricFamily("aami_check_success", "gauge", "1 if the check's last run succeeded."),
        MetricFamily("aami_check_duration_seconds", "gauge", "Duration of the check's last run."),
        MetricFamily(
            "aami_check_last_run_timestamp_seconds", "gauge", "Unix time of the check's last run."
        ),
    ]
    failures = MetricFamily("aami_check_failure", "gauge", "1 for a failed check, by reason.")
    seen: set[str] = set()
    for result in results:
        labels = (("check", result.name),)
        if not result.ok:
            sample = Sample(failures.name, (*labels, ("reason", result.reason or "")), 1.0)
            if sample not in failures.samples:
                failures.samples.append(sample)
        if result.name in seen:  # a duplicate name: one series, or the file is invalid
            continue
        seen.add(result.name)
        values = (1.0 if result.ok else 0.0, result.duration, result.started_at)
        for family, value in zip(per_check, values, strict=True):
            family.samples.append(Sample(family.name, labels, value))

    def single(name: str, help_text: str, value: float) -> MetricFamily:
        return MetricFamily(name, "gauge", help_text, [Sample(name, (), value)])

    sync_error = MetricFamily(
        "aami_agent_sync_error",
        "gauge",
        "1 when the last fetch failed, by reason (insecure_http, tls, unreachable, ...).",
    )
    if sync.error:
        sync_error.samples.append(Sample(sync_error.name, (("reason", sync.error),), 1.0))
    pinned = MetricFamily(
        "aami_agent_signing_key_info", "gauge", "A check-signing key this node trusts."
    )
    pinned.samples.extend(Sample(pinned.name, (("key_id", kid),), 1.0) for kid in keys)
    return serialise(
        [
            *per_check,
            failures,
            sync_error,
            pinned,
            single(
                "aami_agent_last_sync_timestamp_seconds",
                "Unix time the check list was last fetched from the server (0: never).",
                sync.last_sync or 0.0,
            ),
            single(
                "aami_agent_server_reachable",
                "1 if the server answered the last fetch.",
                1.0 if sync.server_reachable else 0.0,
            ),
            single(
                "aami_agent_sync_success",
                "1 if the last fetch returned the check list (200 or 304).",
                1.0 if sync.sync_ok else 0.0,
            ),
            single(
                "aami_agent_checks",
                "Checks assigned to this node.",
                float(len(sync.checks or [])),
            ),
            single(
                "aami_agent_run_duration_seconds", "Duration of the agent's last run.", duration
            ),
        ]
    )


def run_once(config: AgentConfig, *, transport: httpx.BaseTransport | None = None) -> RunReport:
    """Fetch the checks (or use the cache), run them, write the textfiles."""
    start = time.monotonic()
    config.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(config.cache_dir / "agent.lock"):
        # Started before the fetch so that it boots while the server answers.
        with _started_watchdog() as watchdog:
            with ChecksClient(
                config.server_url,
                config.token,
                timeout=config.request_timeout_seconds,
                transport=transport,
                ca_file=config.ca_file,
                insecure_http=config.insecure_http,
            ) as client:
                sync = sync_checks(
                    client,
                    config.cache_dir / "checks.json",
                    target_id=config.target_id,
                    hostname=config.hostname,
                )
                if sync.message:
                    log.log(
                        logging.ERROR if sync.error == "insecure_http" else logging.WARNING,
                        "%s",
                        sync.message,
                    )
                keys = _trusted_keys(config.keys_path, client if sync.source == "server" else None)
            checks = sync.checks or []
            scripts_dir = config.cache_dir / "scripts"
            work_dir = config.cache_dir / "work"
            work_dir.mkdir(exist_ok=True, mode=0o700)
            results = run_checks(
                checks,
                keys=keys,
                scripts_dir=scripts_dir,
                parallelism=config.parallelism,
                max_output_bytes=config.max_output_bytes,
                work_dir=work_dir,
                watchdog=watchdog,
            )
        config.textfile_dir.mkdir(parents=True, exist_ok=True)
        results = [_publish(config.textfile_dir, result) for result in results]
        removed: list[str] = []
        if sync.checks is not None:  # without a known list we cannot tell what is stale
            removed = remove_stale(config.textfile_dir, {check_filename(c.name) for c in checks})
            _prune_scripts(scripts_dir, checks)
        duration = time.monotonic() - start
        write_textfile(
            config.textfile_dir, AGENT_FILE, agent_metrics(sync, results, duration, list(keys))
        )
        _fsync_dir(config.textfile_dir)
    report = RunReport(sync, results, removed, duration)
    _log_report(report)
    return report


def run_forever(
    config: AgentConfig, stop: threading.Event, *, transport: httpx.BaseTransport | None = None
) -> None:
    """Run every ``interval_seconds`` until ``stop`` is set."""
    while not stop.is_set():
        started = time.monotonic()
        try:
            run_once(config, transport=transport)
        except AgentBusy as exc:
            log.warning("%s", exc)
        except Exception:  # a loop that dies on one bad run stops all monitoring
            log.exception("agent run failed")
        stop.wait(max(0.0, config.interval_seconds - (time.monotonic() - started)))


def _trusted_keys(path: Path, client: ChecksClient | None) -> dict[str, bytes]:
    """The pinned keys; with ``client`` (a new check list came), follow a key rotation first.

    The server's key document adds a key only with an endorsement by a pinned one, and
    retires pinned keys it no longer offers (``aami.agent.signing.update_trust``).
    """
    try:
        keys = load_keys(path)
    except KeysError as exc:
        log.error("%s: every check is refused until it is fixed (aami agent pin-keys)", exc)
        return {}
    if not keys:
        log.error(
            "no pinned check-signing key in %s: every check is refused; register the node "
            "(aami agent register) or pin the server's keys (aami agent pin-keys)",
            path,
        )
        return keys
    if client is None:
        return keys
    try:
        update = update_trust(keys, client.fetch_signing_keys())
    except ServerError as exc:
        log.warning("cannot read the server's signing keys (%s); keeping the pinned ones", exc)
        return keys
    if update.changed:
        try:
            save_keys(path, update.keys)
        except OSError as exc:
            log.error("cannot update the pinned signing keys %s: %s", path, exc)
            return keys
        log.warning(
            "signing keys: pinned %s, retired %s",
            ", ".join(update.added) or "none",
            ", ".join(update.removed) or "none",
        )
    return update.keys


def _refuse(check: Check, files: set[str], keys: Mapping[str, bytes]) -> tuple[str, str] | None:
    """Why a check must not run (reason, detail), or None; records its file name."""
    filename = check_filename(check.name)
    if filename in files:
        return "name_conflict", f"another check (or the agent) already writes {filename}"
    files.add(filename)
    if check.language not in INTERPRETERS:
        return "unsupported_language", f"language {check.language!r}"
    digest = hashlib.sha256(check.script_content.encode("utf-8")).hexdigest()
    if digest != check.hash.strip().lower():
        return "hash_mismatch", f"sha256 of the script is {digest}, the server said {check.hash}"
    refusal = verify_check(check.message(), check.signatures, keys)
    if refusal is not None:
        signers = ", ".join(s.key_id for s in check.signatures) or "none"
        return refusal, f"signed by {signers}; pinned {', '.join(keys) or 'none'}"
    return None


@contextlib.contextmanager
def _started_watchdog() -> Iterator[Watchdog | None]:
    """A watchdog for one run's checks; None (and a warning) if it cannot be started."""
    guard: Watchdog | None
    try:
        guard = Watchdog.start()
    except OSError as exc:
        log.warning(
            "cannot start the check watchdog (%s): checks would outlive a killed agent", exc
        )
        guard = None
    if guard is None:  # outside the except block: the run's own errors are not "during" it
        yield None
        return
    with guard:
        yield guard


def _execute(
    argv: list[str],
    *,
    env: dict[str, str],
    stdin: bytes,
    cwd: str,
    timeout: float,
    limit: int,
    watchdog: Watchdog | None = None,
) -> tuple[_Execution, int]:
    """Run ``argv`` in a new session; kill its whole process group when it is done."""
    # A file, not a pipe, for stdin: a script that never reads it cannot block us.
    with tempfile.TemporaryFile() as stdin_file:
        stdin_file.write(stdin)
        stdin_file.seek(0)
        process = subprocess.Popen(
            argv,
            stdin=stdin_file,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    with process:
        try:
            if watchdog is not None:
                watchdog.register(process.pid)
            stdout, stderr, timed_out, too_large = _collect(process, timeout, limit)
        finally:
            # The leader is not reaped yet, so its pid still names this group and cannot
            # have been reused: killing the group reaches only the check's processes. The
            # same holds for the watchdog, so it lets go of the group before the reaping.
            _kill_group(process.pid)
            if watchdog is not None:
                watchdog.unregister(process.pid)
        returncode = process.wait()
    return _Execution(returncode, stdout, stderr, timed_out, too_large), process.pid


def _collect(
    process: subprocess.Popen[bytes], timeout: float, limit: int
) -> tuple[bytes, bytes, bool, bool]:
    """Read stdout (at most ``limit`` bytes) and stderr until exit, the deadline or the limit."""
    assert process.stdout is not None
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    stdout, stderr = bytearray(), bytearray()
    with selectors.DefaultSelector() as selector, _exit_fd(process.pid) as exit_fd:
        selector.register(process.stdout, selectors.EVENT_READ, "stdout")
        selector.register(process.stderr, selectors.EVENT_READ, "stderr")
        if exit_fd is not None:
            selector.register(exit_fd, selectors.EVENT_READ, "exit")
        exited = exit_fd is not None  # with a pidfd, its event is what ends the loop
        while selector.get_map() or not exited:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bytes(stdout), bytes(stderr), True, False
            if not exited:  # no pidfd: poll for the leader's exit
                remaining = min(remaining, 0.05)
                if _has_exited(process.pid):
                    exited = True
                    _kill_group(process.pid)
            for key, _ in selector.select(remaining):
                if key.data == "exit":
                    # The script is done: whatever it left running would hold our pipes
                    # open (and run on unsupervised), so the group goes now.
                    selector.unregister(key.fileobj)
                    _kill_group(process.pid)
                    continue
                want = _CHUNK if key.data == "stderr" else min(_CHUNK, limit + 1 - len(stdout))
                chunk = os.read(key.fd, want)
                if not chunk:
                    selector.unregister(key.fileobj)
                elif key.data == "stdout":
                    stdout += chunk
                    if len(stdout) > limit:
                        return bytes(stdout), bytes(stderr), False, True
                else:
                    stderr += chunk
                    del stderr[:-_STDERR_KEEP]
    return bytes(stdout), bytes(stderr), False, False


@contextlib.contextmanager
def _exit_fd(pid: int) -> Iterator[int | None]:
    """A pidfd that becomes readable when ``pid`` exits (Linux 5.3+), else None."""
    fd: int | None
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    try:
        yield fd
    finally:
        if fd is not None:
            os.close(fd)


def _reap(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to ``timeout`` for ``process`` to exit and reap it; False if it did not."""
    with _exit_fd(process.pid) as exit_fd:
        if exit_fd is not None:  # woken by the exit itself, not by Popen.wait's polling
            poller = select.poll()
            poller.register(exit_fd, select.POLLIN)
            poller.poll(timeout * 1000)
            timeout = 0
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def _has_exited(pid: int) -> bool:
    """Whether ``pid`` has exited, without reaping it (WNOWAIT keeps its pid reserved)."""
    try:
        status = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return status is not None


def _kill_group(pgid: int) -> None:
    """SIGKILL a process group; a group that is already gone is fine."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except OSError as exc:
        log.warning("cannot kill process group %d: %s", pgid, exc)


def _publish(directory: Path, result: CheckResult) -> CheckResult:
    """Write a successful check's textfile; a failed check leaves its old file in place."""
    if not result.ok or result.output is None:
        return result
    try:
        write_textfile(directory, check_filename(result.name), result.output)
    except OSError as exc:
        return replace(result, ok=False, reason="write_error", detail=str(exc))
    return result


def _prune_scripts(scripts_dir: Path, checks: Sequence[Check]) -> None:
    """Delete cached scripts that no assigned check uses any more."""
    keep = {
        f"{hashlib.sha256(c.script_content.encode('utf-8')).hexdigest()}.{EXTENSIONS[c.language]}"
        for c in checks
        if c.language in EXTENSIONS
    }
    with contextlib.suppress(FileNotFoundError), os.scandir(scripts_dir) as entries:
        for entry in entries:
            if _SCRIPT_RE.fullmatch(entry.name) and entry.name not in keep:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def _fsync_dir(directory: Path) -> None:
    """Make this run's renames durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock so two runs never interleave their writes."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AgentBusy(f"another agent run holds {path}") from None
        yield
    finally:
        os.close(fd)


def _log_report(report: RunReport) -> None:
    """One line per run; one more per failed check with its reason and detail."""
    failed = [result for result in report.results if not result.ok]
    for result in failed:
        log.warning("check %s failed: %s: %s", result.name, result.reason, result.detail)
    source = {
        "server": "from the server",
        "not_modified": "unchanged (304)",
        "cache": "from the cache",
        "none": "none available",
    }[report.sync.source]
    summary = (
        f"run: {len(report.results)} checks ({source}), "
        f"{len(report.results) - len(failed)} ok, {len(failed)} failed"
    )
    if failed:
        summary += " [" + ", ".join(f"{r.name}: {r.reason}" for r in failed) + "]"
    if report.removed:
        summary += f", removed {', '.join(report.removed)}"
    log.info("%s in %.2fs", summary, report.duration)
