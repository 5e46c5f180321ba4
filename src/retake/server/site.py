"""Site-root routes: health (liveness), readiness, metrics, the skill files, uploaded media."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from retake import __version__, extensions
from retake.server.api.deps import PlatformDep
from retake.server.api.schemas import ErrorBody, Health
from retake.server.middleware import Metrics
from retake.server.overload import RETRY_AFTER_SECONDS, InflightLimitMiddleware
from retake.skill import render_skill_md, skill_json
from retake.store.availability import availability_problem

router = APIRouter(tags=["site"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(platform: PlatformDep) -> Any:
    try:
        async with platform.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        database = "ok"
    except Exception:  # health reports, it does not raise
        database = "unavailable"
    body = {
        "status": "ok" if database == "ok" else "degraded",
        "version": __version__,
        "database": database,
        "live_streams": len(platform.live.live_stream_ids()),
        "extensions": extensions.compiled_modules(),  # [] when the hot path runs as pure Python
    }
    return JSONResponse(body, status_code=200 if database == "ok" else 503)


READY_CHECK_SECONDS = 2.0  # a load balancer's probe times out after a few seconds: answer before it does
_NOT_READY = {
    "starting": "the node is starting",
    "overloaded": "the node is overloaded",
    "database_unavailable": "the database is unavailable",
}


def _limiter(request: Request) -> InflightLimitMiddleware | None:
    node: Any = request.app.middleware_stack
    while node is not None and not isinstance(node, InflightLimitMiddleware):
        node = getattr(node, "app", None)
    return node


async def _not_ready(request: Request) -> str | None:
    platform = getattr(request.app.state, "platform", None)
    if platform is None:
        return "starting"  # the lifespan has not finished (migrations, recovery, listeners)
    limiter = _limiter(request)
    if limiter is not None and limiter.full:
        return "overloaded"
    try:
        async with asyncio.timeout(READY_CHECK_SECONDS):
            async with platform.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except TimeoutError:  # a busy pool (every connection in use) or a database that does not answer
        checked_out = getattr(platform.engine.pool, "checkedout", None)
        return "overloaded" if checked_out is not None and checked_out() > 0 else "database_unavailable"
    except Exception as exc:  # readiness reports, it does not raise
        return "overloaded" if availability_problem(exc) == "overloaded" else "database_unavailable"
    return None


@router.get(
    "/ready",
    responses={
        200: {"content": {"application/json": {"example": {"status": "ready"}}}, "description": "send traffic"},
        503: {"model": ErrorBody, "description": "no new traffic: `starting`, `overloaded`, `database_unavailable`"},
    },
)
async def ready(request: Request) -> JSONResponse:
    """Readiness for load balancers: 200 when this node should get new traffic, else 503 with the reason as
    ``code``. ``/health`` stays the liveness check (is the process alive)."""
    reason = await _not_ready(request)
    if reason is None:
        return JSONResponse({"status": "ready"})
    retry = RETRY_AFTER_SECONDS if reason == "overloaded" else 5
    return JSONResponse(
        {"error": _NOT_READY[reason], "code": reason}, status_code=503, headers={"Retry-After": str(retry)}
    )


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request, platform: PlatformDep) -> Response:
    metrics: Metrics = request.app.state.metrics
    metrics.live_streams.set(len(platform.live.live_stream_ids()))
    metrics.stream_health.update(platform.media.health_reports())
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/skill.md",
    response_class=Response,
    responses={200: {"content": {"text/markdown": {"schema": {"type": "string"}}}, "description": "the skill"}},
)
async def skill_md(platform: PlatformDep) -> Response:
    text_md = render_skill_md(platform.settings.public_url, platform.settings.rtmp_url)
    return Response(text_md, media_type="text/markdown; charset=utf-8")


@router.get("/skill.json")
async def skill_json_route(platform: PlatformDep) -> dict[str, Any]:
    return skill_json(platform.settings.public_url)
