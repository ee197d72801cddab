"""The FastAPI application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from aami import __version__
from aami.alertmanager.client import AlertmanagerClient
from aami.alertmanager.endpoints import notifications_router
from aami.alertmanager.endpoints import router as alertmanager_router
from aami.alertmanager.service import AlertmanagerConfig, SilenceWatcher
from aami.alerts.endpoints import rules_router as alert_rules_router
from aami.alerts.endpoints import seed_router
from aami.alerts.endpoints import templates_router as alert_templates_router
from aami.api.errors import install_error_handlers
from aami.api.metrics import MetricsMiddleware, make_registry
from aami.audit.endpoints import router as audit_router
from aami.auth.tokens import NodeTokenCache
from aami.checks.endpoints import checks_router
from aami.checks.endpoints import policies_router as script_policies_router
from aami.checks.endpoints import templates_router as script_templates_router
from aami.checks.service import ChecksCache
from aami.common.changes import on_rule_scopes_committed
from aami.config import Settings
from aami.configcode.endpoints import router as config_router
from aami.db.migrate import upgrade
from aami.db.session import RevisionCache, make_engine, make_sessionmaker, on_areas_committed
from aami.groups.endpoints import router as groups_router
from aami.prometheus.client import PrometheusClient
from aami.prometheus.endpoints import router as sd_router
from aami.prometheus.lease import PublisherLease
from aami.prometheus.publisher import Publisher
from aami.prometheus.rule_files import RuleFileStore
from aami.prometheus.rules_endpoints import router as prometheus_router
from aami.prometheus.sd import SdCache
from aami.registration.endpoints import register_router, tokens_router
from aami.targets.endpoints import exporters_router
from aami.targets.endpoints import router as targets_router
from aami.web.routes import install as install_web_ui

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(
    settings: Settings, *, migrate: bool = True, publisher_debounce: float = 0.2
) -> FastAPI:
    """Build the app; the database is migrated and the publisher started when it starts."""
    if not settings.admin_token:
        raise ValueError("AAMI_ADMIN_TOKEN is not set; the API would be open to anyone")
    engine = make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if migrate:
            upgrade(engine)
        publisher.start(reconcile=True)
        watcher.start()
        try:
            yield
        finally:
            watcher.stop()
            publisher.stop()
            alertmanager.close()
            publisher.client.close()
            engine.dispose()

    app = FastAPI(
        title="AAMI",
        version=__version__,
        description="Alerting configuration for AI-accelerator clusters.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.sd_cache = SdCache(settings.sd_cache_size)
    app.state.checks_cache = ChecksCache()
    app.state.revisions = RevisionCache(app.state.sessionmaker)
    on_areas_committed(app.state.sessionmaker, app.state.revisions.invalidate)
    app.state.node_tokens = NodeTokenCache()
    store = RuleFileStore(settings.prometheus_rule_path, backups=settings.prometheus_backup_enabled)
    publisher = Publisher(
        factory=app.state.sessionmaker,
        store=store,
        client=PrometheusClient(
            settings.prometheus_url, timeout=settings.prometheus_reload_timeout
        ),
        validate=settings.prometheus_validate_rules,
        reload_enabled=settings.prometheus_reload_enabled,
        debounce=publisher_debounce,
        lease=PublisherLease(engine, settings.prometheus_rule_path / ".publisher.lock"),
    )
    on_rule_scopes_committed(app.state.sessionmaker, publisher.mark)
    alertmanager = AlertmanagerClient(settings.alertmanager_url)
    watcher = SilenceWatcher(app.state.sessionmaker, alertmanager, settings.silence_watch_interval)
    app.state.alertmanager = alertmanager
    app.state.alertmanager_config = AlertmanagerConfig(settings, alertmanager)
    app.state.silence_watcher = watcher
    app.state.rule_store = store
    app.state.publisher = publisher
    registry, requests, latency = make_registry()
    app.add_middleware(MetricsMiddleware, requests=requests, latency=latency)
    install_error_handlers(app)

    api = APIRouter(prefix="/api/v1")
    for router in (
        checks_router,  # first: every node polls it, and routes are matched in order
        groups_router,
        targets_router,
        exporters_router,
        sd_router,
        alert_templates_router,
        alert_rules_router,
        prometheus_router,
        script_templates_router,
        script_policies_router,
        tokens_router,
        register_router,
        alertmanager_router,
        notifications_router,
        seed_router,
        config_router,
        audit_router,
    ):
        api.include_router(router)
    app.include_router(api)

    install_web_ui(app)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok", "version": __version__}

    @app.get("/health/live", tags=["health"])
    def live() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/health/ready", tags=["health"])
    def ready(request: Request) -> JSONResponse:
        """The database answers."""
        try:
            with request.app.state.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            log.warning("readiness: database unreachable: %s", type(exc).__name__)
            return JSONResponse(
                {"status": "unavailable", "detail": "database unreachable"}, status_code=503
            )
        return JSONResponse({"status": "ok", "database": "ok"})

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
