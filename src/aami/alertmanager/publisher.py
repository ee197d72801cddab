"""Alertmanager as a publishing target: the managed config file and the config it runs.

The config is the shipped base plus the managed receivers and routes, rendered from the
database. A request that changes a channel or route only validates the resulting config
(``amtool check-config``) before its transaction commits; writing the file, reloading
Alertmanager and confirming what it runs happen after the commit, in the reconciler.

The file is stamped like a rule file: a comment line, and a receiver with no
integrations named ``aami-config-r<revision>-<fingerprint>``, which Alertmanager reports
back in ``/api/v2/status`` (its re-serialised config drops comments, not receivers).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session, sessionmaker

from aami.alertmanager.client import AlertmanagerClient, AlertmanagerError, AlertmanagerUnreachable
from aami.alertmanager.rendering import (
    HISTORY_RECEIVER,
    ChannelSpec,
    ConfigError,
    HistorySpec,
    RouteSpec,
    render_config,
)
from aami.alertmanager.repository import ChannelRepository, RouteRepository
from aami.alertmanager.schemas import Matcher
from aami.common.files import write_atomic
from aami.config import Settings
from aami.db.revisions import RevisionRepository
from aami.db.session import session_scope
from aami.errors import Invalid, Unavailable
from aami.publishing.files import (
    FINGERPRINT_PLACEHOLDER,
    Stamp,
    read_stamp,
    seal,
    stamp_line,
    verify,
)
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

__all__ = ["SCOPE", "AlertmanagerPublisher", "Rendered"]

SCOPE = "config"
_SENTINEL = re.compile(r"^aami-config-r(\d+)-([0-9a-f]{16})$")


class Rendered:
    def __init__(self, text: str, fingerprint: str, secrets: dict[str, str], revision: int):
        self.text = text
        self.fingerprint = fingerprint
        self.secrets = secrets
        self.revision = revision


class AlertmanagerPublisher:
    target = Target.ALERTMANAGER

    def __init__(
        self,
        *,
        factory: sessionmaker[Session],
        settings: Settings,
        client: AlertmanagerClient,
        tool_timeout: float = 10.0,
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.client = client
        self.tool_timeout = tool_timeout

    @property
    def managed(self) -> bool:
        return self.settings.alertmanager_config_path is not None

    @property
    def path(self) -> Path | None:
        return self.settings.alertmanager_config_path

    @property
    def secrets_dir(self) -> Path:
        path = self.settings.alertmanager_config_path
        root = path.parent if path is not None else Path(tempfile.gettempdir())
        return root / "aami-secrets"

    # ---- rendering and validation (also used inside requests) --------------------------

    def _base(self) -> dict[str, Any]:
        path = self.settings.alertmanager_base_config
        if path is None:
            return {"route": {"receiver": "default"}, "receivers": [{"name": "default"}]}
        try:
            base: dict[str, Any] = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise Invalid(f"the shipped Alertmanager config {path} cannot be read: {exc}") from None
        return base

    def render(self, session: Session, *, with_history: bool = True) -> Rendered:
        """The config the session's state makes, stamped with the ``alerting`` revision;
        ``with_history=False`` leaves the alert-history receiver out (the route tester)."""
        channels = ChannelRepository(session).all()
        specs = [ChannelSpec(c.name, c.type, c.settings, bool(c.secret)) for c in channels]
        routes = [
            RouteSpec(
                name=r.name,
                receiver=r.receiver.name,
                matchers=tuple(Matcher.model_validate(m).promql() for m in r.matchers),
                position=r.position,
                continue_=r.continue_,
                group_by=tuple(r.group_by) if r.group_by is not None else None,
                group_wait=r.group_wait,
                group_interval=r.group_interval,
                repeat_interval=r.repeat_interval,
            )
            for r in RouteRepository(session).all()
        ]
        history = self._history() if with_history else None
        try:
            config = render_config(
                self._base(), specs, routes, secrets_dir=self.secrets_dir, history=history
            )
        except ConfigError as exc:
            raise Invalid(str(exc)) from None
        revision = RevisionRepository(session).area("alerting")
        config.setdefault("receivers", []).append(
            {"name": f"aami-config-r{revision}-{FINGERPRINT_PLACEHOLDER}"}
        )
        header = (
            "# Generated by AAMI from the shipped config and its managed routes.\n"
            f"# {stamp_line(revision)}\n"
        )
        text, fingerprint = seal(header + yaml.safe_dump(config, sort_keys=False))
        secrets = {c.name: c.secret for c in channels if c.secret}
        if history is not None and self.settings.history_token:
            secrets[HISTORY_RECEIVER] = self.settings.history_token
        return Rendered(text, fingerprint, secrets, revision)

    def _history(self) -> HistorySpec | None:
        """The history webhook, when AAMI_HISTORY_WEBHOOK_URL and the token are set."""
        settings = self.settings
        if not (settings.history_webhook_url and settings.history_token):
            return None
        ca_file = settings.history_webhook_ca_file
        return HistorySpec(
            url=settings.history_webhook_url,
            credentials_file=str(self.secrets_dir / HISTORY_RECEIVER),
            ca_file=str(ca_file) if ca_file is not None else None,
        )

    def check(self, rendered: Rendered) -> None:
        """``amtool check-config`` on the rendered config; ``Invalid`` with its words."""
        amtool = shutil.which("amtool")
        if amtool is None:
            raise Invalid(
                "amtool is not installed, so the Alertmanager config cannot be "
                "checked; install the prometheus-alertmanager package"
            )
        with tempfile.TemporaryDirectory(prefix="aami-am-") as tmp:
            staged = rendered.text
            for name, secret in rendered.secrets.items():
                path = Path(tmp) / name
                path.write_text(secret)
                staged = staged.replace(str(self.secrets_dir / name), str(path))
            config = Path(tmp) / "alertmanager.yml"
            config.write_text(staged)
            try:
                completed = subprocess.run(
                    [amtool, "check-config", str(config)],
                    capture_output=True,
                    text=True,
                    timeout=self.tool_timeout,
                    check=False,
                    stdin=subprocess.DEVNULL,
                )
            except subprocess.TimeoutExpired:
                raise Unavailable(
                    f"amtool check-config did not finish within {self.tool_timeout:g}s; "
                    "nothing was changed"
                ) from None
        if completed.returncode != 0:
            output = (completed.stdout + completed.stderr).replace(tmp, "<staging>").strip()
            raise Invalid(f"amtool check-config rejected the Alertmanager config: {output}")

    def validate(self, session: Session) -> None:
        """Inside a request: refuse a change whose config amtool rejects, and, when AAMI
        manages the file, a change made while Alertmanager does not answer (it could be
        neither confirmed nor undone)."""
        session.flush()
        self.check(self.render(session))
        if self.managed and not self.client.ready():
            raise Unavailable(
                f"Alertmanager at {self.client.base_url} does not answer, so the change "
                "could not be confirmed; nothing was changed"
            )

    # ---- measuring ---------------------------------------------------------------------

    def loaded(self) -> tuple[Stamp | None, str | None, bool]:
        """(stamp of the config Alertmanager runs, error, reachable)."""
        try:
            original = (self.client.status().get("config") or {}).get("original", "")
        except AlertmanagerError as exc:
            return None, str(exc), False
        try:
            config = yaml.safe_load(original) or {}
        except yaml.YAMLError as exc:
            return None, f"Alertmanager reports a config that is not YAML: {exc}", True
        for receiver in config.get("receivers") or []:
            match = _SENTINEL.match(str(receiver.get("name", "")))
            if match:
                return Stamp(int(match.group(1)), match.group(2)), None, True
        return None, None, True

    def written(self) -> tuple[Stamp | None, bool, str | None]:
        """(stamp of the file on disk, whether it is intact, its text)."""
        if self.path is None:
            return None, False, None
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, False, None
        stamp = read_stamp(text)
        return stamp, stamp is not None and verify(text, stamp), text

    def status_now(self) -> SyncState:
        if not self.managed:
            return SyncState([])
        with session_scope(self.factory) as session:
            desired = RevisionRepository(session).area("alerting")
        stamp, intact, _ = self.written()
        loaded, error, reachable = self.loaded()
        return SyncState(
            [ScopeSync(SCOPE, desired, stamp, intact, loaded)], None if reachable else error
        )

    # ---- the target protocol -----------------------------------------------------------

    def revision(self, session: Session) -> int:
        return RevisionRepository(session).area("alerting")

    def prepare(self) -> None:
        pass

    def cleanup(self) -> None:
        pass

    def run(self, job: Job, fence: Fence, result: PassResult) -> SyncState:
        if not self.managed or self.path is None:
            return SyncState([])
        path = self.path
        fence()
        with session_scope(self.factory) as session:
            desired = self.render(session)
        stamp, intact, text = self.written()
        loaded, loaded_error, reachable = self.loaded()
        name = path.name
        error: str | None = None
        needs_write = text != desired.text
        if needs_write and not reachable:
            # Neither confirmed nor undoable while Alertmanager is down: write nothing yet.
            result.reload = Reload.PENDING
            result.fail(
                Result.PENDING_RELOAD,
                f"{loaded_error}; the config is written once Alertmanager answers",
            )
            error = result.error
        elif needs_write:
            try:
                self.check(desired)
                result.validation = Validation.OK
            except (Invalid, Unavailable) as exc:
                result.validation = Validation.FAILED
                result.files_rejected[name] = exc.detail
                result.fail(Result.FAILED, exc.detail)
                error = exc.detail
            else:
                fence()
                previous = self._install(path, desired)
                result.files_written = [name]
                stamp, intact = read_stamp(desired.text), True
                fence()
                loaded, error = self._reload(path, desired, previous, result)
                if result.result is Result.ROLLED_BACK:
                    stamp, intact, _ = self.written()
        elif job.force_reload or (stamp is not None and loaded != stamp):
            fence()
            loaded, error = self._reload(path, desired, None, result)
        return SyncState(
            [ScopeSync(SCOPE, desired.revision, stamp, intact, loaded, error)],
            None if reachable or loaded is not None else loaded_error,
        )

    def _install(self, path: Path, desired: Rendered) -> tuple[str | None, dict[str, str]]:
        """Write the secrets and the file; return what to restore."""
        previous = path.read_text() if path.exists() else None
        self.secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        old_secrets = {p.name: p.read_text() for p in self.secrets_dir.iterdir() if p.is_file()}
        for secret_name, secret in desired.secrets.items():
            write_atomic(self.secrets_dir / secret_name, secret, mode=0o600)
        write_atomic(path, desired.text)
        for stale in set(old_secrets) - set(desired.secrets):
            (self.secrets_dir / stale).unlink(missing_ok=True)
        return previous, old_secrets

    def _restore(self, path: Path, previous: tuple[str | None, dict[str, str]]) -> None:
        text, secrets = previous
        for secret_name, secret in secrets.items():
            write_atomic(self.secrets_dir / secret_name, secret, mode=0o600)
        if text is not None:
            write_atomic(path, text)

    def _reload(
        self,
        path: Path,
        desired: Rendered,
        previous: tuple[str | None, dict[str, str]] | None,
        result: PassResult,
    ) -> tuple[Stamp | None, str | None]:
        """Reload, confirm the stamp Alertmanager reports; undo a refused config."""
        expected = read_stamp(desired.text)
        try:
            self.client.reload()
        except AlertmanagerUnreachable as exc:
            result.reload = Reload.PENDING
            result.fail(Result.PENDING_RELOAD, f"{exc}; the reload is retried")
            return None, result.error
        except AlertmanagerError as exc:
            result.reload = Reload.REJECTED
            return self._undo(path, previous, result, str(exc))
        loaded, loaded_error, _ = self.loaded()
        if loaded is not None and loaded == expected:
            result.reload = Reload.OK
            result.confirmed = True
            return loaded, None
        if previous is not None:
            return self._undo(
                path,
                previous,
                result,
                "Alertmanager is not running the new config after the reload (it may have "
                "refused it: see its log)",
            )
        result.reload = Reload.UNCONFIRMED
        result.confirmed = False
        result.fail(
            Result.FAILED,
            loaded_error or "Alertmanager reloaded but does not run the config on disk",
        )
        return loaded, result.error

    def _undo(
        self,
        path: Path,
        previous: tuple[str | None, dict[str, str]] | None,
        result: PassResult,
        why: str,
    ) -> tuple[Stamp | None, str | None]:
        if previous is not None:
            self._restore(path, previous)
            result.files_written = []
        try:
            self.client.reload()
        except AlertmanagerError:
            pass
        result.confirmed = False
        result.fail(Result.ROLLED_BACK, f"{why}; the previous config is restored")
        loaded, _, _ = self.loaded()
        return loaded, result.error
