"""/api/v1/alerts, /api/v1/silences, /api/v1/notification-channels and -routes,
/api/v1/alertmanager/status, /api/v1/alert-history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response, status

from aami.alertmanager import alerts, history, notifications, silences
from aami.alertmanager import status as am_status
from aami.alertmanager.alerts import AlertState
from aami.alertmanager.client import AlertmanagerClient
from aami.alertmanager.publisher import AlertmanagerPublisher
from aami.alertmanager.schemas import (
    AlertGroupRead,
    AlertHistorySummary,
    AlertmanagerStatus,
    AlertRead,
    AlertStatus,
    AlertTransitionRead,
    ChannelCreate,
    ChannelRead,
    ChannelUpdate,
    MaintenanceSilence,
    RouteCreate,
    RouteRead,
    RouteTestRequest,
    RouteTestResult,
    RouteUpdate,
    SilenceCreate,
    SilenceRead,
    WebhookPayload,
    WebhookResult,
)
from aami.api.deps import (
    AdminDep,
    HistoryWriterDep,
    PageDep,
    ReconcilerDep,
    SessionDep,
    SettingsDep,
)
from aami.api.state import services
from aami.common.schemas import Page
from aami.errors import Unavailable
from aami.publishing.schemas import PublishRead

router = APIRouter(tags=["alerts and silences"])
notifications_router = APIRouter(tags=["notifications"])

# Alertmanager names a silence by a UUID; anything else is refused before it becomes part
# of a URL to Alertmanager (a control character there was a 500).
SilenceId = Annotated[UUID, Path(description="the silence's id, a UUID from Alertmanager")]
# No control characters: PostgreSQL refuses NUL in a text parameter (a 500, not a match).
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
TargetRef = Annotated[
    str | None, Query(max_length=255, pattern=_PRINTABLE, description="target id or hostname")
]
GroupRef = Annotated[
    str | None, Query(max_length=255, pattern=_PRINTABLE, description="group id or name")
]
AlertName = Annotated[str | None, Query(max_length=255, pattern=_PRINTABLE)]


def _client(request: Request) -> AlertmanagerClient:
    client = services(request).alertmanager
    if client is None:
        raise Unavailable("this server has no Alertmanager client")
    return client


def _config(request: Request) -> AlertmanagerPublisher:
    return services(request).alertmanager_publisher


@router.get("/alerts", response_model=list[AlertRead])
def list_alerts(
    request: Request,
    session: SessionDep,
    _: AdminDep,
    group_id: GroupRef = None,
    severity: Literal["critical", "warning", "info"] | None = None,
    target: TargetRef = None,
    receiver: Annotated[str | None, Query(max_length=100)] = None,
    state: AlertState | None = None,
    active: Annotated[bool, Query(description="include active alerts")] = True,
    silenced: Annotated[bool, Query(description="include silenced alerts")] = True,
    inhibited: Annotated[bool, Query(description="include inhibited alerts")] = True,
) -> list[AlertRead]:
    """Alerts from Alertmanager with their silenced and inhibited flags (503 if it is down);
    ``active``, ``silenced`` and ``inhibited`` are Alertmanager's own filters."""
    return alerts.list_alerts(
        _client(request),
        group=group_id,
        severity=severity,
        target=target,
        receiver=receiver,
        state=state,
        session=session,
        shown=alerts.Shown(active=active, silenced=silenced, inhibited=inhibited),
    )


@router.get("/alerts/groups", response_model=list[AlertGroupRead])
def alert_groups(request: Request, _: AdminDep) -> list[AlertGroupRead]:
    """Alertmanager's alert groups (as routed and grouped)."""
    return alerts.alert_groups(_client(request))


@router.get("/silences", response_model=list[SilenceRead])
def list_silences(request: Request, session: SessionDep, _: AdminDep) -> list[SilenceRead]:
    """Silences, newest end first."""
    return silences.list_silences(_client(request), session)


@router.post("/silences", status_code=status.HTTP_201_CREATED, response_model=SilenceRead)
def create_silence(
    body: SilenceCreate,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: AdminDep,
) -> SilenceRead:
    """Create a silence (at least one equality matcher, bounded duration, not muting most
    of what fires); ``expire_on_resolve`` ends it once its alerts resolve."""
    return silences.create_silence(
        session, _client(request), settings, actor=principal.name, data=body
    )


