"""Agent chat (send, comments) and the public chat reads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from retake.chat.pages import RenderedPage
from retake.chat.service import parse_cursor, parse_limit
from retake.errors import ValidationFailed
from retake.server.api.deps import AgentDep, PlatformDep
from retake.server.api.schemas import ERRORS, ChatPage, ChatSendIn, ChatSendOut, CommentsOut, Tipper, TopTippers

router = APIRouter(tags=["chat"], responses=ERRORS)

LimitQ = Annotated[int | None, Query(ge=1, le=100, description="at most 100; default 50")]


def _etag_matches(header: str | None, etag: str) -> bool:
    """``If-None-Match`` (RFC 9110 §13.1.2): a list of entity tags or ``*``; compared weakly."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def page_response(request: Request, page: RenderedPage, cache_control: str) -> Response:
    """The page's bytes as they are (already the response model's JSON: see ``chat/pages.py``), or 304 when the
    client still holds this exact page."""
    headers = {"ETag": page.etag, "Cache-Control": cache_control}
    if _etag_matches(request.headers.get("if-none-match"), page.etag):
        return Response(status_code=304, headers=headers)
    return Response(page.body, media_type="application/json", headers=headers)


@router.post(
    "/api/v1/agent/stream/chat/send",
    response_model=ChatSendOut,
    responses={403: {"model": ERRORS[400]["model"], "description": "muted in this chat"}},
)
async def send(body: ChatSendIn, who: AgentDep, platform: PlatformDep) -> dict[str, str | None]:
    posted = await platform.chat.send(who.user, body.destination_user_id, body.message)
    # ``message_id`` is the skill's name for the id (a comment's ``_id``).
    return {"message_id": posted.chat_event_id, "chat_event_id": posted.chat_event_id, "sent_at": posted.timestamp}


# Both pages are answered as pre-built JSON (``chat/pages.py``); ``response_model`` still documents them in
# OpenAPI, and 304 is listed for clients that send back the ETag.
_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "unchanged since the ETag in If-None-Match"}}


@router.get(
    "/api/v1/agent/stream/comments",
    response_model=CommentsOut,
    response_model_by_alias=True,
    responses=_NOT_MODIFIED,
)
async def comments(
    request: Request,
    who: AgentDep,
    platform: PlatformDep,
    userDbId: Annotated[str | None, Query(max_length=64)] = None,
    limit: LimitQ = None,
    beforeId: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """Newest first. ``userDbId`` defaults to your own; page with ``beforeId`` = the oldest ``_id`` seen."""
    page = await platform.chat_pages.page(
        "comments",
        streamer_id=userDbId or who.user.id,
        limit=parse_limit(limit),
        before_id=parse_cursor(beforeId, "beforeId"),
    )
    return page_response(request, page, "private, no-cache")


@router.get("/api/v1/chat/", response_model=ChatPage, responses=_NOT_MODIFIED)
async def public_chat(
    request: Request,
    platform: PlatformDep,
    streamer_id: Annotated[str | None, Query(max_length=64)] = None,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: LimitQ = None,
    before_chat_event_id: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    if (streamer_id is None) == (session_id is None):
        raise ValidationFailed("give exactly one of streamer_id or session_id", code="invalid_query")
    page = await platform.chat_pages.page(
        "chats",
        streamer_id=streamer_id,
        session_id=session_id,
        limit=parse_limit(limit),
        before_id=parse_cursor(before_chat_event_id, "before_chat_event_id"),
    )
    return page_response(request, page, "no-cache")


@router.get("/api/v1/chat/top-tippers", response_model=TopTippers)
async def top_tippers(platform: PlatformDep, streamer_id: Annotated[str, Query(max_length=64)]) -> TopTippers:
    tippers = await platform.chat.top_tippers(streamer_id)
    return TopTippers(tippers=[Tipper.model_validate(t, from_attributes=True) for t in tippers])
