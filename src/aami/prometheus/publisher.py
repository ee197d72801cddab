"""Prometheus as a publishing target: the rule files and the rule groups it has loaded.

Each pass measures three things per scope (a group id, or ``""`` for the global rules):

- desired: the scope's revision in the database, and whether it has enabled rules;
- written: the stamp in the scope's file (revision, fingerprint) and whether the file is
  still exactly what was sealed;
- loaded: the stamp Prometheus reports for the scope's rule group (``/api/v1/rules``).

It renders the scopes whose file is missing, stale or edited (all of them on a full pass),
checks the new files with promtool (one call; a file promtool rejects keeps its previous
version and is reported, the others go on), backs up and renames them into place, removes
the files of scopes left without rules, and reloads Prometheus once when anything was
written or Prometheus runs something other than what is on disk. It then confirms, from
what Prometheus reports, that it runs what was written. A reload Prometheus rejects is
undone from the backups.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sqlalchemy.orm import Session, sessionmaker

from aami.alerts.repository import AlertRuleRepository
from aami.db.revisions import RevisionRepository
from aami.db.session import session_scope
from aami.prometheus.client import (
    PrometheusClient,
    PrometheusError,
    PrometheusUnreachable,
    ReloadForbidden,
    ReloadRejected,
)
from aami.prometheus.rule_files import (
    SENTINEL_RECORD,
    Backup,
    RuleFileStore,
    WrittenFile,
    group_name,
    promtool_check,
)
from aami.prometheus.rule_sets import render_scopes
from aami.publishing.files import Stamp
from aami.publishing.reconciler import Fence, Job
from aami.publishing.types import (
    PassResult,
    Reload,
    Result,
    ScopeSync,
    SyncState,
    Target,
    Validation,
)

__all__ = ["Measured", "RulePublisher"]

log = logging.getLogger(__name__)


@dataclass
class Measured:
    desired: dict[str, int]  # scope -> desired revision (scopes with enabled rules)
    written: dict[str, WrittenFile]  # scope -> what its file says
    loaded: dict[str, Stamp | None] | None  # scope -> what Prometheus runs; None: unknown
    loaded_error: str | None = None

    def scopes(self) -> set[str]:
        return set(self.desired) | set(self.written) | set(self.loaded or {})

    def written_ok(self, scope: str) -> bool:
        file = self.written.get(scope)
        return (
            file is not None
            and file.intact
            and file.stamp is not None
            and file.stamp.revision == self.desired.get(scope)
        )

    def sync(self, errors: dict[str, str] | None = None) -> SyncState:
        errors = errors or {}
        states = []
        for scope in sorted(self.scopes()):
            file = self.written.get(scope)
            loaded = (self.loaded or {}).get(scope)
            states.append(
                ScopeSync(
                    scope=scope,
                    desired=self.desired.get(scope),
                    written=file.stamp if file else None,
                    written_intact=bool(file and file.intact),
                    loaded=loaded,
                    error=errors.get(scope),
                )
            )
        return SyncState(states, self.loaded_error if self.loaded is None else None)


class RulePublisher:
    target = Target.PROMETHEUS

    def __init__(
        self,
        *,
        factory: sessionmaker[Session],
        store: RuleFileStore,
        client: PrometheusClient,
        validate: bool,
        reload_enabled: bool,
        promtool_timeout: float = 30.0,
    ) -> None:
        self.factory = factory
        self.store = store
        self.client = client
        self.validate = validate
        self.reload_enabled = reload_enabled
        self.promtool_timeout = promtool_timeout

    # ---- the target protocol -----------------------------------------------------------

    def revision(self, session: Session) -> int:
        return RevisionRepository(session).area("rules")

    def prepare(self) -> None:
        self.store.ensure()
        self.store.clear_stale_staging()

    def cleanup(self) -> None:
        self.store.discard_staging()

    def measure(self, *, loaded: bool = True) -> Measured:
        """Desired (database), written (files) and, unless told not to, loaded
        (Prometheus), as they are now."""
        with session_scope(self.factory) as session:
            revisions = RevisionRepository(session).rule_scopes()
            active = AlertRuleRepository(session).publishing_scopes()
        desired = {scope: revisions.get(scope, 0) for scope in active}
        written = self.store.written()
        if not loaded:
            return Measured(desired, written, None, None)
        state, error = self.loaded()
        return Measured(desired, written, state, error)

    def loaded(self) -> tuple[dict[str, Stamp | None] | None, str | None]:
        """The stamp of every AAMI rule group Prometheus runs, by scope; None when it
        cannot be asked.

        A group is AAMI's when it carries the stamp rule, or (a file from before stamps)
        when it is named ``aami-<scope>`` and comes from a file named as AAMI names them:
        other ``aami-*`` groups (the shipped rules on AAMI itself) are not.
        """
        try:
            groups = self.client.recording_rules(SENTINEL_RECORD)
        except PrometheusError as exc:
            return None, str(exc)
        loaded: dict[str, Stamp | None] = {}
        for name, group in groups.items():
            if not name.startswith("aami-"):
                continue
            scope = name.removeprefix("aami-")
            scope = "" if scope == "global" else scope
            labels = group.labels
            if labels is None or labels.get("aami_rule_group") != name:
                if self.store.scope_of(PurePosixPath(group.file).name) != scope:
                    continue
                loaded[scope] = None
                continue
            try:
                loaded[scope] = Stamp(int(labels["aami_revision"]), labels["aami_fingerprint"])
            except (KeyError, ValueError):
                loaded[scope] = None
        return loaded, None

    def run(self, job: Job, fence: Fence, result: PassResult) -> SyncState:
        fence()
        self.store.ensure()
        started = time.perf_counter()
        # Desired and written first: what Prometheus runs is asked only after the files
        # are in place (a change waits on no round trip to Prometheus before its rename).
        measured = self.measure(loaded=False)
        result.timings["measure"] = time.perf_counter() - started

        stale = {s for s in measured.desired if not measured.written_ok(s)}
        todo = set(measured.desired) if job.full else (stale | (job.scopes & set(measured.desired)))
        removals = sorted(
            self.store.file_name(s) for s in measured.written if s not in measured.desired
        )
        errors: dict[str, str] = {}

        started = time.perf_counter()
        changed = self._render(todo, measured, result, errors)
        result.timings["render"] = time.perf_counter() - started

        staged = self.store.stage(changed)
        staged = self._validate(staged, result, errors)

        if staged or removals:
            fence()  # the lease is re-checked right before the files change
        started = time.perf_counter()
        undo = self.store.install(staged) + self.store.remove(removals)
        result.timings["write"] = time.perf_counter() - started
        result.files_written = sorted(staged)
        result.files_removed = removals
        result.rule_count = sum(result.rule_counts.get(n, 0) for n in result.files_written)
        if result.files_rejected:
            result.fail(
                Result.PARTIAL if (staged or removals) else Result.FAILED,
                "; ".join(f"{n}: {m}" for n, m in sorted(result.files_rejected.items())),
            )

        written = self.store.written() if (staged or removals) else measured.written
        final = Measured(measured.desired, written, None, None)
        changed_files = bool(staged or removals)
        if not changed_files and not job.force_reload:
            final.loaded, final.loaded_error = self.loaded()
        needs_reload = job.force_reload or changed_files or not self._runs(final)
        if not needs_reload:
            result.reload = Reload.NOT_NEEDED
        elif not self.reload_enabled and not job.force_reload:
            # Someone else reloads Prometheus (an operator's explicit reload still goes);
            # say so only when this pass changed files.
            result.reload = Reload.DISABLED if changed_files else Reload.NOT_NEEDED
            if final.loaded is None and final.loaded_error is None:
                final.loaded, final.loaded_error = self.loaded()
        else:
            fence()
            final = self._reload(undo, final, result, errors)
        if result.result in (Result.OK, Result.PARTIAL, Result.PENDING_RELOAD):
            self.store.forget(undo)
        if result.error:
            for state in final.sync().scopes:
                if not state.in_sync and state.scope not in errors:
                    errors[state.scope] = result.error
        return final.sync(errors)

    @staticmethod
    def _runs(measured: Measured) -> bool:
        """Prometheus runs exactly the files on disk (False when it cannot say)."""
        if measured.loaded is None:
            return False
        wanted = {s: f.stamp for s, f in measured.written.items() if s in measured.desired}
        return all(measured.loaded.get(s) == stamp for s, stamp in wanted.items()) and all(
            s in measured.written for s in measured.loaded
        )

    # ---- steps -------------------------------------------------------------------------

    def _render(
        self, scopes: set[str], measured: Measured, result: PassResult, errors: dict[str, str]
    ) -> dict[str, str]:
        """The new contents of the scopes' files that differ from what is on disk."""
        if not scopes:
            return {}
        with session_scope(self.factory) as session:
            files = render_scopes(session, scopes, measured.desired)
        changed: dict[str, str] = {}
        for scope in sorted(scopes):
            name = self.store.file_name(scope)
            if scope in files.errors:
                result.files_rejected[name] = files.errors[scope]
                errors[scope] = files.errors[scope]
                continue
            content = files.contents.get(scope)
            if content is None:
                continue
            result.rule_counts[name] = files.rule_counts[scope]
            if self.store.read(name) == content:
                result.files_unchanged += 1
                continue
            changed[name] = content
        return changed

    def _validate(
        self, staged: dict[str, Path], result: PassResult, errors: dict[str, str]
    ) -> dict[str, Path]:
        """Keep the staged files promtool accepts; record the others as rejected."""
        if not self.validate or not staged:
            return staged
        started = time.perf_counter()
        check = promtool_check(list(staged.values()), timeout=self.promtool_timeout)
        result.timings["promtool"] = time.perf_counter() - started
        result.validation_output = check.output[-20_000:]
        if check.ok:
            result.validation = Validation.OK
            return staged
        good: dict[str, Path] = {}
        for name, path in staged.items():
            why = check.output if check.tool_failed else check.rejected.get(str(path))
            if why is None:
                good[name] = path
                continue
            result.files_rejected[name] = why
            scope = self.store.scope_of(name)
            if scope is not None:
                errors[scope] = f"promtool: {why}"
        result.validation = Validation.PARTIAL if good else Validation.FAILED
        return good

    def _reload(
        self, undo: list[Backup], measured: Measured, result: PassResult, errors: dict[str, str]
    ) -> Measured:
        """Reload once, then confirm from Prometheus that it runs what was written."""
        started = time.perf_counter()
        try:
            self.client.reload()
        except ReloadRejected as exc:
            result.reload = Reload.REJECTED
            broken = self._broken_foreign_files()
            culprit = f" (a file AAMI does not own is broken: {broken})" if broken else ""
            result.fail(
                Result.ROLLED_BACK,
                f"Prometheus rejected the reload{culprit}; the previous files are restored: {exc}",
            )
            self.store.restore(undo)
            result.files_written, result.files_removed = [], []
            try:
                self.client.reload()
            except PrometheusError as again:
                result.fail(Result.ROLLED_BACK, f"reloading the restored files failed too: {again}")
            measured = self._remeasure(measured)
        except ReloadForbidden as exc:
            result.reload = Reload.FORBIDDEN
            result.fail(Result.FAILED, str(exc))
        except PrometheusUnreachable as exc:
            result.reload = Reload.PENDING
            result.fail(Result.PENDING_RELOAD, f"{exc}; the reload is retried in the background")
        except PrometheusError as exc:
            result.reload = Reload.PENDING
            result.fail(Result.PENDING_RELOAD, str(exc))
        else:
            result.reload = Reload.OK
            measured = self._remeasure(measured)
            self._confirm(measured, result, errors)
        result.timings["reload"] = time.perf_counter() - started
        return measured

    def _remeasure(self, measured: Measured) -> Measured:
        loaded, error = self.loaded()
        return Measured(measured.desired, self.store.written(), loaded, error)

    def _confirm(self, measured: Measured, result: PassResult, errors: dict[str, str]) -> None:
        if measured.loaded is None:
            result.confirmed = False
            result.reload = Reload.UNCONFIRMED
            result.fail(
                Result.FAILED,
                f"reloaded, but the loaded rules could not be read: {measured.loaded_error}",
            )
            return
        missing = []
        for scope, file in measured.written.items():
            if file.stamp is not None and measured.loaded.get(scope) != file.stamp:
                missing.append(scope)
        missing += [s for s in measured.loaded if s not in measured.written]
        result.missing_groups = sorted(group_name(s) for s in missing)
        result.confirmed = not missing
        if missing:
            result.reload = Reload.UNCONFIRMED
            message = (
                "Prometheus reloaded but does not run what is on disk for "
                f"{', '.join(result.missing_groups)}: is {self.store.root}/*.yml in its "
                "rule_files?"
            )
            result.fail(Result.FAILED, message)
            for scope in missing:
                errors.setdefault(scope, message)

    def _broken_foreign_files(self) -> str:
        """Name the files in the rule directory, not AAMI's, that promtool rejects."""
        foreign = self.store.foreign()
        if not foreign:
            return ""
        check = promtool_check(foreign, timeout=self.promtool_timeout)
        if check.ok:
            return ""
        return ", ".join(sorted(check.rejected)) or check.output[:500]

    # ---- on request, from any replica --------------------------------------------------

    def status_now(self) -> SyncState:
        """The sync state measured now (desired, written, loaded); no file is touched."""
        return self.measure().sync()
