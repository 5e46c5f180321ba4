"""Site-root routes: health, metrics, the skill files, uploaded media."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from retake import __version__
from retake.server.api.deps import PlatformDep
from retake.server.api.schemas import Health
from retake.server.middleware import Metrics
from retake.skill import render_skill_md, skill_json

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
    }
    return JSONResponse(body, status_code=200 if database == "ok" else 503)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request, platform: PlatformDep) -> Response:
    metrics: Metrics = request.app.state.metrics
    metrics.live_streams.set(len(platform.live.live_stream_ids()))
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
