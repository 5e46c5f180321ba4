"""What the chat services answer and publish: frozen records with snake_case fields.

The JSON of API.md (a comment's ``_id``, ``streamId``, ``author{fusername, walletAddress, …}``, the ``type`` of a
moderation notice) is made at the edge, by ``server/realtime/wire.py``, for REST answers and Socket.IO payloads
alike. The comment-polling path renders its pages from rows with that same edge function, handed to
``ChatPages`` by the assembly (``pages.py``), so the names have one definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict


@dataclass(frozen=True, slots=True)
class Sender:
    """Who wrote a chat line, as the user row has it (a missing picture or wallet is None)."""

    user_id: str
    username: str
    avatar_url: str | None
    wallet_address: str | None


@dataclass(frozen=True, slots=True)
class Comment:
    """A stored chat line (``message``, ``tip``, ``trade`` or ``system``): the ``message`` event's record."""

    chat_event_id: str
    streamer_id: str
    session_id: str | None
    kind: str
    text: str
    timestamp: str | None
    tip_data: Mapping[str, Any] | None  # the stored JSON of a tip line (chat.ports.TipData)
    trade_data: Mapping[str, Any] | None
    sender: Sender


class ChatItemJson(TypedDict):
    """An item of the public ``/chat/`` page (schemas.ChatItem, in its field order): API.md's names are the
    record's own here, so ``pages.py`` renders it itself."""

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
    comment: Comment


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
    """A session's pin after a pin/unpin, or as a late viewer reads it; also the ``pinned`` event's record."""

    streamer_id: str
    session_id: str | None
    pinned: bool
    chat_event_id: str | None
    message: Comment | None  # None after an unpin
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
class MessageDeleted:
    """The ``message`` event of a deletion (``type: delete``)."""

    chat_event_id: str
    streamer_id: str
    session_id: str | None
    timestamp: str | None


@dataclass(frozen=True, slots=True)
class ChatCleared:
    """The ``message`` event of a delete-all (``type: delete_all``): ``count`` messages of the chat or session."""

    count: int
    streamer_id: str
    session_id: str | None
    timestamp: str | None


@dataclass(frozen=True, slots=True)
class JailState:
    """A jail/unjail outcome; also the ``message`` event's record (``type: jail`` when muted, else ``unjail``)."""

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
    """A warning or shutdown the operator issued to an agent (``retake admin warn|shutdown``); also the record of
    the ``operator_action`` event."""

    id: str
    kind: str
    reason: str
    session_id: str | None
    created_at: str | None
