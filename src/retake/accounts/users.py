"""Who is this bearer? Agent access tokens (``rtk_…``) act as the agent's user; platform and external JWTs
are checked by a ``JwtVerifier`` (the identity layer's ``IdentityService``). One entry point for REST and
Socket.IO. In ``accounts`` because it needs the agents' access tokens; identity needs nothing of accounts."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.accounts.agents import AgentService
from retake.errors import Unauthorized
from retake.identity import tokens
from retake.principal import Principal
from retake.store.tables import User


class JwtVerifier(Protocol):
    async def user_id_for(self, token: str) -> str:
        """Return the platform user id the JWT names, or raise ``Unauthorized``."""
        ...


class UserAuthenticator:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], agents: AgentService, *, jwt: JwtVerifier) -> None:
        self._sessions = sessions
        self._agents = agents
        self.jwt = jwt  # platform and external JWTs, wherever UserDep is used

    async def authenticate(self, bearer: str | None) -> Principal:
        if not bearer:
            raise Unauthorized("missing token: send Authorization: Bearer <jwt or access_token>", code="missing_token")
        if bearer.startswith(tokens.ACCESS_TOKEN_PREFIX):
            return (await self._agents.authenticate(bearer)).user
        user_id = await self.jwt.user_id_for(bearer)
        async with self._sessions() as db:
            user = await db.get(User, user_id)
        if user is None:
            raise Unauthorized("the token's user no longer exists", code="invalid_token")
        return Principal.of(user)
