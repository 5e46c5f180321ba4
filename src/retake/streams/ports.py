"""Small interfaces the lifecycle calls out through, so ingest and ledger stay swappable and testable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class PublisherControl(Protocol):
    """Implemented by the RTMP server: end the publisher connection of a session, if any."""

    async def close_publisher(self, session_id: str) -> bool: ...


class NoPublishers:
    """Used until an ingest is attached (and in API tests): there is never a connection to close."""

    async def close_publisher(self, session_id: str) -> bool:
        return False


@dataclass(frozen=True)
class TokenInfo:
    name: str
    ticker: str
    image_url: str
    token_address: str
    token_type: str
    pool_address: str


class TokenLauncher(Protocol):
    """Implemented by the ledger: create the agent's token on its first stream when it is verified."""

    async def ensure_token(self, agent_id: str) -> TokenInfo | None: ...


class NoTokens:
    async def ensure_token(self, agent_id: str) -> TokenInfo | None:
        return None


class MediaControl(Protocol):
    """Implemented by the media bridge: a session ended; close its playback, return its recording folder."""

    async def session_ended(self, stream_id: str, session_id: str) -> str | None: ...

    async def discard_recording(self, session_id: str) -> None: ...


class NoMedia:
    async def session_ended(self, stream_id: str, session_id: str) -> str | None:
        return None

    async def discard_recording(self, session_id: str) -> None:
        return None
