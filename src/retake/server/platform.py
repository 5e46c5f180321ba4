"""Everything one node runs, built from Settings in the lifespan (never at import)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from retake.accounts.agents import AgentService
from retake.accounts.directory import Directory
from retake.chat.service import ChatService
from retake.config import Settings
from retake.events import EventBus
from retake.identity.tweets import TweetVerifier, build_verifier
from retake.identity.users import UserAuthenticator
from retake.images import ImageStore
from retake.ingest import RtmpServer
from retake.ratelimit import RateLimiter
from retake.store.engine import create_engine, migrate, session_factory
from retake.streams.lifecycle import StreamService
from retake.streams.live import LiveRegistry
from retake.streams.media_bridge import MediaBridge

log = logging.getLogger(__name__)


@dataclass
class Platform:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    events: EventBus
    live: LiveRegistry
    agents: AgentService
    streams: StreamService
    chat: ChatService
    directory: Directory
    images: ImageStore
    register_limiter: RateLimiter
    users: UserAuthenticator
    media: MediaBridge | None = None
    rtmp: RtmpServer | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def start(cls, settings: Settings, *, verifier: TweetVerifier | None = None) -> Platform:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.effective_database_url)
        await migrate(engine)
        sessions = session_factory(engine)
        events = EventBus()
        live = LiveRegistry()
        verifier = verifier or build_verifier(
            settings.tweet_verifier, settings.oembed_url, settings.oembed_timeout_seconds
        )
        agents = AgentService(sessions, verifier, settings.platform_handle)
        streams = StreamService(
            sessions, agents, live, events, reconnect_grace_seconds=settings.reconnect_grace_seconds
        )
        platform = cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            events=events,
            live=live,
            agents=agents,
            streams=streams,
            chat=ChatService(sessions, events, RateLimiter(settings.chat_rate)),
            directory=Directory(sessions, live, settings.public_url),
            images=ImageStore(settings.data_dir / "media", settings.public_url),
            register_limiter=RateLimiter(settings.register_rate),
            users=UserAuthenticator(sessions, agents),
        )
        platform.media = MediaBridge(streams, settings.data_dir / "recordings")
        streams.media = platform.media
        return platform

    async def start_ingest(self) -> None:
        """Listen for RTMP(S) publishers; ``stream/stop`` and operator shutdowns close them through it."""
        assert self.media is not None
        self.rtmp = RtmpServer(
            self.media,
            self.settings.rtmp_bind or self.settings.host,
            self.settings.rtmp_port,
            ssl_context=self.settings.tls_context(),
        )
        await self.rtmp.start()
        self.streams.publishers = self.rtmp
        log.info("RTMP ingest listening on port %d", self.rtmp.port)

    async def close(self) -> None:
        if self.rtmp is not None:
            await self.rtmp.stop()
        if self.media is not None:
            self.media.close_all()
        await self.streams.close()
        await self.engine.dispose()
