"""The FastAPI application."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy.engine import make_url
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from aami import __version__
from aami.alertmanager.client import AlertmanagerClient
from aami.alertmanager.endpoints import notifications_router
from aami.alertmanager.endpoints import router as alertmanager_router
from aami.alertmanager.publisher import AlertmanagerPublisher
from aami.alertmanager.watcher import SilenceWatcher
from aami.alerts.endpoints import rules_router as alert_rules_router
from aami.alerts.endpoints import seed_router
from aami.alerts.endpoints import templates_router as alert_templates_router
from aami.alerts.service import RULE_CHECKER
from aami.api.errors import install_error_handlers
from aami.api.health import READY_RESPONSES, Readiness
from aami.api.limits import AuthLimiter, RequestGuard
from aami.api.metrics import MetricsMiddleware, make_registry
from aami.api.state import AppServices
from aami.audit.endpoints import router as audit_router
from aami.auth.tokens import NodeTokenCache
from aami.checks.endpoints import checks_router
from aami.checks.endpoints import policies_router as script_policies_router
from aami.checks.endpoints import templates_router as script_templates_router
from aami.checks.fast_path import ChecksFastPath
from aami.checks.service import ChecksCache
from aami.common.changes import on_rule_scopes_committed
from aami.common.schemas import ERROR_RESPONSES
from aami.config import Settings
from aami.configcode.endpoints import router as config_router
from aami.db.migrate import upgrade
from aami.db.session import RevisionCache, make_engine, make_sessionmaker, on_areas_committed
from aami.evaluators.endpoints import router as evaluators_router
from aami.evaluators.metrics import EvaluatorCollector
from aami.groups.endpoints import router as groups_router
from aami.prometheus.client import PrometheusClient
from aami.prometheus.endpoints import router as sd_router
from aami.prometheus.publisher import RulePublisher
from aami.prometheus.rule_files import RuleFileStore
from aami.prometheus.rules_endpoints import router as prometheus_router
from aami.prometheus.sd import SdCache
from aami.prometheus.validation import PromtoolRuleChecker
from aami.publishing.lease import PublisherLease
from aami.publishing.metrics import PublishingCollector
from aami.publishing.reconciler import Reconciler, Timing
from aami.publishing.types import Target
from aami.registration.endpoints import register_router, registrations_router, tokens_router
from aami.security.secrets import check_key, load_box, use_box
from aami.security.signing import signer_for
from aami.targets.endpoints import exporters_router
from aami.targets.endpoints import router as targets_router
from aami.web.routes import install as install_web_ui

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def _lease_lock_path(settings: Settings) -> Path:
    """Where replicas on one host (SQLite) lock the publisher lease: beside the database,
    which must be writable anyway, so a read-only rule directory cannot hide the lease."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        database = Path(url.database).expanduser()
        return database.with_name(database.name + ".publisher-lock")
    return settings.prometheus_rule_path / ".publisher.lock"


def _api_router() -> APIRouter:
    api = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)
    for router in (
        checks_router,  # first: every node polls it, and routes are matched in order
        groups_router,
        targets_router,
        exporters_router,
        sd_router,
        alert_templates_router,
        alert_rules_router,
        prometheus_router,
        evaluators_router,
        script_templates_router,
        script_policies_router,
        tokens_router,
        register_router,
        registrations_router,
        alertmanager_router,
        notifications_router,
        seed_router,
        config_router,
        audit_router,
    ):
        api.include_router(router)
    return api


_routes: list[BaseRoute] | None = None
_routes_lock = threading.Lock()


def _shared_routes() -> list[BaseRoute]:
    """The API's and the web UI's routes, built once per process.

    They hold nothing of one app: a handler finds its app's services through the request.
    Building them (FastAPI prepares every parameter's validator) is most of what creating
    an app costs, and the tests create one per test.
    """
    global _routes
    with _routes_lock:
        if _routes is None:
            scratch = FastAPI()
            defaults = list(scratch.router.routes)  # /openapi.json, /docs, ...
            scratch.include_router(_api_router())
            install_web_ui(scratch)
            _routes = [route for route in scratch.router.routes if route not in defaults]
        return _routes


def _register_collectors(registry: CollectorRegistry, app: AppServices) -> None:
    """The state behind ``/metrics`` beyond requests: publishing and remote evaluators."""
    registry.register(PublishingCollector(app.reconciler))
    registry.register(
        EvaluatorCollector(app.sessionmaker, app.rule_sets, app.settings.evaluator_stale_after)
    )


