"""Everything one node runs, assembled from Settings in the lifespan (never at import).

``Platform.start`` is the one place the services are built, top to bottom in dependency order: store → identity →
accounts → ledger → chat → streams → media/ingest. Each service receives its collaborators in its constructor, so
a collaborator that is forgotten is a ``TypeError`` at start, not a silent do-nothing default. The realtime
gateway and the web app come next (``server/app.py``: they are mounted before the lifespan runs, then attached to
this platform there); starting and stopping what runs in the background is the lifespan's, in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from retake.accounts.agents import AgentService
from retake.accounts.directory import Directory
from retake.accounts.profile import ProfileService
from retake.accounts.users import UserAuthenticator
from retake.chat.moderation import ModerationService
from retake.chat.operator import OperatorDesk
from retake.chat.page_cache import LocalVersions, PageCache, PageVersions, RedisVersions
from retake.chat.pages import SENDER_COLUMNS, ChatPages
from retake.chat.raids import RaidService
from retake.chat.service import ChatService
from retake.clips.remux import Remuxer
from retake.clips.service import ClipService
from retake.config import Settings
from retake.events import EventBus, PlatformEvent
from retake.identity.tweets import TweetVerifier, build_verifier
from retake.identity.viewers import IdentityService
from retake.images import ImageStore
from retake.ingest import RtmpServer
from retake.ledger.service import LedgerService
from retake.live import LiveRegistry
from retake.media.health import HealthConfig
from retake.media.journal import recorded_seconds
from retake.ratelimit import RateLimiter
from retake.restream.keybox import KeyBox
from retake.restream.service import RestreamConfig, RestreamService
from retake.server.cards import CardCache
from retake.server.realtime.wire import comment_json, wire_payload
from retake.store import nudges as store_nudges
from retake.store.engine import create_engine, dispose_engine, migrate, private_dir, session_factory
from retake.store.nudges import Nudges
from retake.streams.lifecycle import StreamService
from retake.streams.media_bridge import MediaBridge, Playback
from retake.streams.owner import OwnerSessions
from retake.streams.ports import Publishers
from retake.streams.previews import PreviewService
from retake.webhooks.outbox import RetryPolicy  # webhooks
from retake.webhooks.service import WebhookConfig, WebhookService  # webhooks


@dataclass(frozen=True)
class Platform:
    settings: Settings
    # store, and the node-local state every layer reads
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    events: EventBus
    nudges: Nudges  # wake-ups from the other processes sharing the store (store/nudges.py)
    live: LiveRegistry
    images: ImageStore
    # identity and accounts
    identity: IdentityService
    agents: AgentService
    users: UserAuthenticator
    register_limiter: RateLimiter
    profiles: ProfileService
    directory: Directory
    # ledger and chat
    moderation: ModerationService
    ledger: LedgerService
    chat: ChatService
    chat_pages: ChatPages
    # streams, media and ingest
    streams: StreamService
    owned_sessions: OwnerSessions
    operator: OperatorDesk
    media: Playback
    rtmp: RtmpServer | None  # None: this node takes no RTMP publishers (rtmp_enabled=False)
    previews: PreviewService | None  # None: no ingest, or preview_interval_seconds=0
    clips: ClipService  # the last ≤120 s of a live stream as an MP4, read from its recording on this node
    cards: CardCache  # share cards (server/api/share.py), drawn at most every 15 s per streamer
    raids: RaidService  # a live agent sends its viewers to another live agent (issue 16)
    # push to agents
    webhooks: WebhookService
    # restream: this node pushes the streams it holds to the agents' other platforms
    restreams: RestreamService

    @classmethod
    async def start(cls, settings: Settings, *, verifier: TweetVerifier | None = None) -> Platform:
        """Build the node's services; nothing listens or runs in the background yet (the lifespan starts that)."""
        # -- store
        engine = _engine(settings)
        await migrate(engine)
        sessions = session_factory(engine)
        events = EventBus()
        nudges = store_nudges.for_store(engine.url, sessions)
        events.subscribe(_nudge_session_ends(nudges))
        live = LiveRegistry()
        images = ImageStore(settings.data_dir / "media", settings.public_url)
        page_cache = _page_cache(settings, events)
        # -- identity
        identity = IdentityService.from_settings(settings, sessions)
        tweets = verifier or _tweet_verifier(settings)
        # -- accounts
        agents = AgentService(
            sessions, tweets, settings.platform_handle, auth_cache_seconds=settings.auth_cache_seconds
        )
        users = UserAuthenticator(sessions, agents, jwt=identity)  # agent access tokens, platform/external JWTs
        profiles = ProfileService(sessions, live, events, user_changed=[_forget_user(agents, page_cache)])
        # -- ledger: moderation (chat's gate) comes first, since a user muted in a chat may not tip there either
        moderation = ModerationService(sessions, events)
        ledger = _ledger(settings, sessions, events, engine.dialect.name, chat_gate=moderation)
        directory = Directory(
            sessions,
            live,
            settings.public_url,
            market_caps=ledger.market.market_caps_usd,
            recorded_seconds=recorded_seconds,
        )
        # -- chat: muted senders are refused and tip/trade announcements confirmed, on REST and Socket.IO alike
        chat = ChatService(sessions, events, RateLimiter(settings.chat_rate), gate=moderation, transactions=ledger)
        # -- streams: launches a token on a first stream (ledger), ends playback and RTMP connections of a session
        media = Playback(settings.data_dir / "recordings", health=_health_config(settings))
        publishers = Publishers()
        streams = StreamService(
            sessions, agents, live, events, publishers=publishers, tokens=ledger, media=media,
            reconnect_grace_seconds=settings.reconnect_grace_seconds,
            node_url=settings.node_url,  # its worker's own address under --workers
        )  # fmt: skip
        # -- media / ingest: RTMP reports publishes to streams, streams close publishers: the cycle Publishers closes
        rtmp = _rtmp_server(settings, MediaBridge(streams, media)) if settings.rtmp_enabled else None
        if rtmp is not None:
            publishers.attach(rtmp)
        previews = _previews(settings, sessions, images, media) if rtmp is not None else None
        clips = _clips(settings, sessions, live, events, media)  # from this node's recordings
        operator = OperatorDesk(sessions, events, streams, nudges)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            events=events,
            nudges=nudges,
            live=live,
            images=images,
            identity=identity,
            agents=agents,
            users=users,
            register_limiter=RateLimiter(settings.register_rate),
            profiles=profiles,
            directory=directory,
            moderation=moderation,
            ledger=ledger,
            chat=chat,
            chat_pages=ChatPages(engine, comment_json, page_cache),  # pages spell comments as broadcasts do
            streams=streams,
            owned_sessions=OwnerSessions(sessions, streams, live, session_deleted=clips.discard_session),
            operator=operator,
            media=media,
            rtmp=rtmp,
            previews=previews,
            clips=clips,
            cards=CardCache(),
            raids=_raids(settings, sessions, live, events, operator),
            webhooks=WebhookService(
                sessions, events, engine.dialect.name, _webhook_config(settings), encode=wire_payload
            ),
            restreams=_restreams(settings, sessions, events, media),
        )

    async def close(self) -> None:
        """Release what ``start`` built. The lifespan stops the running parts (ingest, previews, realtime) first."""
        self.media.close_all()
        await self.streams.close()
        if self.chat_pages.cache is not None:
            await self.chat_pages.cache.versions.close()
        await dispose_engine(self.engine)


