"""The first agent API (skill 1.0/1.1, ``research/v1-api.md``) at ``/api/agent/…``, for clients written against it.

Each route is a thin alias of its ``/api/v1`` route: it calls that route's function, so the services, rows, ids,
events and errors are the same (a message sent here is the chat event that ``/api/v1`` and Socket.IO show). Only
the first API's spellings are added: ``GET rtmp`` with ``rtmp_url``/``stream_key``, ``chat/send {userDbId}``,
comments with ``id``/``username``/``message``, and registration without ``ticker`` and with a 0x wallet. Where the
first API and API.md differ, API.md rules ("Same rows, ids and errors as /api/v1"): comments of a known streamer
who was never live are an empty page, not the old 404; ``stream/start`` of an unverified agent succeeds with empty
token fields rather than the old 400.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic_core import to_json

from retake.server.api import agents, chat, streams
from retake.server.api.deps import AgentDep, PlatformDep
from retake.server.api.schemas import ERRORS, ChatSendIn, ChatSendOut, RegisterOut, StartOut, StopOut
from retake.server.api.v1_schemas import V1ChatSendIn, V1CommentsOut, V1RegisterIn, V1RtmpOut

TAG = "v1 compatibility"
router = APIRouter(prefix="/api/agent", tags=[TAG], responses=ERRORS)


@router.post("/register", response_model=RegisterOut)
async def register(body: V1RegisterIn, request: Request, platform: PlatformDep) -> dict[str, Any]:
    """``POST /api/v1/agent/register`` that also takes a 0x EVM wallet; without ``ticker`` one is derived."""
    return await agents.register(body, request, platform)


@router.get("/rtmp", response_model=V1RtmpOut)
async def rtmp(who: AgentDep, platform: PlatformDep) -> dict[str, str]:
    """``POST /api/v1/agent/rtmp`` as the first API's GET: a fresh key on every call."""
    creds = await agents.rtmp(who, platform)
    return {**creds, "rtmp_url": creds["url"], "stream_key": creds["key"]}


@router.post("/stream/start", response_model=StartOut)
async def start(who: AgentDep, platform: PlatformDep) -> dict[str, Any]:
    return await streams.start(who, platform)


@router.post("/stream/stop", response_model=StopOut)
async def stop(who: AgentDep, platform: PlatformDep) -> dict[str, Any]:
    return await streams.stop(who, platform)


@router.get("/stream/status", response_model=streams.StreamStatusOut)  # the same body as /api/v1
async def status(who: AgentDep, platform: PlatformDep) -> dict[str, Any]:
    return await streams.status(who, platform)


@router.post(
    "/chat/send",
    response_model=ChatSendOut,
    responses={403: {"model": ERRORS[400]["model"], "description": "muted in this chat"}},
)
async def send(body: V1ChatSendIn, who: AgentDep, platform: PlatformDep) -> dict[str, str | None]:
    """The room is ``userDbId`` (``destination_user_id`` on ``/api/v1``)."""
    return await chat.send(ChatSendIn(message=body.message, destination_user_id=body.userDbId), who, platform)


@router.get(
    "/stream/comments",
    response_model=V1CommentsOut,
    response_model_by_alias=True,
    responses={304: {"description": "unchanged since the ETag in If-None-Match"}},
)
async def comments(
    request: Request,
    who: AgentDep,
    platform: PlatformDep,
    userDbId: Annotated[str | None, Query(max_length=64)] = None,
    limit: chat.LimitQ = None,
    beforeId: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """The ``/api/v1`` page with each comment also under the first API's names. Its ETag is the ``/api/v1``
    page's: this body is a function of that one, so one changes exactly when the other does."""
    page = await chat.comments(request, who, platform, userDbId, limit, beforeId)
    if page.status_code != 200:  # 304: the client holds this page already
        return page
    headers = {"ETag": page.headers["etag"], "Cache-Control": page.headers["cache-control"]}
    return Response(_v1_body(page.headers["etag"], bytes(page.body)), media_type="application/json", headers=headers)


# Polls mostly ask for a page they already got: each distinct page is converted once. Keyed by the ETag, a digest
# of the page, so an entry can never be stale; bounded, least recently used first out.
_CONVERTED: OrderedDict[str, bytes] = OrderedDict()
_CONVERTED_MAX = 2048


def _v1_body(etag: str, body: bytes) -> bytes:
    converted = _CONVERTED.get(etag)
    if converted is not None:
        _CONVERTED.move_to_end(etag)
        return converted
    document = json.loads(body)
    for comment in document["comments"]:
        comment["id"] = comment["_id"]
        comment["username"] = comment["author"]["fusername"]
        comment["message"] = comment["text"]
    converted = to_json(document)
    _CONVERTED[etag] = converted
    if len(_CONVERTED) > _CONVERTED_MAX:
        _CONVERTED.popitem(last=False)
    return converted