@router.get("/silences/{silence_id}", response_model=SilenceRead)
def get_silence(
    silence_id: SilenceId, request: Request, session: SessionDep, _: AdminDep
) -> SilenceRead:
    """Get a silence."""
    return silences.get_silence(_client(request), session, str(silence_id))


@router.delete("/silences/{silence_id}", status_code=status.HTTP_204_NO_CONTENT)
def expire_silence(
    silence_id: SilenceId, request: Request, session: SessionDep, principal: AdminDep
) -> Response:
    """Expire a silence now."""
    silences.expire_silence(session, _client(request), str(silence_id), actor=principal.name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/silences/target/{target_id}", status_code=status.HTTP_201_CREATED, response_model=SilenceRead
)
def silence_target(
    target_id: str,
    body: MaintenanceSilence,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: AdminDep,
) -> SilenceRead:
    """Silence one node for a maintenance window."""
    return silences.silence_target(
        session,
        _client(request),
        settings,
        actor=principal.name,
        target=target_id,
        hours=body.hours,
        comment=body.comment,
        created_by=body.created_by,
        expire_on_resolve=body.expire_on_resolve,
    )


@router.post(
    "/silences/group/{group_id}", status_code=status.HTTP_201_CREATED, response_model=SilenceRead
)
def silence_group(
    group_id: str,
    body: MaintenanceSilence,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: AdminDep,
) -> SilenceRead:
    """Silence one group for a maintenance window."""
    return silences.silence_group(
        session,
        _client(request),
        settings,
        actor=principal.name,
        group=group_id,
        hours=body.hours,
        comment=body.comment,
        created_by=body.created_by,
        expire_on_resolve=body.expire_on_resolve,
    )


@router.get(
    "/alertmanager/status",
    response_model=AlertmanagerStatus,
    response_model_exclude_unset=True,  # the keys differ: reachable or not, managed or not
)
def alertmanager_status(
    request: Request, session: SessionDep, reconciler: ReconcilerDep, _: AdminDep
) -> AlertmanagerStatus:
    """Reachability, cluster peers, and the managed config: desired revision (database),
    written (file) and loaded (what Alertmanager reports), measured now."""
    return am_status.status(session, reconciler, _client(request), _config(request))


@router.get("/alertmanager/history", response_model=Page[PublishRead])
def alertmanager_history(session: SessionDep, _: AdminDep, page: PageDep) -> Page[PublishRead]:
    """Every publish of the Alertmanager config, newest first."""
    return am_status.history_page(session, page=page)


@router.post(
    "/alert-history/webhook",
    response_model=WebhookResult,
    tags=["alert history"],
)
def alert_history_webhook(
    body: WebhookPayload, session: SessionDep, settings: SettingsDep, _: HistoryWriterDep
) -> WebhookResult:
    """Alertmanager's webhook (payload version 4): each alert's transition is stored once,
    whatever Alertmanager repeats. Post with the history token."""
    return history.record(session, body, settings)


@router.get("/alert-history", response_model=Page[AlertTransitionRead], tags=["alert history"])
def alert_history(
    session: SessionDep,
    _: AdminDep,
    page: PageDep,
    target: TargetRef = None,
    group: GroupRef = None,
    alertname: AlertName = None,
    transition: Annotated[
        AlertStatus | None, Query(alias="status", description="firing or resolved")
    ] = None,
    since: Annotated[datetime | None, Query(description="only transitions at or after")] = None,
) -> Page[AlertTransitionRead]:
    """Alert transitions (fired, resolved), newest first."""
    return history.timeline_page(
        session,
        target=target,
        group=group,
        alertname=alertname,
        status=transition,
        since=since,
        page=page,
    )


@router.get("/alert-history/summary", response_model=AlertHistorySummary, tags=["alert history"])
def alert_history_summary(
    session: SessionDep,
    settings: SettingsDep,
    _: AdminDep,
    target: TargetRef = None,
    group: GroupRef = None,
    alertname: AlertName = None,
    window: Annotated[
        float | None,
        Query(gt=0, le=366 * 86400, description="seconds; default AAMI_ALERT_HISTORY_FLAP_WINDOW"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="alerts listed at most")] = 100,
) -> AlertHistorySummary:
    """Fired, resolved and flap counts over the window, per alert, target and group."""
    return history.summary(
        session,
        settings,
        target=target,
        group=group,
        alertname=alertname,
        window=window,
        limit=limit,
    )


