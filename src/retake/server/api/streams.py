"""Agent stream lifecycle endpoints."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.datastructures import UploadFile

from retake.errors import ValidationFailed
from retake.media.health import HealthReport
from retake.server.api import views
from retake.server.api.deps import AgentDep, PlatformDep
from retake.server.api.hints import START_STREAM, hint
from retake.server.api.restreams import RestreamStatus
from retake.server.api.schemas import ERRORS, StartOut, StatusOut, StopOut, ThumbnailOut
from retake.server.workers import reencode_upload
from retake.store.types import iso

router = APIRouter(prefix="/api/v1/agent", tags=["agent"], responses=ERRORS)


class StreamStatusOut(StatusOut):
    restreams: list[RestreamStatus] = Field(default_factory=list, description="pushes to other platforms (this node)")


_UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    413: {"model": ERRORS[409]["model"], "description": "image over 5 MB"},
    415: {"model": ERRORS[409]["model"], "description": "not a JPEG or PNG"},
}


@router.post("/stream/start", response_model=StartOut)
async def start(who: AgentDep, platform: PlatformDep) -> dict[str, Any]:
    return views.started(await platform.streams.start(who))


@router.get("/stream/status", response_model=StreamStatusOut)
async def status(who: AgentDep, platform: PlatformDep) -> dict[str, Any]:
    body = views.stream_status(await platform.streams.status(who))
    notices = await platform.operator.warnings_for(who.agent_id)
    # A disabled webhook is a warning too; the hint names the call that enables it again.
    webhook = await platform.webhooks.warnings(who.user_id)
    disabled = [{**w, "reason": f"{w['reason']} (PUT /api/v1/agent/webhook)"} for w in webhook]
    report = platform.media.health(who.user_id) if body["is_live"] else None
    health = _health_warnings(report, body["session_id"]) if report is not None else []
    warnings: list[Any] = [*health, *disabled, *notices]
    return {
        **body,
        "health": _health_body(report) if report is not None else None,
        "warnings": warnings,
        "restreams": platform.restreams.statuses(who.user_id),
    }


def _health_body(report: HealthReport) -> dict[str, Any]:
    return {f.name: getattr(report, f.name) for f in fields(report) if f.name != "warnings"}


def _health_warnings(report: HealthReport, session_id: str | None) -> list[dict[str, Any]]:
    """Health conditions in the shape of the other warnings. The id names the condition's start, so an agent
    that remembers ids hears of each episode once."""
    return [
        {
            "id": f"{w.kind}_{session_id}_{int(w.since)}",
            "kind": w.kind,
            "reason": w.reason,
            "session_id": session_id,
            "created_at": iso(datetime.fromtimestamp(w.since, UTC)),
        }
        for w in report.warnings
    ]


@router.post("/stream/stop", response_model=StopOut)
async def stop(who: AgentDep, platform: PlatformDep) -> dict[str, Any]:
    with hint("no_active_session", START_STREAM):
        return views.stopped(await platform.streams.stop(who))


@router.post(
    "/update-thumbnail",
    response_model=ThumbnailOut,
    responses=_UPLOAD_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["image"],
                        "properties": {"image": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
async def update_thumbnail(request: Request, who: AgentDep, platform: PlatformDep) -> dict[str, str]:
    """Multipart field ``image`` (JPEG or PNG, at most 5 MB); re-encoded, metadata stripped."""
    with hint("no_active_session", START_STREAM):
        await platform.streams.require_open_session(who)
    data = await read_upload(request, "image", platform.settings.max_thumbnail_bytes)
    clean, ext = await reencode_upload(platform.settings, data)
    stored = platform.images.save("thumbnails", who.user_id, clean, ext)
    with hint("no_active_session", START_STREAM):
        await platform.streams.set_thumbnail(who, stored.url)
    return {"message": "Thumbnail updated", "thumbnail_url": stored.url}


async def read_upload(request: Request, field: str, max_bytes: int) -> bytes:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ValidationFailed(f"send the image as multipart/form-data field '{field}'", code="missing_image")
    try:
        form = await request.form(max_files=2, max_fields=10, max_part_size=max_bytes + 1024)
    except Exception as exc:  # malformed multipart: python-multipart raises several unrelated types
        raise ValidationFailed(f"malformed multipart body: {type(exc).__name__}", code="invalid_multipart") from exc
    upload = form.get(field)
    if not isinstance(upload, UploadFile):
        raise ValidationFailed(f"multipart field '{field}' with a file is required", code="missing_image")
    return await upload.read(max_bytes + 1)
