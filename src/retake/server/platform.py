"""Everything one node runs, built from Settings in the lifespan (never at import)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from retake.accounts.agents import AgentService
from retake.accounts.directory import Directory
from retake.accounts.profile import ProfileService
from retake.chat.moderation import ModerationService
from retake.chat.operator import OperatorDesk
from retake.chat.page_cache import LocalVersions, PageCache, PageVersions, RedisVersions
from retake.chat.pages import SENDER_COLUMNS, ChatPages
from retake.chat.service import ChatService
from retake.config import Settings
from retake.events import EventBus
from retake.identity.tweets import TweetVerifier, build_verifier
from retake.identity.users import UserAuthenticator
from retake.identity.viewers import IdentityService
from retake.images import ImageStore
from retake.ingest import RtmpServer
from retake.ledger.service import LedgerService
from retake.ratelimit import RateLimiter
from retake.store.engine import create_engine, migrate, private_dir, session_factory
from retake.streams.lifecycle import StreamService
from retake.streams.live import LiveRegistry
from retake.streams.media_bridge import MediaBridge
from retake.streams.owner import OwnerSessions
from retake.streams.previews import PreviewService

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
    moderation: ModerationService
    operator: OperatorDesk
    identity: IdentityService
    profiles: ProfileService
    owned_sessions: OwnerSessions
    chat_pages: ChatPages
    media: MediaBridge | None = None
    rtmp: RtmpServer | None = None
    previews: PreviewService | None = None
    ledger: LedgerService | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def start(cls, settings: Settings, *, verifier: TweetVerifier | None = None) -> Platform:
        private_dir(settings.data_dir)
        engine = create_engine(
            settings.effective_database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
        )
        await migrate(engine)
        sessions = session_factory(engine)
        events = EventBus()
        live = LiveRegistry()
        verifier = verifier or build_verifier(
            settings.tweet_verifier, settings.oembed_url, settings.oembed_timeout_seconds
        )
        agents = AgentService(
            sessions, verifier, settings.platform_handle, auth_cache_seconds=settings.auth_cache_seconds
        )
        streams = StreamService(
            sessions,
            agents,
            live,
            events,
            reconnect_grace_seconds=settings.reconnect_grace_seconds,
            node_url=settings.public_url,
        )
        await streams.forget_stale_media_nodes()
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
            moderation=ModerationService(sessions, events),
            operator=OperatorDesk(sessions, events, streams),
            identity=IdentityService.from_settings(settings, sessions),
            profiles=ProfileService(sessions, live, events),
            owned_sessions=OwnerSessions(sessions, streams, live),
            chat_pages=ChatPages(engine, _page_cache(settings, events)),
        )
        platform.chat.gate = platform.moderation  # muted senders are refused on REST and Socket.IO alike
        platform.media = MediaBridge(streams, settings.data_dir / "recordings")
        streams.media = platform.media
        platform.users.jwt = platform.identity  # platform and external JWTs, wherever UserDep is used

        async def user_changed(user_id: str, columns: frozenset[str]) -> None:
            agents.forget(user_id=user_id)
            if platform.chat_pages.cache is not None and columns & SENDER_COLUMNS:
                await platform.chat_pages.cache.invalidate_all()  # the user may have written in any chat

        platform.profiles.user_changed.append(user_changed)
        # The ledger launches a verified agent's token on its first stream, confirms tip/trade chat announcements
        # and gives /users/live/ real market caps.
        platform.ledger = LedgerService(
            sessions,
            events,
            dialect=engine.dialect.name,
            config_name=settings.token_config,
            sol_price_usd=settings.sol_price_usd,
            enable_airdrop=settings.enable_airdrop,
        )
        platform.ledger.chat_gate = platform.moderation
        streams.tokens = platform.ledger
        platform.chat.transactions = platform.ledger
        platform.directory.market_caps = platform.ledger.market.market_caps_usd
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
        if self.settings.preview_interval_seconds > 0:  # keyframe previews for sessions without a thumbnail
            self.previews = PreviewService(
                self.sessions, self.images, self.media.playing, interval_seconds=self.settings.preview_interval_seconds
            )
            self.previews.start()

    async def close(self) -> None:
        if self.previews is not None:
            await self.previews.stop()
        if self.rtmp is not None:
            await self.rtmp.stop()
        if self.media is not None:
            self.media.close_all()
        await self.streams.close()
        if self.chat_pages.cache is not None:
            await self.chat_pages.cache.versions.close()
        await self.engine.dispose()


def _page_cache(settings: Settings, events: EventBus) -> PageCache | None:
    """Comment pages cached per node (chat/page_cache.py); with Redis, versions in Redis keep nodes in step."""
    if settings.chat_page_cache_bytes <= 0:
        return None
    versions: PageVersions = LocalVersions()
    if settings.redis_url:
        versions = RedisVersions(settings.redis_url, f"{settings.redis_channel}:chat-pages")
    cache = PageCache(
        versions, max_bytes=settings.chat_page_cache_bytes, max_age=settings.chat_page_cache_max_age_seconds
    )
    events.subscribe(cache.on_event)  # before the Socket.IO relay subscribes: dropped before anyone hears
    return cache
