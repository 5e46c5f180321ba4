"""Chat moderation for the stream owner (agent access token or the owner's JWT): pins, deletion, jail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from retake.chat.results import Deleted, DeletedAll, JailState, MutedUsers
from retake.server.api.deps import PlatformDep, UserDep
from retake.server.api.schemas import ERRORS, Comment, ErrorBody, Lenient
from retake.server.realtime.wire import pin_state

_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    403: {"model": ErrorBody, "description": "authenticated, but not the stream owner"},
}

router = APIRouter(prefix="/api/v1", tags=["moderation"], responses=_ERRORS)

EventIdPath = Annotated[str, Path(max_length=32, description="a numeric chat event id")]
SessionPath = Annotated[str, Path(max_length=64)]


class PinnedOut(BaseModel):
    """Also the payload of the ``pinned`` Socket.IO event in room ``<streamer_id>/<session_id>``."""

    streamer_id: str
    session_id: str | None
    pinned: bool
    chat_event_id: str | None
    message: Comment | None = Field(description="the pinned message; null after an unpin")
    timestamp: str | None


class DeletedOut(BaseModel):
    deleted: int
    chat_event_id: str


class DeleteAllIn(Lenient):
    streamer_id: str | None = Field(default=None, max_length=64, description="your own userDbId (the default)")
    session_id: str | None = Field(default=None, max_length=64, description="only this session's messages")


class DeletedAllOut(BaseModel):
    deleted: int
    streamer_id: str
    session_id: str | None


class JailIn(Lenient):
    user_id: str = Field(max_length=64, description="the user to mute in this streamer's chat")


class JailOut(BaseModel):
    user_id: str
    username: str
    muted: bool
    streamer_id: str
    streamId: str
    session_id: str | None
    timestamp: str | None

    @classmethod
    def of(cls, state: JailState) -> JailOut:
        """``streamId`` is the skill's name for ``streamer_id``; API.md shows both."""
        return cls(
            user_id=state.user_id,
            username=state.username,
            muted=state.muted,
            streamer_id=state.streamer_id,
            streamId=state.streamer_id,
            session_id=state.session_id,
            timestamp=state.timestamp,
        )


class MutedUser(BaseModel):
    user_id: str
    username: str
    avatar_url: str
    muted_at: str | None
    muted_by: str
    session_id: str | None


class MutedUsersOut(BaseModel):
    session_id: str
    streamer_id: str
    muted_users: list[MutedUser]


@router.post("/chat/{chat_event_id}/pin", response_model=PinnedOut)
async def pin(chat_event_id: EventIdPath, who: UserDep, platform: PlatformDep) -> dict[str, Any]:
    """Pin a message of your chat sent during a session; it replaces the session's earlier pin."""
    return pin_state(await platform.moderation.pin(who, chat_event_id))  # the ``pinned`` broadcast's payload


@router.delete("/chat/{chat_event_id}/pin", response_model=PinnedOut)
async def unpin(chat_event_id: EventIdPath, who: UserDep, platform: PlatformDep) -> dict[str, Any]:
    """Unpin; answers ``pinned: false`` whether or not the message was pinned."""
    return pin_state(await platform.moderation.unpin(who, chat_event_id))


@router.delete("/chat/{chat_event_id}", response_model=DeletedOut)
async def delete_message(chat_event_id: EventIdPath, who: UserDep, platform: PlatformDep) -> Deleted:
    """Delete one message of your chat; broadcast as ``message`` with ``type: "delete"``."""
    return await platform.moderation.delete_message(who, chat_event_id)


@router.post("/chat/delete-all", response_model=DeletedAllOut)
async def delete_all(who: UserDep, platform: PlatformDep, body: DeleteAllIn | None = None) -> DeletedAll:
    """Delete every message of your chat (or of one of your sessions); broadcast as ``type: "delete_all"``."""
    body = body or DeleteAllIn()
    return await platform.moderation.delete_all(who, body.streamer_id, body.session_id)


@router.post("/sessions/{session_id}/jail", response_model=JailOut)
async def jail(session_id: SessionPath, body: JailIn, who: UserDep, platform: PlatformDep) -> JailOut:
    """Mute a user in your chat until unjailed (across sessions); their messages are refused with 403 ``muted``."""
    return JailOut.of(await platform.moderation.jail(who, session_id, body.user_id))


@router.post("/sessions/{session_id}/unjail", response_model=JailOut)
async def unjail(session_id: SessionPath, body: JailIn, who: UserDep, platform: PlatformDep) -> JailOut:
    return JailOut.of(await platform.moderation.unjail(who, session_id, body.user_id))


@router.get("/sessions/{session_id}/muted-users", response_model=MutedUsersOut)
async def muted_users(session_id: SessionPath, who: UserDep, platform: PlatformDep) -> MutedUsers:
    """Who is muted in the chat of this session's streamer (owner only)."""
    return await platform.moderation.muted_users(who, session_id)


@router.get("/sessions/{session_id}/pinned", response_model=PinnedOut)
async def pinned(session_id: SessionPath, platform: PlatformDep) -> dict[str, Any]:
    """The session's pinned message, for viewers who join after it was pinned (public)."""
    return pin_state(await platform.moderation.pinned_of(session_id))
