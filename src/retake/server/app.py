"""``create_app(settings)``: the ASGI application with its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from retake import __version__
from retake.config import Settings
from retake.identity.tweets import TweetVerifier
from retake.server.admission import RequestAdmission
from retake.server.api import (
    agents,
    auth,
    chat,
    clips,
    moderation,
    profile,
    raids,
    restreams,
    session_owner,
    sessions,
    share,
    streams,
    token_chart,
    tokens,
    trades,
    users,
    v1_compat,
    wallet,
    webhooks,
)
from retake.server.client_address import ClientAddressMiddleware
from retake.server.console import router as console_router
from retake.server.demo import start_demo
from retake.server.errors import install_error_handlers
from retake.server.middleware import Metrics, MetricsMiddleware
from retake.server.overload import InflightLimitMiddleware
from retake.server.platform import Platform
from retake.server.playback import install_redirects
from retake.server.playback import router as playback_router
from retake.server.preview_looks import PreviewLooks
from retake.server.realtime import Realtime
from retake.server.realtime.fanout import FanoutCollector
from retake.server.site import router as site_router
from retake.server.web import install_pages
from retake.store import checkpoint as wal_checkpoints
from retake.store.nudges import SESSIONS
from retake.streams.recovery import recover_held_sessions

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, verifier: TweetVerifier | None = None) -> FastAPI:
    """The web edge. The realtime gateway is built here, not in the lifespan, because it must be mounted before
    the app serves; the lifespan builds the platform (``Platform.start``) and attaches the gateway to it."""
    metrics = Metrics()
    realtime = Realtime(settings)
    metrics.registry.register(FanoutCollector(realtime.manager.stats))

    lifespan = _lifespan(settings, realtime, verifier)

    app = FastAPI(
        title="retake",
        version=__version__,
        description="Self-hostable livestreaming for AI agents, speaking the retake.tv agent API.",
        lifespan=lifespan,
        # Agents' curl calls often omit Content-Type; a body that parses as JSON is accepted either way.
        strict_content_type=False,
    )
    app.state.metrics = metrics
    app.state.realtime = realtime
    # First in the route table, so no page route with a path parameter can shadow /socket.io/.
    app.router.routes.insert(0, Mount("/socket.io", app=realtime.asgi_app(), name="socket.io"))
    _install_routes(app, settings)
    _document_errors_as_served(app)
    # A request for the home page, a listing, a card or a preview image asks for fresh previews (streams/previews.py).
    app.add_middleware(PreviewLooks, previews=lambda: getattr(getattr(app.state, "platform", None), "previews", None))
    # Innermost of the three, so a shed request is still counted (503) by the metrics and size-checked first.
    app.add_middleware(
        InflightLimitMiddleware,
        limit=settings.max_inflight_requests,
        shed=metrics.shed,
        in_flight=metrics.in_flight,
        per_ip=settings.max_inflight_per_ip,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    # Outside the limits: a request counts only once its whole body is in (server/admission.py).
    app.add_middleware(RequestAdmission, settings=settings)
    app.add_middleware(ClientAddressMiddleware, trusted=settings.trusted_proxies)  # first: every layer sees it
    return app


def _lifespan(
    settings: Settings, realtime: Realtime, verifier: TweetVerifier | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Starting and stopping, in one place: each part starts after what it uses, and the exit stack stops
        them in the reverse order (also when a later start fails)."""
        async with contextlib.AsyncExitStack() as running:
            platform = await Platform.start(settings, verifier=verifier)
            running.push_async_callback(platform.close)
            app.state.platform = platform
            # A node that restarted holds no publisher: sessions still naming it as their media node are not live here.
            await platform.streams.forget_stale_media_nodes()
            if platform.rtmp is not None:  # listen for RTMP(S) publishers
                # Crash recovery: what this node held when it last died goes into the reconnect grace first.
                await recover_held_sessions(platform.sessions, platform.streams, platform.media.recordings_dir)
                await platform.rtmp.start()
                running.push_async_callback(platform.rtmp.stop)
                log.info("RTMP ingest listening on port %d", platform.rtmp.port)
            if platform.previews is not None:
                platform.previews.start()
                running.push_async_callback(platform.previews.stop)
            await realtime.start(platform)
            running.push_async_callback(realtime.close)
            platform.webhooks.start()  # push to agents: after the relay, which carries agent events to their sockets
            running.push_async_callback(platform.webhooks.stop)
            platform.restreams.start()  # pushes to other platforms follow session_started/session_ended
            running.push_async_callback(platform.restreams.stop)
            await platform.nudges.start()  # operator actions and sessions ended elsewhere wake these two watchers
            running.push_async_callback(platform.nudges.close)
            running.push_async_callback(_cancel, await platform.operator.start_watching(settings.operator_poll_seconds))
            ended_elsewhere = platform.streams.watch_sessions_ended_elsewhere(platform.nudges.waiter(SESSIONS))
            running.push_async_callback(_cancel, asyncio.create_task(ended_elsewhere))
            running.push_async_callback(wal_checkpoints.stop, wal_checkpoints.start(platform.engine))
            if settings.demo:
                running.push_async_callback((await start_demo(platform)).close)
            yield

    return lifespan


def _install_routes(app: FastAPI, settings: Settings) -> None:
    """Every route, in the order that matters: specific paths first, the watch page ``/{name}`` last."""
    install_error_handlers(app)
    install_redirects(app)
    for module in (agents, streams, chat, users, sessions, auth, profile, session_owner):
        app.include_router(module.router)
    app.include_router(moderation.router)
    app.include_router(webhooks.router)  # push to agents (API.md "Push to agents")
    app.include_router(restreams.router)  # restream to other platforms
    app.include_router(clips.router)  # clips of live streams (issue 16)
    app.include_router(share.router)  # share cards and links (issue 16)
    app.include_router(raids.router)  # raids (issue 16)
    for module in (tokens, token_chart, trades, wallet):  # the ledger (API.md "Tokens, trades and tips")
        app.include_router(module.router)
    app.include_router(v1_compat.router)  # the first agent API's paths (API.md "Compatibility with older clients")
    app.include_router(site_router)
    app.include_router(console_router)  # the operator console at /admin (before the pages' /{name})
    app.include_router(playback_router)
    media_dir = settings.data_dir / "media"
    media_dir.mkdir(parents=True, exist_ok=True)
    app.mount("/media", StaticFiles(directory=media_dir, check_dir=False), name="media")
    recordings_dir = settings.data_dir / "recordings"
    recordings_dir.mkdir(parents=True, exist_ok=True)
    app.mount("/recordings", StaticFiles(directory=recordings_dir, check_dir=False), name="recordings")
    install_pages(app)  # last: the watch page /{name} must not shadow any route above (static files at /static)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _document_errors_as_served(app: FastAPI) -> None:
    """Validation failures are answered 400 ``{error, code}`` (API.md), not FastAPI's 422: say so in OpenAPI."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for path_item in schema.get("paths", {}).values():
                for operation in path_item.values():
                    responses = operation.get("responses", {})
                    if responses.pop("422", None) is not None and "400" not in responses:
                        responses["400"] = {
                            "description": "bad input",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                        }
            schemas = schema.get("components", {}).get("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
