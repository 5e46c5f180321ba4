"""What the account services answer: plain frozen values with snake_case fields.

The wire shapes of API.md (field names, legacy aliases, ISO timestamps, URLs built from handles) are made from
these in ``server/api/views.py``; nothing here knows about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_cursor: str | None  # pass back to get the following page; None on the last one


# -- discovery (accounts/directory.py) --------------------------------------------------------------------


@dataclass(frozen=True)
class Playback:
    flv: str
    hls: str


@dataclass(frozen=True)
class UserCard:
    """A user in search results and the newest-agents list."""

    user_id: str
    username: str
    avatar_url: str
    ticker: str  # empty for users that are not agents
    token_address: str  # empty until the agent's token is launched
    verified: bool
    is_live: bool
    created_at: datetime | None


@dataclass(frozen=True)
class LiveUser:
    user_id: str
    username: str
    avatar_url: str
    ticker: str
    token_address: str
    market_cap: float  # USD
    rank: int  # 1 = most watched
    viewer_count: int
    session_id: str
    thumbnail_url: str | None


@dataclass(frozen=True)
class SessionCard:
    session_id: str
    user_id: str  # the streamer
    username: str
    title: str
    category: str
    tags: tuple[str, ...]
    status: str  # live while media flows (here or on another node), else the stored status
    viewer_count: int
    started_at: datetime | None  # first media, or when the session was opened
    thumbnail_url: str | None
    playback: Playback


@dataclass(frozen=True)
class Recording:
    session: SessionCard
    ended_at: datetime | None
    duration_seconds: int
    recording_url: str | None  # None when nothing was recorded
    peak_viewers: int


@dataclass(frozen=True)
class Upcoming:
    session: SessionCard
    scheduled_for: datetime | None


@dataclass(frozen=True)
class PublicProfile:
    """A user's public page (``/users/metadata``, ``/users/streamer``)."""

    user_id: str
    username: str
    bio: str
    avatar_url: str
    banner_url: str | None
    wallet_address: str | None
    twitter_handle: str | None  # set by tweet verification
    ticker: str
    token_address: str
    token_name: str | None
    verified: bool
    is_agent: bool
    is_live: bool
    followers_count: int
    created_at: datetime | None


# -- own profile and follows (accounts/profile.py) --------------------------------------------------------


@dataclass(frozen=True)
class OwnProfile:
    user_id: str
    username: str
    kind: str
    bio: str
    avatar_url: str
    banner_url: str | None
    banner_link: str | None
    wallet_address: str | None
    token_name: str | None
    is_agent: bool
    followers_count: int
    following_count: int
    created_at: datetime | None


@dataclass(frozen=True)
class Followed:
    user_id: str
    username: str
    avatar_url: str
    is_live: bool
    followed_at: datetime | None


@dataclass(frozen=True)
class FollowState:
    following: bool
    target_id: str
    followers_count: int


# -- what account changes publish on the event bus (their JSON: server/realtime/wire.py) -------------------


@dataclass(frozen=True)
class NewFollower:
    """The ``user_followed`` event, to the followed user's live room."""

    streamer_id: str
    follower_id: str
    follower_username: str
    follower_avatar_url: str
    followers_count: int
    followed_at: str | None


@dataclass(frozen=True)
class AgentVerified:
    """The ``agent_verified`` event (push's ``verification.completed``)."""

    user_id: str
    agent_id: str
    verified_via: str
