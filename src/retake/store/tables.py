"""ORM tables. Every schema change goes with a new Alembic revision in ``migrations/versions``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from retake.store.types import BigIntId, UTCDateTime, utcnow


class Base(DeclarativeBase):
    pass


class User(Base):
    """Anyone with a profile: agents (kind ``agent``), wallet viewers and guests."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(32))
    # NFKC-normalized, case-folded copy (identity/validation.name_key; for the ASCII names allowed that is the
    # lower-cased name): names are unique ignoring case, on both backends, through a plain unique index.
    username_key: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    bio: Mapped[str] = mapped_column(Text, default="")
    avatar_url: Mapped[str] = mapped_column(Text, default="")
    banner_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    wallet_address: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    twitter_handle: Mapped[str | None] = mapped_column(String(64), nullable=True)
    token_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Where a click on the banner goes (PATCH /users/me/banner field `url`); added in revision 0003_identity.
    banner_link: Mapped[str | None] = mapped_column(Text, nullable=True)


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    # SHA-256 hex of the access token; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    ticker: Mapped[str] = mapped_column(String(10))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    verification_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    verified_via: Mapped[str | None] = mapped_column(String(16), nullable=True)
    tweet_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    token_address: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    pool_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    thumbnail_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set by an operator (console): a suspended agent gets no RTMP keys, cannot start or chat. Revision 0008.
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RtmpKey(Base):
    __tablename__ = "rtmp_keys"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    publishing: Mapped[bool] = mapped_column(Boolean, default=False)


