"""Small interfaces the lifecycle calls out through, so ingest, media and ledger stay swappable and testable."""

from __future__ import annotations

from typing import Protocol

from retake.token_info import TokenInfo


class PublisherControl(Protocol):
    """Implemented by the RTMP server: end the publisher connection of a session, if any."""

    async def close_publisher(self, session_id: str) -> bool: ...


class Publishers:
    """The lifecycle's ``PublisherControl``: this node's RTMP server once one is attached, else no connections.

    Why a port object rather than the RTMP server itself: the dependency is a real cycle. Ending a session closes
    its publisher (streams → ingest), while the RTMP server reports every publish to the lifecycle (ingest →
    media bridge → streams), so one of the two cannot be passed in a constructor. This object is made first and
    given to ``StreamService``; the assembly attaches the RTMP server right after building it. A node without an
    ingest (``rtmp_enabled=False``: API tests, command-line tools) never attaches one.
    """

    def __init__(self) -> None:
        self._ingest: PublisherControl | None = None

    def attach(self, ingest: PublisherControl) -> None:
        if self._ingest is not None:
            raise RuntimeError("an ingest is already attached")
        self._ingest = ingest

    async def close_publisher(self, session_id: str) -> bool:
        return False if self._ingest is None else await self._ingest.close_publisher(session_id)


class TokenLauncher(Protocol):
    """Implemented by the ledger: create the agent's token on its first stream when it is verified."""

    async def ensure_token(self, agent_id: str) -> TokenInfo | None: ...


class MediaControl(Protocol):
    """Implemented by the media playback (``streams.media_bridge.Playback``): a session ended; close its
    playback, return its recording folder."""

    async def session_ended(self, stream_id: str, session_id: str) -> str | None: ...
