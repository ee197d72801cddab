"""One sync pass, and the loop around it.

A pass: fetch the rule set (``If-None-Match`` the revision on disk, long-poll); when it is
new, stage it, validate it with the evaluator's own checker (a refused set is never
installed: the last good rules stay and the error is reported), install it, reload, and
confirm through ``/api/v1/rules`` that every group runs with the set's stamps; then report
the revision confirmed. When nothing changed, confirm again and report again, so AAMI sees
the evaluator is alive and what it runs.

Reports are honest: ``loaded_revision`` is a revision the evaluator was just seen running,
or null when it cannot be read or runs something else.

Failures: a refused set is held (the loop long-polls until AAMI changes it); anything else
(AAMI or the evaluator down, a failed reload, no confirmation in time) is retried with
exponential backoff, the last good rules staying in place.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from aami.rulesync.client import AamiClient, AamiError, RuleSet
from aami.rulesync.evaluator import (
    KINDS,
    Evaluator,
    EvaluatorError,
    Stamp,
    compare,
    expected_stamps,
)
from aami.rulesync.files import (
    FileNameRefused,
    Installed,
    RulesDirectory,
    Staged,
    sha256_text,
)

__all__ = ["PassResult", "StopRequested", "Stopper", "Sync", "SyncSettings"]

log = logging.getLogger("aami.rulesync")


@dataclass(frozen=True, slots=True)
class SyncSettings:
    wait: float = 30  # long-poll seconds
    confirm_timeout: float = 30
    confirm_interval: float = 0.5
    retry_min: float = 1
    retry_max: float = 30
    kind: str | None = None  # None: the rule set's


@dataclass(frozen=True, slots=True)
class PassResult:
    ok: bool
    error: str | None = None
    held: bool = False  # a refused set: wait for AAMI to change it, no backoff
    changed: bool = False  # files were written


class StopRequested(BaseException):
    """SIGTERM/SIGINT outside a section that must finish."""


class Stopper:
    """Stop at once on a signal, except while files are being swapped and reloaded: then
    at the end of that section, so the directory is never left half-way."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._shielded = 0

    def request(self, *_: object) -> None:
        self.event.set()
        if not self._shielded:
            raise StopRequested

    @contextlib.contextmanager
    def shield(self) -> Iterator[None]:
        self._shielded += 1
        try:
            yield
        finally:
            self._shielded -= 1
        if self.event.is_set() and not self._shielded:
            raise StopRequested


