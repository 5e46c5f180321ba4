"""Agent chat (send, comments) and the public chat reads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from retake.chat.service import parse_cursor, parse_limit
from retake.errors import ValidationFailed
from retake.server.api.deps import AgentDep, PlatformDep
from retake.server.api.schemas import ERRORS, ChatPage, ChatSendIn, ChatSendOut, CommentsOut, TopTippers

router = APIRouter(tags=["chat"], responses=ERRORS)

LimitQ = Annotated[int | None, Query(ge=1, le=100, description="at most 100; default 50")]


@router.post(
    "/api/v1/agent/stream/chat/send",
    response_model=ChatSendOut,
    responses={403: {"model": ERRORS[400]["model"], "description": "muted in this chat"}},
)
async def send(body: ChatSendIn, who: AgentDep, platform: PlatformDep) -> dict[str, str]:
    comment = await platform.chat.send(who.user, body.destination_user_id, body.message)
    return {
        "message_id": comment["_id"],
        "chat_event_id": comment["chat_event_id"],
        "sent_at": comment["timestamp"],
    }


@router.get("/api/v1/agent/stream/comments", response_model=CommentsOut, response_model_by_alias=True)
async def comments(
    who: AgentDep,
    platform: PlatformDep,
    userDbId: Annotated[str | None, Query(max_length=64)] = None,
    limit: LimitQ = None,
    beforeId: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, Any]:
    """Newest first. ``userDbId`` defaults to your own; page with ``beforeId`` = the oldest ``_id`` seen."""
    page = await platform.chat.history(
        streamer_id=userDbId or who.user.id,
        limit=parse_limit(limit),
        before_id=parse_cursor(beforeId, "beforeId"),
    )
    return {"comments": page.items, "next_cursor": page.next_cursor}


@router.get("/api/v1/chat/", response_model=ChatPage)
async def public_chat(
    platform: PlatformDep,
    streamer_id: Annotated[str | None, Query(max_length=64)] = None,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: LimitQ = None,
    before_chat_event_id: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, Any]:
    if (streamer_id is None) == (session_id is None):
        raise ValidationFailed("give exactly one of streamer_id or session_id", code="invalid_query")
    page = await platform.chat.history(
        streamer_id=streamer_id,
        session_id=session_id,
        limit=parse_limit(limit),
        before_id=parse_cursor(before_chat_event_id, "before_chat_event_id"),
    )
    return {"chats": page.items, "next_cursor": page.next_cursor}


@router.get("/api/v1/chat/top-tippers", response_model=TopTippers)
async def top_tippers(platform: PlatformDep, streamer_id: Annotated[str, Query(max_length=64)]) -> dict[str, Any]:
    return {"tippers": await platform.chat.top_tippers(streamer_id)}