def create_app(settings: Settings, *, migrate: bool = True) -> FastAPI:
    """Build the app; the database is migrated and the publisher started when it starts."""
    if not settings.admin_token:
        raise ValueError("AAMI_ADMIN_TOKEN is not set; the API would be open to anyone")
    engine = make_engine(settings.database_url)
    # Notification secrets are encrypted at rest with this key (aami.security.secrets).
    use_box(engine, load_box(settings))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if migrate:
            upgrade(engine)
            check_key(factory)
        reconciler.start()
        watcher.start()
        try:
            yield
        finally:
            watcher.stop()
            reconciler.stop()
            alertmanager.close()
            prometheus.close()
            engine.dispose()

    app = FastAPI(
        title="AAMI",
        version=__version__,
        description="Alerting configuration for AI-accelerator clusters.",
        lifespan=lifespan,
        # Innermost: nodes' polls answered from the caches, inside the guard and the metrics
        # middleware added below (aami.checks.fast_path).
        middleware=[Middleware(ChecksFastPath)],
    )
    factory = make_sessionmaker(engine)
    revisions = RevisionCache(factory)
    on_areas_committed(factory, revisions.invalidate)
    # Every session of this app checks rules with promtool before they are saved.
    factory.configure(
        info={
            RULE_CHECKER: PromtoolRuleChecker(
                enabled=settings.prometheus_validate_rules, timeout=settings.tool_timeout
            )
        }
    )
    rule_store = RuleFileStore(
        settings.prometheus_rule_path, backups=settings.prometheus_backup_enabled
    )
    prometheus = PrometheusClient(
        settings.prometheus_url, timeout=settings.prometheus_reload_timeout
    )
    rules = RulePublisher(
        factory=factory,
        store=rule_store,
        client=prometheus,
        validate=settings.prometheus_validate_rules,
        reload_enabled=settings.prometheus_reload_enabled,
        promtool_timeout=settings.promtool_timeout,
    )
    alertmanager = AlertmanagerClient(settings.alertmanager_url)
    notifications = AlertmanagerPublisher(
        factory=factory, settings=settings, client=alertmanager, tool_timeout=settings.tool_timeout
    )
    reconciler = Reconciler(
        factory=factory,
        lease=PublisherLease(engine, factory, _lease_lock_path(settings)),
        # The Alertmanager config is a target only where AAMI manages the file.
        targets=[rules, notifications] if notifications.managed else [rules],
        timing=Timing(
            debounce=settings.publish_debounce,
            check_interval=settings.publish_check_interval,
            retry_max=settings.publish_retry_max,
            history_keep=settings.publish_history_keep,
            history_max_age=settings.publish_history_days * 86400.0,
        ),
    )
    on_rule_scopes_committed(factory, lambda scopes: reconciler.mark(Target.PROMETHEUS, scopes))
    on_areas_committed(
        factory,
        lambda areas: (
            reconciler.mark(Target.ALERTMANAGER, {"config"}) if "alerting" in areas else None
        ),
    )
    watcher = SilenceWatcher(factory, alertmanager, settings.silence_watch_interval)
    limiter = AuthLimiter(
        limit=settings.auth_failure_limit,
        window=settings.auth_failure_window,
        block=settings.auth_block_duration,
        trusted_proxies=settings.trusted_proxies,
    )
    app.state.services = AppServices(
        settings=settings,
        engine=engine,
        sessionmaker=factory,
        revisions=revisions,
        node_tokens=NodeTokenCache(ttl=settings.node_token_cache_ttl),
        auth_limiter=limiter,
        signer=signer_for(settings),  # check scripts are signed (security/signing)
        sd_cache=SdCache(settings.sd_cache_size),
        checks_cache=ChecksCache(),
        prometheus=prometheus,
        rule_store=rule_store,
        rule_publisher=rules,
        alertmanager=alertmanager,
        alertmanager_publisher=notifications,
        silence_watcher=watcher,
        reconciler=reconciler,
    )
    registry, requests, latency = make_registry()
    _register_collectors(registry, app.state.services)
    # Inside the metrics middleware, so refusals are counted; before the app reads a body.
    app.add_middleware(
        RequestGuard,
        limiter=limiter,
        max_body=settings.max_request_body,
        admin_token=settings.admin_token,
        large_bodies={
            "/api/v1/config/plan": settings.max_config_body,
            "/api/v1/config/apply": settings.max_config_body,
        },
    )
    app.add_middleware(MetricsMiddleware, requests=requests, latency=latency)
    install_error_handlers(app)

    app.router.routes.extend(_shared_routes())
    app.state.web_ui_installed = True  # the UI's routes are among them

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok", "version": __version__}

    @app.get("/health/live", tags=["health"])
    def live() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    readiness = Readiness(factory, reconciler.lease.holder)

    @app.get("/health/ready", tags=["health"], responses=READY_RESPONSES)
    def ready() -> JSONResponse:
        """The database answers and accepts writes (503 otherwise); publishing problems are
        reported here too, but do not take the replica out of service (it still serves
        service discovery and checks)."""
        error = readiness.check()
        publishing = {
            target.value: (
                "ok"
                if state.failures == 0
                else f"failing: {state.last_result.error if state.last_result else ''}"
            )
            for target, state in reconciler.states.items()
        }
        if error is not None:
            log.warning("readiness: the database cannot write: %s", error)
            return JSONResponse(
                {
                    "status": "unavailable",
                    "detail": f"the database cannot write: {error}",
                    "publishing": publishing,
                },
                status_code=503,
            )
        return JSONResponse({"status": "ok", "database": "ok", "publishing": publishing})

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
