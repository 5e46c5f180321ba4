"""Clips (issue 16): ``POST /agent/clips``, ``POST /sessions/:id/clips`` (signed-in viewers), ``GET /clips/:id``,
``GET /users/:user_id/clips`` (paginated ``{clips, next_cursor}``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from retake.clips.window import MAX_SECONDS, MIN_SECONDS
from retake.server.api.deps import AgentDep, PlatformDep, UserDep
from retake.server.api.schemas import ERRORS, Lenient
from retake.server.realtime import wire

router = APIRouter(prefix="/api/v1", tags=["clips"], responses=ERRORS)

IdPath = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
DEFAULT_SECONDS = 30


class ClipIn(Lenient):
    seconds: float = Field(default=DEFAULT_SECONDS, description=f"the last {MIN_SECONDS}-{MAX_SECONDS} seconds")
    title: str | None = Field(default=None, max_length=1000, description="at most 100 characters")


class ClipOut(BaseModel):
    clip_id: str
    session_id: str
    streamer_id: str
    username: str
    created_by: str | None
    title: str
    duration_seconds: float
    size_bytes: int
    created_at: str | None
    video_url: str = Field(description="the MP4 (H.264/AAC, moov first)")
    thumbnail_url: str = Field(description="a JPEG of its first frame")
    url: str = Field(description="the clip's page")


class ClipsPage(BaseModel):
    clips: list[ClipOut]
    next_cursor: str | None


@router.post("/agent/clips", response_model=ClipOut)
async def agent_clip(who: AgentDep, platform: PlatformDep, body: ClipIn | None = None) -> dict[str, Any]:
    """Clip the last ``seconds`` of your live stream (409 ``no_active_session`` / ``not_live`` otherwise)."""
    body = body or ClipIn()
    session_id = await platform.streams.require_open_session(who)
    info = await platform.clips.create(session_id, who.user.id, body.seconds, body.title)
    return wire.clip(info)


@router.post("/sessions/{session_id}/clips", response_model=ClipOut)
async def viewer_clip(
    session_id: IdPath, who: UserDep, platform: PlatformDep, body: ClipIn | None = None
) -> dict[str, Any]:
    """A signed-in viewer clips the last ``seconds`` of a live session (rate-limited: ``RETAKE_CLIP_RATE``)."""
    body = body or ClipIn()
    info = await platform.clips.create(session_id, who.id, body.seconds, body.title)
    return wire.clip(info)


@router.get("/clips/{clip_id}", response_model=ClipOut)
async def get_clip(clip_id: IdPath, platform: PlatformDep) -> dict[str, Any]:
    return wire.clip(await platform.clips.get(clip_id))


@router.get("/users/{user_id}/clips", response_model=ClipsPage)
async def user_clips(
    user_id: IdPath,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Clips of this user's streams, newest first."""
    page = await platform.clips.of_streamer(user_id, limit, cursor)
    return {"clips": [wire.clip(item) for item in page.items], "next_cursor": page.next_cursor}
