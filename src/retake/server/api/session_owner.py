"""Session controls for its owner (JWT or agent token), and the public LiveKit join token."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from retake.errors import Conflict
from retake.principal import Principal
from retake.server.api import views
from retake.server.api.deps import PlatformDep, UserDep
from retake.server.api.profile_schemas import (
    OWNER_ERRORS,
    DeletedOut,
    JoinOut,
    OwnSession,
    SessionEditIn,
    SessionStartIn,
)
from retake.server.api.schemas import ERRORS
from retake.streams.owner import SessionEdit

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"], responses=ERRORS)

# Ids are UUIDs; the pattern keeps bytes PostgreSQL refuses (NUL) from ever reaching a query.
IdPath = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


async def optional_user(request: Request, platform: PlatformDep) -> Principal | None:
    """The viewer a ``Bearer`` token names, or ``None`` for an anonymous viewer. A token that is sent must be valid.

    Read by hand rather than declared as a security scheme: the route is public, and the OpenAPI document should
    not claim it needs credentials."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return await platform.users.authenticate(token.strip())


@router.post("/start", response_model=OwnSession)
async def start(body: SessionStartIn, who: UserDep, platform: PlatformDep) -> dict[str, Any]:
    """Open your session, or update the one already open (an agent's is the same as ``/agent/stream/start``'s);
    your next scheduled session, if any, is the one opened."""
    session = await platform.owned_sessions.start(who, body.title, body.category, body.tags)
    return views.own_session(session)


@router.put("/{session_id}", response_model=OwnSession, responses=OWNER_ERRORS)
async def edit(body: SessionEditIn, session_id: IdPath, who: UserDep, platform: PlatformDep) -> dict[str, Any]:
    """Only the fields sent change. A future ``scheduled_for`` on a session that has not started schedules it."""
    edit = SessionEdit(
        title=body.title,
        category=body.category,
        tags=body.tags,
        thumbnail_url=body.thumbnail_url,
        scheduled_for=body.scheduled_for,
    )
    session = await platform.owned_sessions.update(who, session_id, edit)
    return views.own_session(session)


@router.post("/{session_id}/end", response_model=OwnSession, responses=OWNER_ERRORS)
async def end(session_id: IdPath, who: UserDep, platform: PlatformDep) -> dict[str, Any]:
    """End an open session (idempotent); an agent's publisher is disconnected and its stream key revoked."""
    session = await platform.owned_sessions.end(who, session_id)
    return views.own_session(session)


@router.delete("/{session_id}", response_model=DeletedOut, responses=OWNER_ERRORS)
async def delete(session_id: IdPath, who: UserDep, platform: PlatformDep) -> dict[str, Any]:
    """Remove the session (an open one is ended first)."""
    await platform.owned_sessions.delete(who, session_id)
    return {"deleted": True, "session_id": session_id}


@router.get("/{session_id}/join/", response_model=JoinOut)
async def join(
    session_id: IdPath, platform: PlatformDep, viewer: Annotated[Principal | None, Depends(optional_user)]
) -> dict[str, Any]:
    """A watch-only LiveKit token for the session's room (``room`` = the session id), plus the FLV/HLS playback
    URLs that work without a LiveKit server."""
    session = await platform.owned_sessions.get(session_id)
    if session.status == "ended":
        raise Conflict("the session has ended; watch its recording instead", code="session_ended")
    identity = viewer.id if viewer is not None else f"anon_{secrets.token_hex(8)}"
    name = viewer.username if viewer is not None else "viewer"
    livekit = platform.identity.livekit
    return {
        "token": livekit.viewer_token(session.session_id, identity, name),
        "url": livekit.credentials.url,
        "room": session.session_id,
        "identity": identity,
        "playback": views.playback(platform.directory.playback(session.streamer_id)),
    }
