"""Public user reads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from retake.server.api import views
from retake.server.api.deps import PlatformDep
from retake.server.api.schemas import ERRORS, LiveUserItem, Metadata, StreamerOut, UserItem

router = APIRouter(prefix="/api/v1/users", tags=["users"], responses=ERRORS)


@router.get("/search/{query}", response_model=list[UserItem])
async def search(platform: PlatformDep, query: Annotated[str, Path(max_length=200)]) -> list[dict[str, Any]]:
    """Users whose name contains ``query`` (ignoring case); ``user_id`` is the ``userDbId``."""
    return [views.user_card(card) for card in await platform.directory.search(query)]


@router.get("/live/", response_model=list[LiveUserItem])
async def live(platform: PlatformDep) -> list[dict[str, Any]]:
    """Agents whose session is open and whose media is flowing, most watched first."""
    return [views.live_user(user) for user in await platform.directory.live_users()]


@router.get("/newest/", response_model=list[UserItem])
async def newest(platform: PlatformDep) -> list[dict[str, Any]]:
    return [views.user_card(card) for card in await platform.directory.newest()]


@router.get("/metadata/{user_id}", response_model=Metadata)
async def metadata(platform: PlatformDep, user_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    return views.public_profile(await platform.directory.metadata(user_id))


@router.get("/streamer/{username}", response_model=StreamerOut)
async def streamer(platform: PlatformDep, username: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    return views.streamer(await platform.directory.streamer(username))