def _engine(settings: Settings) -> AsyncEngine:
    """In the data folder, made first (the SQLite file, keys, media and recordings live there), owner-only."""
    private_dir(settings.data_dir)
    return create_engine(
        settings.effective_database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
    )


def _ledger(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    events: EventBus,
    dialect: str,
    *,
    chat_gate: ModerationService,
) -> LedgerService:
    return LedgerService(
        sessions,
        events,
        dialect=dialect,
        config_name=settings.token_config,
        sol_price_usd=settings.sol_price_usd,
        enable_airdrop=settings.enable_airdrop,
        chat_gate=chat_gate,
    )


def _clips(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    live: LiveRegistry,
    events: EventBus,
    media: Playback,
) -> ClipService:
    return ClipService(
        sessions,
        live,
        events,
        recordings_dir=media.recordings_dir,
        media_dir=settings.data_dir / "media",
        public_url=settings.public_url,
        limiter=RateLimiter(settings.clip_rate),
        flush_recordings=media.flush_recordings,
        remuxer=Remuxer(),
    )


def _raids(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    live: LiveRegistry,
    events: EventBus,
    operator: OperatorDesk,
) -> RaidService:
    return RaidService(
        sessions,
        live,
        events,
        limiter=RateLimiter(settings.raid_rate),
        delay_seconds=settings.raid_delay_seconds,
        public_url=settings.public_url,
        system_user=operator.system_user,  # the "retake" author of the two chat lines
    )