@notifications_router.post(
    "/notification-channels", status_code=status.HTTP_201_CREATED, response_model=ChannelRead
)
def create_channel(
    body: ChannelCreate, request: Request, session: SessionDep, principal: AdminDep
) -> ChannelRead:
    """Add a receiver (its secret is write-only); the config is checked with amtool."""
    return notifications.read_channel(
        notifications.create_channel(session, _config(request), actor=principal.name, data=body)
    )


@notifications_router.get("/notification-channels", response_model=list[ChannelRead])
def list_channels(session: SessionDep, _: AdminDep) -> list[ChannelRead]:
    """Managed receivers (never their secrets)."""
    return [notifications.read_channel(c) for c in notifications.list_channels(session)]


@notifications_router.get("/notification-channels/{channel_id}", response_model=ChannelRead)
def get_channel(channel_id: str, session: SessionDep, _: AdminDep) -> ChannelRead:
    """Get a receiver by id or name."""
    return notifications.read_channel(notifications.get_channel_or_raise(session, channel_id))


@notifications_router.put("/notification-channels/{channel_id}", response_model=ChannelRead)
def update_channel(
    channel_id: str, body: ChannelUpdate, request: Request, session: SessionDep, principal: AdminDep
) -> ChannelRead:
    """Change settings or the secret."""
    channel = notifications.get_channel_or_raise(session, channel_id)
    return notifications.read_channel(
        notifications.update_channel(
            session, _config(request), actor=principal.name, channel=channel, data=body
        )
    )


@notifications_router.delete(
    "/notification-channels/{channel_id}", status_code=status.HTTP_204_NO_CONTENT
)
def delete_channel(
    channel_id: str, request: Request, session: SessionDep, principal: AdminDep
) -> Response:
    """Delete a receiver no route uses."""
    notifications.delete_channel(
        session,
        _config(request),
        actor=principal.name,
        channel=notifications.get_channel_or_raise(session, channel_id),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@notifications_router.post(
    "/notification-routes", status_code=status.HTTP_201_CREATED, response_model=RouteRead
)
def create_route(
    body: RouteCreate, request: Request, session: SessionDep, principal: AdminDep
) -> RouteRead:
    """Route matching alerts to a receiver, before the shipped routes."""
    return notifications.read_route(
        notifications.create_route(session, _config(request), actor=principal.name, data=body)
    )


@notifications_router.post("/notification-routes/test", response_model=RouteTestResult)
def route_tester(
    body: RouteTestRequest, request: Request, session: SessionDep, _: AdminDep
) -> RouteTestResult:
    """Where would an alert with these labels go? Alertmanager's own routing (``amtool
    config routes test``) on the config AAMI renders now: the receivers, and the path to
    each matched route."""
    return notifications.explain_route(session, _config(request), body)


@notifications_router.get("/notification-routes", response_model=list[RouteRead])
def list_routes(session: SessionDep, _: AdminDep) -> list[RouteRead]:
    """Managed routes in the order Alertmanager tries them."""
    return [notifications.read_route(r) for r in notifications.list_routes(session)]


@notifications_router.get("/notification-routes/{route_id}", response_model=RouteRead)
def get_route(route_id: str, session: SessionDep, _: AdminDep) -> RouteRead:
    """Get a route."""
    return notifications.read_route(notifications.get_route_or_raise(session, route_id))


@notifications_router.put("/notification-routes/{route_id}", response_model=RouteRead)
def update_route(
    route_id: str, body: RouteUpdate, request: Request, session: SessionDep, principal: AdminDep
) -> RouteRead:
    """Change a route."""
    route = notifications.get_route_or_raise(session, route_id)
    return notifications.read_route(
        notifications.update_route(
            session, _config(request), actor=principal.name, route=route, data=body
        )
    )


@notifications_router.delete(
    "/notification-routes/{route_id}", status_code=status.HTTP_204_NO_CONTENT
)
def delete_route(
    route_id: str, request: Request, session: SessionDep, principal: AdminDep
) -> Response:
    """Delete a route."""
    notifications.delete_route(
        session,
        _config(request),
        actor=principal.name,
        route=notifications.get_route_or_raise(session, route_id),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
