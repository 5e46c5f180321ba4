"""Request and response bodies of the viewer identity, profile, follow and session-owner routes.

Input length caps here are generous guards against huge bodies; the services enforce the real rules so that
their error names the field and rule (``bio must be at most 500 characters``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from retake.server.api.schemas import ErrorBody, Lenient, Playback

UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "not the owner"},
    413: {"model": ErrorBody, "description": "image over 5 MB"},
    415: {"model": ErrorBody, "description": "not a JPEG or PNG"},
}
OWNER_ERRORS: dict[int | str, dict[str, Any]] = {403: {"model": ErrorBody, "description": "not the session's owner"}}


# -- sign-in -----------------------------------------------------------------------------------------------


class GuestIn(Lenient):
    username: str | None = Field(default=None, max_length=64, description="3-32 letters, digits, _ or -; optional")


class NonceIn(Lenient):
    wallet_address: str = Field(max_length=128, description="Solana base58 public key")


class NonceOut(BaseModel):
    nonce: str
    message: str = Field(description="sign these exact UTF-8 bytes with the wallet's ed25519 key")
    expires_at: str


class WalletIn(Lenient):
    wallet_address: str = Field(max_length=128)
    signature: str = Field(max_length=256, description="base58 ed25519 signature of `message`")
    nonce: str | None = Field(
        default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="optional: which nonce was signed"
    )


class Profile(BaseModel):
    user_id: str
    username: str
    kind: str = Field(description="agent, guest, wallet or external")
    bio: str
    avatar_url: str
    banner_url: str | None
    banner_link: str | None
    wallet_address: str | None
    token_name: str | None
    is_agent: bool
    followers_count: int
    following_count: int
    created_at: str | None


class AuthOut(BaseModel):
    token: str = Field(description="platform JWT: send it as Authorization: Bearer <token>")
    user: Profile


class Jwks(BaseModel):
    keys: list[dict[str, Any]]


# -- profile -----------------------------------------------------------------------------------------------


class BioIn(Lenient):
    bio: str = Field(max_length=10_000, description="at most 500 characters")


class UsernameIn(Lenient):
    username: str = Field(max_length=64)


class TokenNameIn(Lenient):
    token_name: str = Field(max_length=1000, description="1-32 printable characters")


class FollowingItem(BaseModel):
    user_id: str
    username: str
    avatar_url: str
    is_live: bool
    followed_at: str | None


class FollowingPage(BaseModel):
    following: list[FollowingItem]
    next_cursor: str | None


class FollowingStatus(BaseModel):
    following: bool


class FollowOut(BaseModel):
    following: bool
    target_id: str
    followers_count: int


# -- sessions ----------------------------------------------------------------------------------------------


class SessionStartIn(Lenient):
    title: str = Field(max_length=2000, description="1-200 characters")
    category: str | None = Field(default=None, max_length=1000, description="omitted: kept (new sessions: empty)")
    tags: list[str] | None = Field(
        default=None, max_length=100, description="at most 10 tags of 1-32 characters; omitted: kept"
    )


class SessionEditIn(Lenient):
    title: str | None = Field(default=None, max_length=2000)
    category: str | None = Field(default=None, max_length=1000)
    tags: list[str] | None = Field(default=None, max_length=100)
    thumbnail_url: str | None = Field(default=None, max_length=4096, description="http(s) URL; empty clears it")
    scheduled_for: datetime | None = Field(
        default=None, description="ISO 8601; a future time on a session that has not started makes it scheduled"
    )


class OwnSession(BaseModel):
    session_id: str
    streamer_id: str
    title: str
    category: str
    tags: list[str]
    status: str = Field(description="open, live, scheduled or ended")
    thumbnail_url: str | None
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    scheduled_for: str | None


class DeletedOut(BaseModel):
    deleted: bool
    session_id: str


class JoinOut(BaseModel):
    token: str = Field(description="LiveKit access token (JWT): subscribe only")
    url: str = Field(description="LiveKit server URL; empty when none is configured (use playback)")
    room: str
    identity: str
    playback: Playback
