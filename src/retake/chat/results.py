"""What the chat services answer: frozen records with snake_case fields, plus the typed comment document.

``CommentJson`` is the exception to "the wire format is made at the edge": a comment is built straight into API.md's
JSON shape (both field sets, the skill's ``_id``/``author``/``streamId`` and the newer ``sender_*``), because the
comment-polling path renders pages of them directly to bytes (``pages.py``, docs/benchmarks.md "comment polling")
and the event bus carries each Socket.IO payload as it is emitted. One builder (``service.comment_fields``) makes
it for every path, so REST pages, REST answers and broadcasts cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict


class Author(TypedDict):
    walletAddress: str
    fusername: str
    fid: int
    favatar: str


class CommentJson(TypedDict):
    _id: str
    chat_event_id: str
    streamId: str
    streamer_id: str
    session_id: str | None
    type: str
    text: str
    timestamp: str | None
    author: Author
    sender_user_id: str
    sender_username: str
    sender_display_name: str
    sender_pfp: str
    sender_wallet_address: str
    sender_streamercoin_holdings: int | float
    tip_data: Mapping[str, Any] | None
    trade_data: Mapping[str, Any] | None


class ChatItemJson(TypedDict):
    """An item of the public ``/chat/`` page (schemas.ChatItem, in its field order)."""

    chat_event_id: str
    sender_user_id: str
    sender_username: str
    text: str
    type: str
    tip_data: Mapping[str, Any] | None
    trade_data: Mapping[str, Any] | None
    timestamp: str | None


@dataclass(frozen=True, slots=True)
class PostedComment:
    """A stored chat line: its id and time, and the comment as it was broadcast (what a Socket.IO sender gets as
    its acknowledgement)."""

    chat_event_id: str
    timestamp: str | None
    comment: CommentJson


@dataclass(frozen=True, slots=True)
class Tipper:
    user_id: str
    username: str
    total_amount: float  # SOL
    tip_count: int
    rank: int


# -- moderation ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PinState:
    """A session's pin after a pin/unpin, or as a late viewer reads it; also the ``pinned`` event's payload."""

    streamer_id: str
    session_id: str | None
    pinned: bool
    chat_event_id: str | None
    message: CommentJson | None  # None after an unpin
    timestamp: str | None


@dataclass(frozen=True, slots=True)
class Deleted:
    deleted: int
    chat_event_id: str


@dataclass(frozen=True, slots=True)
class DeletedAll:
    deleted: int
    streamer_id: str
    session_id: str | None


@dataclass(frozen=True, slots=True)
class JailState:
    user_id: str
    username: str
    muted: bool
    streamer_id: str
    session_id: str | None
    timestamp: str | None


@dataclass(frozen=True, slots=True)
class MutedUser:
    user_id: str
    username: str
    avatar_url: str
    muted_at: str | None
    muted_by: str
    session_id: str | None


@dataclass(frozen=True, slots=True)
class MutedUsers:
    session_id: str
    streamer_id: str
    muted_users: tuple[MutedUser, ...]


# -- operator desk ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperatorNotice:
    """A warning or shutdown the operator issued to an agent (``retake admin warn|shutdown``)."""

    id: str
    kind: str
    reason: str
    session_id: str | None
    created_at: str | None