def _tweet_verifier(settings: Settings) -> TweetVerifier:
    return build_verifier(settings.tweet_verifier, settings.oembed_url, settings.oembed_timeout_seconds)


def _previews(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], images: ImageStore, media: Playback
) -> PreviewService | None:
    """Keyframe previews for sessions without a thumbnail; ``preview_interval_seconds=0`` turns them off."""
    if settings.preview_interval_seconds <= 0:
        return None
    return PreviewService(
        sessions,
        images,
        media.playing,
        interval_seconds=settings.preview_interval_seconds,
        idle_interval_seconds=settings.preview_idle_interval_seconds,
    )


def _health_config(settings: Settings) -> HealthConfig | None:
    """Stream health thresholds; ``stream_health=False`` measures nothing."""
    if not settings.stream_health:
        return None
    return HealthConfig(
        frozen_seconds=settings.stream_health_frozen_seconds,
        black_seconds=settings.stream_health_black_seconds,
        silent_seconds=settings.stream_health_silent_seconds,
        low_bitrate_kbps=settings.stream_health_low_bitrate_kbps,
        low_bitrate_seconds=settings.stream_health_low_bitrate_seconds,
    )


def _rtmp_server(settings: Settings, hooks: MediaBridge) -> RtmpServer:
    """Built here, listening only once the lifespan starts it."""
    return RtmpServer(
        hooks,
        settings.rtmp_bind or settings.host,
        settings.rtmp_port,
        ssl_context=settings.tls_context(),
        max_connections=settings.rtmp_max_connections,
        max_connections_per_ip=settings.rtmp_max_connections_per_ip,
        reuse_port=settings.worker_index is not None,
        read_coalesce=settings.rtmp_read_coalesce_ms / 1000,
    )


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


def _nudge_session_ends(nudges: Nudges) -> Callable[[PlatformEvent], Awaitable[None]]:
    """A session ended here: the node holding its publisher, if another, closes it (StreamService's
    ``watch_sessions_ended_elsewhere``)."""

    async def on_event(event: PlatformEvent) -> None:
        if event.name == "session_ended":
            await nudges.nudge(store_nudges.SESSIONS)

    return on_event


def _forget_user(
    agents: AgentService, page_cache: PageCache | None
) -> Callable[[str, frozenset[str]], Awaitable[None]]:
    """After a profile change: this node's caches of the user's row and of pages showing the name drop them."""

    async def user_changed(user_id: str, columns: frozenset[str]) -> None:
        agents.forget(user_id=user_id)
        if page_cache is not None and columns & SENDER_COLUMNS:
            await page_cache.invalidate_all()  # the user may have written in any chat

    return user_changed


def _restreams(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], events: EventBus, media: Playback
) -> RestreamService:
    """Destination keys are sealed with a node key kept next to the JWT keys, in ``<data-dir>/keys/``."""
    keys = KeyBox.load_or_create(settings.data_dir / "keys")
    return RestreamService(sessions, events, media, keys, RestreamConfig(allow_private=settings.restream_allow_private))


def _webhook_config(settings: Settings) -> WebhookConfig:
    policy = RetryPolicy(
        backoff_base_seconds=settings.webhook_backoff_base_seconds,
        backoff_max_seconds=settings.webhook_backoff_max_seconds,
        retry_seconds=settings.webhook_retry_seconds,
        disable_after_seconds=settings.webhook_disable_after_seconds,
        lease_seconds=settings.webhook_lease_seconds,
    )
    return WebhookConfig(settings.webhook_allow_private, settings.webhook_poll_seconds, policy)
