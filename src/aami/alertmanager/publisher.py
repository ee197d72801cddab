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
from dataclasses import dataclass
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

__all__ = ["SCOPE", "AlertmanagerPublisher", "Member", "Rendered"]

SCOPE = "config"
_SENTINEL = re.compile(r"^aami-config-r(\d+)-([0-9a-f]{16})$")


@dataclass
class Member:
    """One Alertmanager (of a cluster, or the only one) as a pass measured it."""

    client: AlertmanagerClient
    scope: str
    loaded: Stamp | None = None
    error: str | None = None  # why it cannot be asked, or what went wrong with it
    reachable: bool = True


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
                f"{self.client.describe()} does not answer, so the change could not be "
                "confirmed; nothing was changed"
            )

    # ---- measuring ---------------------------------------------------------------------

    def scope_of(self, client: AlertmanagerClient) -> str:
        """The scope of one Alertmanager: ``config``, or ``config@<url>`` for each member
        of a cluster (so a member that runs something else, or does not answer, is named)."""
        return f"{SCOPE}@{client.base_url}" if self.client.clustered else SCOPE

    @staticmethod
    def loaded_by(client: AlertmanagerClient) -> tuple[Stamp | None, str | None, bool]:
        """(stamp of the config one Alertmanager runs, error, reachable)."""
        try:
            original = (client.status().get("config") or {}).get("original", "")
        except AlertmanagerError as exc:
            return None, str(exc), False
        try:
            config = yaml.safe_load(original) or {}
        except yaml.YAMLError as exc:
            return (
                None,
                f"Alertmanager at {client.base_url} reports a config that is not YAML: {exc}",
                True,
            )
        for receiver in config.get("receivers") or []:
            match = _SENTINEL.match(str(receiver.get("name", "")))
            if match:
                return Stamp(int(match.group(1)), match.group(2)), None, True
        return None, None, True

    def measure(self) -> list[Member]:
        """What every member runs now (one member when there is no cluster)."""
        members = []
        for client in self.client.members:
            loaded, error, reachable = self.loaded_by(client)
            members.append(Member(client, self.scope_of(client), loaded, error, reachable))
        return members

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

    @staticmethod
    def _state(
        desired: int,
        stamp: Stamp | None,
        intact: bool,
        members: list[Member],
        error: str | None = None,
    ) -> SyncState:
        """One scope per member; what cannot be asked is named in ``loaded_error`` too, so
        the target is never in sync while a member does not answer."""
        down = [m.error for m in members if not m.reachable and m.error]
        return SyncState(
            [
                ScopeSync(m.scope, desired, stamp, intact, m.loaded, m.error or error)
                for m in members
            ],
            "; ".join(down) or None,
        )

    def status_now(self) -> SyncState:
        if not self.managed:
            return SyncState([])
        with session_scope(self.factory) as session:
            desired = RevisionRepository(session).area("alerting")
        stamp, intact, _ = self.written()
        return self._state(desired, stamp, intact, self.measure())

    # ---- the target protocol -----------------------------------------------------------

    def revision(self, session: Session) -> int:
        return RevisionRepository(session).area("alerting")

    def prepare(self) -> None:
        pass

    def cleanup(self) -> None:
        pass

    def run(self, job: Job, fence: Fence, result: PassResult) -> SyncState:
        """Write the file when it differs, reload every member that answers and confirm
        each; a member that does not answer is named (it reads the file when it starts,
        and is reloaded when it answers again)."""
        if not self.managed or self.path is None:
            return SyncState([])
        path = self.path
        fence()
        with session_scope(self.factory) as session:
            desired = self.render(session)
        stamp, intact, text = self.written()
        members = self.measure()
        up = [m for m in members if m.reachable]
        down = [m for m in members if not m.reachable]
        error: str | None = None
        if text != desired.text and not up:
            # Neither confirmed nor undoable while no Alertmanager answers: write nothing yet.
            result.reload = Reload.PENDING
            result.fail(
                Result.PENDING_RELOAD,
                f"{self._errors(down)}; the config is written once Alertmanager answers",
            )
            return self._state(desired.revision, stamp, intact, members, result.error)
        if text != desired.text:
            error = self._publish(path, desired, up, fence, result)
            stamp, intact, _ = self.written()
        else:
            stale = [m for m in up if job.force_reload or (stamp is not None and m.loaded != stamp)]
            if stale:
                fence()
                error = self._reload(path, desired, None, stale, result)
        self._note_down(down, result)
        return self._state(desired.revision, stamp, intact, members, error)

    @staticmethod
    def _errors(members: list[Member]) -> str:
        return "; ".join(m.error or f"Alertmanager at {m.client.base_url}" for m in members)

    def _publish(
        self, path: Path, desired: Rendered, up: list[Member], fence: Fence, result: PassResult
    ) -> str | None:
        """Check the config, write it, reload the members that answer; the error of the
        scopes, if any."""
        try:
            self.check(desired)
        except (Invalid, Unavailable) as exc:
            result.validation = Validation.FAILED
            result.files_rejected[path.name] = exc.detail
            result.fail(Result.FAILED, exc.detail)
            return exc.detail
        result.validation = Validation.OK
        fence()
        previous = self._install(path, desired)
        result.files_written = [path.name]
        fence()
        return self._reload(path, desired, previous, up, result)

    @staticmethod
    def _note_down(down: list[Member], result: PassResult) -> None:
        """The members that did not answer this pass: not confirmed, retried."""
        if not down:
            return
        message = f"{AlertmanagerPublisher._errors(down)}; reloaded once it answers"
        if result.reload in (Reload.NOT_NEEDED, Reload.OK):
            result.reload = Reload.PENDING
        if result.confirmed:
            result.confirmed = False
        if result.result is Result.OK:
            result.fail(Result.PENDING_RELOAD, message)
        else:
            result.error = f"{result.error}; {message}" if result.error else message

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
        members: list[Member],
        result: PassResult,
    ) -> str | None:
        """Reload each member and confirm the stamp it reports; a member refusing a file
        just written undoes it for all (they share it). Returns the scopes' error."""
        expected = read_stamp(desired.text)
        refused = [
            why
            for member in members
            if (why := self._reload_one(member, expected, result, fresh=previous is not None))
        ]
        if refused:
            return self._undo(path, previous, members, result, "; ".join(refused))
        if result.reload is Reload.NOT_NEEDED:
            result.reload = Reload.OK
            result.confirmed = True
        else:
            result.confirmed = False
        return None

    @staticmethod
    def _problem(result: PassResult, reload: Reload) -> None:
        """The pass's reload outcome: the first problem of any member."""
        if result.reload in (Reload.NOT_NEEDED, Reload.OK):
            result.reload = reload

    def _reload_one(
        self, member: Member, expected: Stamp | None, result: PassResult, *, fresh: bool
    ) -> str | None:
        """Reload one member and read back what it runs; why it refused a ``fresh`` file
        (to be undone), else None (a problem that is not a refusal is put in ``result``)."""
        where = f"Alertmanager at {member.client.base_url}"
        try:
            member.client.reload()
        except AlertmanagerUnreachable as exc:
            member.loaded, member.reachable = None, False
            member.error = f"{exc}; the reload is retried"
            self._problem(result, Reload.PENDING)
            result.fail(Result.PENDING_RELOAD, member.error)
            return None
        except AlertmanagerError as exc:
            self._problem(result, Reload.REJECTED)
            return f"{where}: {exc}"
        member.loaded, member.error, member.reachable = self.loaded_by(member.client)
        if member.loaded is not None and member.loaded == expected:
            return None
        if fresh:
            return (
                f"{where} is not running the new config after the reload (it may have "
                "refused it: see its log)"
            )
        self._problem(result, Reload.UNCONFIRMED)
        member.error = member.error or f"{where} reloaded but does not run the config on disk"
        result.fail(Result.FAILED, member.error)
        return None

    def _undo(
        self,
        path: Path,
        previous: tuple[str | None, dict[str, str]] | None,
        members: list[Member],
        result: PassResult,
        why: str,
    ) -> str | None:
        if previous is not None:
            self._restore(path, previous)
            result.files_written = []
        for member in members:
            try:
                member.client.reload()
            except AlertmanagerError:
                pass
            member.loaded, member.error, member.reachable = self.loaded_by(member.client)
        result.confirmed = False
        result.fail(Result.ROLLED_BACK, f"{why}; the previous config is restored")
        return result.error