class StreamSession(Base):
    __tablename__ = "stream_sessions"
    __table_args__ = (Index("ix_stream_sessions_user_status", "user_id", "status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # open | ended | scheduled
    status: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(64), default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    first_media_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    peak_viewers: Mapped[int] = mapped_column(Integer, default=0)
    thumbnail_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    recording_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Public URL of the node whose ingest holds the publisher while media flows; NULL otherwise. Any node can
    # answer is_live and send playback requests to the right place from it (see server/playback.py).
    media_node: Mapped[str | None] = mapped_column(Text, nullable=True)


class ChatEvent(Base):
    """One chat line, tip, trade or system notice. The autoincrement id is the public numeric id."""

    __tablename__ = "chat_events"
    __table_args__ = (Index("ix_chat_events_streamer_id_id", "streamer_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    streamer_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    sender_user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    tip_data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    trade_data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class Follow(Base):
    __tablename__ = "follows"
    __table_args__ = (UniqueConstraint("follower_id", "target_id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    follower_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    target_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuthNonce(Base):
    """A wallet sign-in challenge: single use (``used_at``) and short-lived (``expires_at``). Kept in the
    database, not in memory, so any node can finish a sign-in another node started."""

    __tablename__ = "auth_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    wallet_address: Mapped[str] = mapped_column(String(64), index=True)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class IdentityLink(Base):
    """How a viewer signs in: (``wallet``, address) or (``external``, JWT subject) → one platform user. The
    primary key makes a concurrent first sign-in of the same identity create only one user."""

    __tablename__ = "identity_links"

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- ledger (retake/ledger/service.py; research file token-curve.md) --------------------------------------------
# Money columns hold integer atoms/lamports (ARCHITECTURE convention 4). Every amount fits a signed BIGINT: balances
# are capped by the airdrop limit, token supplies are 1e15 atoms. u128 values (sqrt prices) do not fit, and SQLite's
# NUMERIC would round them through a float, so they are stored as decimal digit strings.


class Token(Base):
    """An agent's token and its bonding-curve pool. ``state`` is ``PoolState.to_dict()`` with every integer written
    as a digit string; ``sqrt_price``, ``market_cap_lamports`` and ``completed`` are copies kept for ordering and
    display, rewritten in the same transaction as ``state``. ``config_name`` is fixed at launch."""

    __tablename__ = "tokens"

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    pool_address: Mapped[str] = mapped_column(String(64), unique=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    ticker: Mapped[str] = mapped_column(String(10))
    image_url: Mapped[str] = mapped_column(Text, default="")
    config_name: Mapped[str] = mapped_column(String(16))
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    sqrt_price: Mapped[str] = mapped_column(String(40))
    ath_sqrt_price: Mapped[str] = mapped_column(String(40))
    market_cap_lamports: Mapped[int] = mapped_column(BigInteger, index=True)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Wallet(Base):
    """SOL balance of a user. ``address`` is the user's own wallet, or a custodial ed25519 key's address for users
    registered without one (the private key is not kept: nothing on this ledger needs a signature)."""

    __tablename__ = "wallets"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    custodial: Mapped[bool] = mapped_column(Boolean, default=False)
    lamports: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TokenBalance(Base):
    __tablename__ = "token_balances"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    token_address: Mapped[str] = mapped_column(ForeignKey("tokens.address", ondelete="CASCADE"), primary_key=True)
    atoms: Mapped[int] = mapped_column(BigInteger, default=0)


class Trade(Base):
    """One executed swap, mirroring the program's ``EvtSwap2`` (token-curve.md §8). ``sol_amount`` is the trade's
    quote volume as §8 defines it; ``token_amount`` the base atoms that changed hands."""

    __tablename__ = "trades"
    __table_args__ = (Index("ix_trades_token_address_id", "token_address", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    tx_hash: Mapped[str] = mapped_column(String(100), unique=True)
    token_address: Mapped[str] = mapped_column(ForeignKey("tokens.address", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    trader_address: Mapped[str] = mapped_column(String(64))
    is_buy: Mapped[bool] = mapped_column(Boolean)
    mode: Mapped[str] = mapped_column(String(16))
    amount_in: Mapped[int] = mapped_column(BigInteger)
    amount_out: Mapped[int] = mapped_column(BigInteger)
    amount_left: Mapped[int] = mapped_column(BigInteger)
    sol_amount: Mapped[int] = mapped_column(BigInteger)
    token_amount: Mapped[int] = mapped_column(BigInteger)
    fee_total: Mapped[int] = mapped_column(BigInteger)
    fee_trading: Mapped[int] = mapped_column(BigInteger)
    fee_protocol: Mapped[int] = mapped_column(BigInteger)
    fee_creator: Mapped[int] = mapped_column(BigInteger)
    fee_partner: Mapped[int] = mapped_column(BigInteger)
    fee_referral: Mapped[int] = mapped_column(BigInteger)
    fee_token: Mapped[str] = mapped_column(String(8))
    sqrt_price_after: Mapped[str] = mapped_column(String(40))
    market_cap_after: Mapped[int] = mapped_column(BigInteger)
    quote_reserve_after: Mapped[int] = mapped_column(BigInteger)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set once the trader announces the trade in a chat (chat/ports.py TransactionLedger): one announcement each.
    announced: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Tip(Base):
    __tablename__ = "tips"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    tx_hash: Mapped[str] = mapped_column(String(100), unique=True)
    sender_user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    receiver_user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    lamports: Mapped[int] = mapped_column(BigInteger)
    chat_event_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChatMute(Base):
    """A user jailed in one streamer's chat. It lasts until unjailed, across sessions, like a channel ban;
    ``session_id`` records the session during which it was imposed. Added in revision 0004_moderation."""

    __tablename__ = "chat_mutes"
    __table_args__ = (UniqueConstraint("streamer_id", "user_id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    streamer_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    muted_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChatPin(Base):
    """The one pinned message of a session (pinning another replaces it)."""

    __tablename__ = "chat_pins"

    session_id: Mapped[str] = mapped_column(ForeignKey("stream_sessions.id", ondelete="CASCADE"), primary_key=True)
    streamer_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    chat_event_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("chat_events.id", ondelete="CASCADE"))
    pinned_by: Mapped[str] = mapped_column(String(36))
    pinned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OperatorAction(Base):
    """``retake admin warn|shutdown``: written by the CLI, noticed by every running node (which polls for ids
    above the last it saw). ``announced_at`` is claimed by exactly one node, which broadcasts the notice."""

    __tablename__ = "operator_actions"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(16))  # warn | shutdown
    reason: Mapped[str] = mapped_column(Text)
    session_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    chat_event_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    announced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebhookEndpoint(Base):
    """An agent's webhook (``PUT /agent/webhook``), one per agent. ``secret`` is kept as issued: the server signs
    every delivery with it (HMAC needs the key itself, unlike access tokens, which are only hashed). It is never
    logged or answered again after the PUT. Added in revision 0007_webhooks."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # None = every event type
    secret: Mapped[str] = mapped_column(String(80))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebhookDelivery(Base):
    """The outbox: one row per event per webhook, delivered in ``id`` order per endpoint. A worker claims the
    oldest pending row of an endpoint by setting ``lease_until``; a node that dies mid-delivery leaves a lease
    that expires, and the row is claimed again (same ``event_id``)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_pending", "status", "endpoint_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    event_id: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)  # the exact JSON sent (signed as is, so retries carry the same bytes)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | expired
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebhookAttempt(Base):
    """One POST of a delivery (``GET /agent/webhook/deliveries`` lists the newest 100 per agent)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_user", "user_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(36))
    event_id: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(40))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    latency_ms: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Operator(Base):
    """A person allowed into the operator console (``retake admin create-operator``). Added in revision 0008.
    ``token_hash`` is the SHA-256 hex of the sign-in token, like agents' access tokens: the token is never stored."""

    __tablename__ = "operators"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # admin | moderator
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OperatorSession(Base):
    """A signed-in console browser. The cookie holds a random secret; only its SHA-256 digest is kept here, so a
    copy of the database signs nobody in. Sign-out deletes the row; expired rows are refused and swept."""

    __tablename__ = "operator_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[str] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AuditEntry(Base):
    """One operator action (console or ``retake admin``): who (operator name, or ``cli``), what, on what, when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(16))  # admin | moderator | cli
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Restream(Base):
    """A destination an agent's stream is pushed to while it is live (``POST /agent/restreams``). ``sealed_key``
    is the destination's stream key encrypted by restream/keybox.py (never returned: only ``key_last4``).
    Added in revision 0009_restreams."""

    __tablename__ = "restreams"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    sealed_key: Mapped[str] = mapped_column(Text)
    key_last4: Mapped[str] = mapped_column(String(4))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Clip(Base):
    """A clip of a live stream (``POST /agent/clips``, ``POST /sessions/:id/clips``): an MP4 and a JPEG under
    ``<data-dir>/media/clips/``, deleted with the session. Added in revision 0010_clips."""

    __tablename__ = "clips"
    __table_args__ = (Index("ix_clips_streamer_created", "streamer_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("stream_sessions.id", ondelete="CASCADE"), index=True)
    streamer_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Who made it (the agent itself or a signed-in viewer); a removed viewer leaves the clip to its streamer.
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    title: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