class Sync:
    """Keep one evaluator's rules equal to what AAMI wants for it."""

    def __init__(
        self,
        client: AamiClient,
        directory: RulesDirectory,
        evaluators: Callable[[str], Evaluator],
        settings: SyncSettings | None = None,
        *,
        stopper: Stopper | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.directory = directory
        self.settings = settings or SyncSettings()
        self._evaluators = evaluators
        self._made: dict[str, Evaluator] = {}
        self._stopper = stopper
        self._clock = clock
        self._sleep = sleep
        self.directory.ensure()
        self.installed: Installed | None = self.directory.installed()
        self.held: str | None = None  # the revision refused, and why
        self.held_error: str | None = None

    # --- helpers ------------------------------------------------------------------------

    def _shield(self) -> contextlib.AbstractContextManager[None]:
        return self._stopper.shield() if self._stopper else contextlib.nullcontext()

    def _kind(self, installed: Installed) -> str:
        return self.settings.kind or installed.kind

    def evaluator(self, kind: str) -> Evaluator:
        if kind not in self._made:
            self._made[kind] = self._evaluators(kind)
        return self._made[kind]

    def _installed_stamps(self) -> dict[str, Stamp] | None:
        if self.installed is None:
            return None
        try:
            return expected_stamps(self.directory.contents(self.installed))
        except ValueError:
            return None

    def _problems(self, evaluator: Evaluator, expected: dict[str, Stamp]) -> list[str]:
        try:
            return compare(expected, evaluator.loaded())
        except EvaluatorError as exc:
            return [str(exc)]

    def _observed(self) -> str | None:
        """The installed revision if the evaluator runs it right now, else None."""
        expected = self._installed_stamps()
        if self.installed is None or expected is None:
            return None
        evaluator = self.evaluator(self._kind(self.installed))
        return None if self._problems(evaluator, expected) else self.installed.revision

    def _confirm(self, evaluator: Evaluator, expected: dict[str, Stamp]) -> list[str]:
        """Poll ``/api/v1/rules`` until it shows ``expected`` or the time is up."""
        deadline = self._clock() + self.settings.confirm_timeout
        while True:
            problems = self._problems(evaluator, expected)
            if not problems or self._clock() >= deadline:
                return problems
            self._sleep(self.settings.confirm_interval)

    def _report(self, loaded: str | None, error: str | None) -> bool:
        try:
            self.client.report(loaded, error)
        except AamiError as exc:
            log.warning("cannot report to AAMI: %s", exc)
            return False
        return True

    def _fail(self, loaded: str | None, error: str, *, held: bool = False) -> PassResult:
        log.error("%s", error)
        self._report(loaded, error)
        return PassResult(False, error, held=held)

    def _refuse(self, revision: str, error: str) -> PassResult:
        self.held, self.held_error = revision, error
        return self._fail(self._observed(), error, held=True)

    # --- a pass -------------------------------------------------------------------------

    def step(self, wait: float = 0) -> PassResult:
        """One pass: fetch, and install what is new or confirm what is there; report."""
        self.installed = self.directory.installed()  # a file changed by hand is rewritten
        etag = self.held or (self.installed.revision if self.installed else None)
        try:
            rule_set = self.client.fetch(etag, wait)
        except AamiError as exc:
            error = f"AAMI: {exc}; the rules in place stay"
            log.error("%s", error)
            return PassResult(False, error)
        if rule_set is None:
            return self._recheck()
        return self._apply(rule_set)

    def _recheck(self) -> PassResult:
        """Nothing new from AAMI: tell it again what the evaluator runs."""
        errors = [self.held_error] if self.held_error else []
        loaded = None
        expected = self._installed_stamps()
        if self.installed is None or expected is None:
            errors.append("no rules installed yet")
        else:
            kind = self._kind(self.installed)
            problems = self._problems(self.evaluator(kind), expected)
            if problems:
                short = self.installed.revision[:12]
                errors.append(f"{kind} does not run revision {short}: " + "; ".join(problems))
            else:
                loaded = self.installed.revision
        if errors:
            return self._fail(loaded, "; ".join(errors), held=self.held is not None)
        if not self._report(loaded, None):
            return PassResult(False, "cannot report to AAMI")
        return PassResult(True)

    def _apply(self, rule_set: RuleSet) -> PassResult:
        kind = self.settings.kind or rule_set.kind
        revision = rule_set.revision
        short = revision[:12]
        if kind not in KINDS:
            return self._refuse(revision, f"revision {short}: unknown evaluator kind {kind!r}")
        self.held = self.held_error = None
        if self.installed is not None and self.installed.revision == revision:
            return self._recheck()
        contents = rule_set.contents()
        try:
            expected = expected_stamps(contents)
            staged = self.directory.stage(contents)
        except (FileNameRefused, ValueError) as exc:
            return self._refuse(revision, f"revision {short} refused: {exc}")
        evaluator = self.evaluator(kind)
        problem = evaluator.validate(staged.directory, list(staged.paths.values()))
        if problem is not None:
            self.directory.discard(staged)
            return self._refuse(
                revision, f"revision {short} refused by {evaluator.tool}: {problem}"
            )
        return self._install(rule_set, kind, staged, expected)

    def _install(
        self, rule_set: RuleSet, kind: str, staged: Staged, expected: dict[str, Stamp]
    ) -> PassResult:
        evaluator = self.evaluator(kind)
        revision, short = rule_set.revision, rule_set.revision[:12]
        new = Installed(revision, kind, {f.name: sha256_text(f.content) for f in rule_set.files})
        with self._shield():
            undo = self.directory.install(staged, new)
            try:
                evaluator.reload()
            except EvaluatorError as exc:
                self.directory.restore(undo)
                self.installed = self.directory.installed()
                error = f"revision {short}: reload failed: {exc}; the previous rules are back"
                return self._fail(self._observed(), error)
            self.directory.commit(undo)
            self.installed = new
        log.info("revision %s installed (%d files), %s reloaded", short, len(new.files), kind)
        problems = self._confirm(evaluator, expected)
        if problems:
            error = (
                f"revision {short} installed but {kind} does not run it after "
                f"{self.settings.confirm_timeout:g}s: " + "; ".join(problems)
            )
            return self._fail(None, error)
        log.info("revision %s confirmed in %s", short, kind)
        if not self._report(revision, None):
            return PassResult(False, "cannot report to AAMI", changed=True)
        return PassResult(True, changed=True)

    # --- the loop -----------------------------------------------------------------------

    def run_once(self) -> PassResult:
        """One pass without long-polling (``--once``)."""
        return self.step(wait=0)

    def run_forever(self, stop: threading.Event) -> None:
        """Pass after pass until ``stop``: long-poll while all is well, back off on failure."""
        failures = 0
        wait = 0.0  # the first pass answers at once: confirm and report after a restart
        while not stop.is_set():
            started = self._clock()
            result = self.step(wait)
            if result.ok or result.held:
                failures, wait = 0, self.settings.wait
                # A server that answers a long-poll at once must not make this spin.
                pause = max(0.0, self.settings.retry_min - (self._clock() - started))
            else:
                failures += 1
                wait = 0.0
                pause = min(self.settings.retry_max, self.settings.retry_min * 2 ** (failures - 1))
                log.info("retrying in %gs", pause)
            if pause:
                stop.wait(pause)
