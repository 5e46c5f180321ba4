"""Public session reads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from retake.chat.service import parse_limit
from retake.server.api import views
from retake.server.api.deps import PlatformDep
from retake.server.api.schemas import ERRORS, RecordedPage, ScheduledPage, SessionItem

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"], responses=ERRORS)

LimitQ = Annotated[int | None, Query(ge=1, le=100)]
CursorQ = Annotated[str | None, Query(max_length=200)]
IdPath = Annotated[str, Path(max_length=64)]


@router.get("/active/", response_model=list[SessionItem])
async def active(platform: PlatformDep) -> list[dict[str, Any]]:
    return [views.session_card(card) for card in await platform.directory.active_sessions()]


@router.get("/active/{streamer_id}/", response_model=SessionItem)
async def active_of(platform: PlatformDep, streamer_id: IdPath) -> dict[str, Any]:
    return views.session_card(await platform.directory.active_session_of(streamer_id))


@router.get("/recorded/", response_model=RecordedPage)
async def recorded(platform: PlatformDep, limit: LimitQ = None, cursor: CursorQ = None) -> dict[str, Any]:
    return views.recorded_page(await platform.directory.recorded(None, parse_limit(limit), cursor))


@router.get("/recorded/{streamer_id}/", response_model=RecordedPage)
async def recorded_of(
    platform: PlatformDep, streamer_id: IdPath, limit: LimitQ = None, cursor: CursorQ = None
) -> dict[str, Any]:
    return views.recorded_page(await platform.directory.recorded(streamer_id, parse_limit(limit), cursor))


@router.get("/scheduled/", response_model=ScheduledPage)
async def scheduled(platform: PlatformDep, limit: LimitQ = None, cursor: CursorQ = None) -> dict[str, Any]:
    return views.scheduled_page(await platform.directory.scheduled(None, parse_limit(limit), cursor))


@router.get("/scheduled/{streamer_id}/", response_model=ScheduledPage)
async def scheduled_of(
    platform: PlatformDep, streamer_id: IdPath, limit: LimitQ = None, cursor: CursorQ = None
) -> dict[str, Any]:
    return views.scheduled_page(await platform.directory.scheduled(streamer_id, parse_limit(limit), cursor))
