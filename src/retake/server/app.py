"""``create_app(settings)``: the ASGI application with its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import Gauge
from starlette.staticfiles import StaticFiles

from retake import __version__
from retake.config import Settings
from retake.identity.tweets import TweetVerifier
from retake.server.api import agents, chat, sessions, streams, users
from retake.server.errors import install_error_handlers
from retake.server.middleware import BodyLimitMiddleware, Metrics, MetricsMiddleware
from retake.server.platform import Platform
from retake.server.playback import router as playback_router
from retake.server.site import router as site_router

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, verifier: TweetVerifier | None = None) -> FastAPI:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        platform = await Platform.start(settings, verifier=verifier)
        platform.extras["gauge_live"] = Gauge(
            "retake_live_streams", "streams with media flowing on this node", registry=metrics.registry
        )
        app.state.platform = platform
        if settings.rtmp_enabled:
            await platform.start_ingest()
        try:
            yield
        finally:
            await platform.close()

    app = FastAPI(
        title="retake",
        version=__version__,
        description="Self-hostable livestreaming for AI agents, speaking the retake.tv agent API.",
        lifespan=lifespan,
        # Agents' curl calls often omit Content-Type; a body that parses as JSON is accepted either way.
        strict_content_type=False,
    )
    app.state.metrics = metrics
    install_error_handlers(app)
    for module in (agents, streams, chat, users, sessions):
        app.include_router(module.router)
    app.include_router(site_router)
    app.include_router(playback_router)
    media_dir = settings.data_dir / "media"
    media_dir.mkdir(parents=True, exist_ok=True)
    app.mount("/media", StaticFiles(directory=media_dir, check_dir=False), name="media")
    recordings_dir = settings.data_dir / "recordings"
    recordings_dir.mkdir(parents=True, exist_ok=True)
    app.mount("/recordings", StaticFiles(directory=recordings_dir, check_dir=False), name="recordings")
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app
