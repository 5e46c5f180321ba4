"""Agent account service. One database transaction per call; raises only ``retake.errors`` exceptions."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.sql.elements import KeyedColumnElement

from retake.accounts import tickers
from retake.accounts.auth_cache import AuthCache
from retake.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from retake.identity import tokens
from retake.identity.evm import check_v1_wallet
from retake.identity.tweets import TweetVerifier, parse_tweet_url
from retake.identity.validation import check_http_url, check_name, check_ticker, check_wallet
from retake.principal import Principal
from retake.store.tables import Agent, Base, RtmpKey, User
from retake.store.types import utcnow

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O/1/I: humans copy this by hand
# Every agent call authenticates, so the lookup is lean: a Core select built once (building it cost about as much
# as running it), rows turned into detached ORM objects without a Session (half the cost of the lookup was the
# Session: identity map, ORM result processing, its own transaction).
_AGENT_COLUMNS = tuple(Agent.__table__.columns)
_USER_COLUMNS = tuple(User.__table__.columns)
_BY_TOKEN_HASH = (
    select(*_AGENT_COLUMNS, *_USER_COLUMNS)
    .join_from(Agent.__table__, User.__table__, Agent.__table__.c.user_id == User.__table__.c.id)
    .where(Agent.__table__.c.token_hash == bindparam("token_hash"))
)


_Row = TypeVar("_Row", bound=Base)


def _detached(cls: type[_Row], columns: tuple[KeyedColumnElement[Any], ...], values: Sequence[Any]) -> _Row:
    """An ORM object as a query would have loaded it, outside any Session (``make_transient_to_detached``:
    no pending changes, so it never writes by accident)."""
    obj = cls(**{column.key: value for column, value in zip(columns, values, strict=True)})
    make_transient_to_detached(obj)
    return obj


@dataclass(frozen=True)
class Registration:
    access_token: str  # shown once: only its digest is stored
    agent_id: str
    user_id: str
    wallet_address: str | None
    agent_name: str
    ticker: str


@dataclass(frozen=True)
class AuthedAgent:
    """The agent an access token names and the user it acts as. May come from the authentication cache
    (``auth_cache.py``): shared between requests, hence frozen."""

    agent_id: str
    user: Principal

    @property
    def user_id(self) -> str:
        return self.user.id


@dataclass(frozen=True)
class AgentVerification:
    agent_id: str
    verified: bool


def _verification_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))


class AgentService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        verifier: TweetVerifier,
        handle: str,
        *,
        auth_cache_seconds: float = 0.0,
    ):
        self._sessions = sessions
        engine = sessions.kw["bind"]
        assert isinstance(engine, AsyncEngine), "the session factory is bound to the engine"
        self._engine = engine
        self._verifier = verifier
        self._handle = handle
        self.auth_cache: AuthCache[AuthedAgent] = AuthCache(auth_cache_seconds)

    # -- registration -------------------------------------------------------------------------------------

    async def register(
        self,
        *,
        agent_name: str,
        agent_description: str,
        image_url: str,
        wallet_address: str,
        ticker: str | None,
        accept_evm_wallet: bool = False,
    ) -> Registration:
        """``ticker`` None: derived from the name (``tickers.py``). ``accept_evm_wallet``: the first API's
        ``0x`` addresses are accepted too (``identity/evm.py``), stored in their checksummed form."""
        agent_name = check_name(agent_name)
        if len(agent_description) > 500:
            raise ValidationFailed("agent_description must be at most 500 characters", code="invalid_description")
        if image_url:
            check_http_url(image_url, "image_url")
        wallet_address = check_v1_wallet(wallet_address) if accept_evm_wallet else check_wallet(wallet_address)
        derived = ticker is None
        ticker = tickers.derive_ticker(agent_name) if ticker is None else check_ticker(ticker)
        access_token = tokens.new_access_token()
        user = User(
            id=str(uuid.uuid4()),
            username=agent_name,
            username_key=agent_name.lower(),
            kind="agent",
            bio=agent_description,
            avatar_url=image_url,
            wallet_address=wallet_address,
            created_at=utcnow(),
        )
        agent = Agent(
            id=tokens.new_agent_id(),
            user_id=user.id,
            token_hash=tokens.digest(access_token),
            ticker=ticker,
            verified=False,
            created_at=utcnow(),
        )
        async with self._sessions() as db:
            taken = await db.scalar(select(User.id).where(User.username_key == user.username_key))
            if taken is not None:
                raise ValidationFailed(f"agent_name '{agent_name}' is already taken", code="name_taken")
            if derived:
                await tickers.require_unused(db, ticker, agent_name)
            db.add(user)
            await db.flush()
            db.add(agent)
            try:
                await db.commit()
            except IntegrityError as exc:  # a concurrent registration won the race for the name
                await db.rollback()
                raise ValidationFailed(f"agent_name '{agent_name}' is already taken", code="name_taken") from exc
        return Registration(
            access_token=access_token,
            agent_id=agent.id,
            user_id=user.id,
            wallet_address=user.wallet_address,
            agent_name=user.username,
            ticker=agent.ticker,
        )

    # -- authentication ------------------------------------------------------------------------------------

    async def authenticate(self, access_token: str | None) -> AuthedAgent:
        if not access_token:
            raise Unauthorized("missing access token: send Authorization: Bearer <access_token>", code="missing_token")
        if not tokens.looks_like_access_token(access_token):
            raise Unauthorized("invalid access token", code="invalid_token")
        wanted = tokens.digest(access_token)
        cached = self.auth_cache.get(wanted)  # keyed by the digest the row holds: a hit is that same row
        if cached is not None:
            return cached
        generation = self.auth_cache.generation
        async with self._engine.connect() as conn:
            row = (await conn.execute(_BY_TOKEN_HASH, {"token_hash": wanted})).first()
        if row is None:
            raise Unauthorized("invalid access token", code="invalid_token")
        agent = _detached(Agent, _AGENT_COLUMNS, row[: len(_AGENT_COLUMNS)])
        # The index lookup finds the row; the constant-time comparison is what decides.
        if not tokens.matches(access_token, agent.token_hash):
            raise Unauthorized("invalid access token", code="invalid_token")
        user = _detached(User, _USER_COLUMNS, row[len(_AGENT_COLUMNS) :])
        authed = AuthedAgent(agent_id=agent.id, user=Principal.of(user))
        self.auth_cache.put(wanted, authed, generation)
        return authed

    def forget(self, *, agent_id: str | None = None, user_id: str | None = None) -> None:
        """The agent or its user changed on this node: the next call reads them from the store again."""
        self.auth_cache.forget(agent_id=agent_id, user_id=user_id)

    async def rotate_token(self, agent_id: str) -> str:
        new_token = tokens.new_access_token()
        async with self._sessions() as db:
            await db.execute(update(Agent).where(Agent.id == agent_id).values(token_hash=tokens.digest(new_token)))
            await db.commit()
        self.forget(agent_id=agent_id)  # the old token stops working on this node at once (API.md)
        return new_token

    # -- verification --------------------------------------------------------------------------------------

    async def prepare_verify(self, agent_id: str) -> str:
        message = f"Claiming my Livestreaming Agent on @{self._handle}. Code: {_verification_code()}"
        async with self._sessions() as db:
            await db.execute(update(Agent).where(Agent.id == agent_id).values(verification_message=message))
            await db.commit()
        self.forget(agent_id=agent_id)
        return message

    async def verify(self, agent_id: str, tweet_url: str) -> None:
        async with self._sessions() as db:
            agent = await db.get(Agent, agent_id)
            if agent is None:
                raise NotFound("agent not found")
            if agent.verified:
                return
            message = agent.verification_message
        if not message:
            # The HTTP edge adds which call makes one (server/api/hints.py).
            raise ValidationFailed("no verification message yet", code="no_verification_message")
        handle, _status = parse_tweet_url(tweet_url)
        if not await self._verifier.tweet_contains(tweet_url, message):
            raise ValidationFailed("the tweet does not contain the exact verification message", code="code_not_found")
        async with self._sessions() as db:
            await db.execute(
                update(Agent)
                .where(Agent.id == agent_id)
                .values(verified=True, verified_at=utcnow(), verified_via="tweet", tweet_url=tweet_url)
            )
            agent_user = await db.scalar(select(Agent.user_id).where(Agent.id == agent_id))
            await db.execute(update(User).where(User.id == agent_user).values(twitter_handle=handle))
            await db.commit()
        self.forget(agent_id=agent_id)

    async def operator_verify(self, agent_name: str) -> AgentVerification:
        async with self._sessions() as db:
            agent = await _agent_named(db, agent_name)
            if not agent.verified:
                agent.verified = True
                agent.verified_at = utcnow()
                agent.verified_via = "operator"
                await db.commit()
            result = AgentVerification(agent_id=agent.id, verified=agent.verified)
        self.forget(agent_id=result.agent_id)
        return result

    # -- suspension (operator console) ---------------------------------------------------------------------

    async def set_suspended(self, agent_name: str, suspended: bool) -> Agent:
        """Suspend (or lift it): a suspended agent gets no RTMP key, cannot start a session or chat. Its unused
        keys are revoked at once; a stream already on air goes on until the operator shuts it down."""
        now = utcnow()
        async with self._sessions() as db:
            agent = await _agent_named(db, agent_name)
            if suspended and agent.suspended_at is None:
                agent.suspended_at = now
                await db.execute(
                    update(RtmpKey)
                    .where(RtmpKey.agent_id == agent.id, RtmpKey.revoked_at.is_(None), RtmpKey.publishing.is_(False))
                    .values(revoked_at=now)
                )
            elif not suspended:
                agent.suspended_at = None
            await db.commit()
        self.forget(agent_id=agent.id)
        return agent

    async def require_active(self, db: AsyncSession, agent_id: str) -> None:
        """Raise 403 ``suspended`` for a suspended agent; read from the store, never from the auth cache."""
        if await db.scalar(select(Agent.suspended_at).where(Agent.id == agent_id)) is not None:
            raise Forbidden("this agent is suspended by the platform operator", code="suspended")

    async def is_verified(self, agent_id: str) -> bool:
        async with self._sessions() as db:
            return bool(await db.scalar(select(Agent.verified).where(Agent.id == agent_id)))

    # -- RTMP keys -----------------------------------------------------------------------------------------

    async def new_stream_key(self, agent_id: str) -> str:
        """Mint a key and revoke every earlier key of this agent that is not publishing right now."""
        key = tokens.new_stream_key()
        now = utcnow()
        async with self._sessions() as db:
            await self.require_active(db, agent_id)
            await db.execute(
                update(RtmpKey)
                .where(RtmpKey.agent_id == agent_id, RtmpKey.revoked_at.is_(None), RtmpKey.publishing.is_(False))
                .values(revoked_at=now)
            )
            db.add(RtmpKey(agent_id=agent_id, key_hash=tokens.digest(key), created_at=now, publishing=False))
            await db.commit()
        return key

    async def revoke_stream_keys(self, db: AsyncSession, agent_id: str, now: datetime) -> None:
        await db.execute(
            update(RtmpKey)
            .where(RtmpKey.agent_id == agent_id, RtmpKey.revoked_at.is_(None))
            .values(revoked_at=now, publishing=False)
        )

    async def agent_for_stream_key(self, key: str) -> tuple[Agent, RtmpKey] | None:
        if not key.startswith(tokens.STREAM_KEY_PREFIX):
            return None
        wanted = tokens.digest(key)
        async with self._sessions() as db:
            row = (
                await db.execute(
                    select(Agent, RtmpKey)
                    .join(RtmpKey, RtmpKey.agent_id == Agent.id)
                    .where(RtmpKey.key_hash == wanted, RtmpKey.revoked_at.is_(None))
                )
            ).first()
        if row is None or not tokens.matches(key, row[1].key_hash):
            return None
        return row[0], row[1]


async def _agent_named(db: AsyncSession, agent_name: str) -> Agent:
    agent = await db.scalar(
        select(Agent).join(User, User.id == Agent.user_id).where(User.username_key == agent_name.lower())
    )
    if agent is None:
        raise NotFound(f"no agent named '{agent_name}'", code="agent_not_found")
    return agent
