"""What one app holds for the life of the process, typed: the objects every router and
page reaches through ``request.app``.

``create_app`` builds one :class:`AppServices` and keeps it as ``app.state.services``;
everything else reads it through :func:`services` (or the dependencies in
``aami.api.deps``), so mypy sees every use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from aami.alertmanager.client import AlertmanagerClient
from aami.alertmanager.publisher import AlertmanagerPublisher
from aami.alertmanager.watcher import SilenceWatcher
from aami.api.limits import AuthLimiter
from aami.auth.tokens import NodeTokenCache
from aami.checks.service import ChecksCache
from aami.config import Settings
from aami.db.session import RevisionCache
from aami.evaluators.rule_sets import RuleSetCache
from aami.prometheus.client import PrometheusClient
from aami.prometheus.publisher import RulePublisher
from aami.prometheus.rule_files import RuleFileStore
from aami.prometheus.sd import SdCache
from aami.publishing.reconciler import Reconciler
from aami.security.signing import Signer

__all__ = ["AppServices", "services"]


@dataclass(eq=False)
class AppServices:
    """The process-wide objects of one app.

    ``alertmanager`` is None only in an app built without an Alertmanager client; the
    pages then say so instead of failing.
    """

    settings: Settings
    engine: Engine
    sessionmaker: sessionmaker[Session]
    revisions: RevisionCache
    node_tokens: NodeTokenCache
    auth_limiter: AuthLimiter
    signer: Signer
    sd_cache: SdCache
    checks_cache: ChecksCache
    prometheus: PrometheusClient
    rule_store: RuleFileStore
    rule_publisher: RulePublisher
    alertmanager: AlertmanagerClient | None
    alertmanager_publisher: AlertmanagerPublisher
    silence_watcher: SilenceWatcher
    reconciler: Reconciler
    rule_sets: RuleSetCache = field(default_factory=RuleSetCache)


def services(app: Starlette | HTTPConnection) -> AppServices:
    """The services of an app (or of the app serving a request)."""
    if isinstance(app, HTTPConnection):
        app = app.app
    found: AppServices = app.state.services
    return found
