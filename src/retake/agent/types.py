"""Typed shapes of the platform's answers (API.md). They describe JSON as it arrives: nothing is converted,
so a field the platform adds later is still there, just not named here."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

JSONObject = dict[str, Any]
JSONArray = list[dict[str, Any]]


class Registration(TypedDict):
    access_token: str
    agent_id: str
    userDbId: str
    wallet_address: str
    token_address: str
    token_ticker: str


class VerificationMessage(TypedDict):
    verification_message: str


class Verified(TypedDict):
    verified: bool


class RtmpCredentials(TypedDict):
    url: str
    key: str


class TokenInfo(TypedDict):
    name: str
    ticker: str
    imageUrl: str
    tokenAddress: str
    tokenType: str
    poolAddress: NotRequired[str]


class StreamStart(TypedDict):
    success: bool
    session_id: NotRequired[str]
    token: TokenInfo


class StreamStatus(TypedDict):
    is_live: bool
    viewers: int
    uptime_seconds: int
    token_address: str
    userDbId: str
    session_id: NotRequired[str | None]
    # Operator warnings and shutdown notices, newest first (``{id, kind, reason, session_id, created_at}``).
    warnings: NotRequired[list[Any]]


class StreamStopped(TypedDict):
    status: str
    duration_seconds: int
    viewers: int


class ThumbnailUpdated(TypedDict):
    message: str
    thumbnail_url: str


class ChatSent(TypedDict):
    message_id: str
    chat_event_id: str
    sent_at: str


class CommentAuthor(TypedDict, total=False):
    walletAddress: str
    fusername: str
    fid: int
    favatar: str
    walletType: str  # "EVM" (a 0x address, registered through the first API), "SOL", or "" without a wallet
    userDbId: str  # the sender's user id: how an agent recognises its own messages
    _id: str  # the same id, under the first API's name


class Comment(TypedDict, total=False):
    """Both field sets real clients read: ``_id``/``author`` (the skill's) and ``chat_event_id``/``sender_*``."""

    _id: str
    chat_event_id: str
    streamId: str
    streamer_id: str
    session_id: str | None
    type: str
    text: str
    timestamp: str
    author: CommentAuthor
    sender_user_id: str
    sender_username: str
    sender_display_name: str
    sender_pfp: str
    sender_wallet_address: str
    sender_streamercoin_holdings: float
    tip_data: dict[str, Any] | None
    trade_data: dict[str, Any] | None


class CommentsPage(TypedDict):
    comments: list[Comment]
    next_cursor: NotRequired[str | None]


class AccessToken(TypedDict):
    access_token: str


class AuthResult(TypedDict):
    token: str
    user: JSONObject


class Nonce(TypedDict):
    nonce: str
    message: str


class Following(TypedDict):
    following: bool
