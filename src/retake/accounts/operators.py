"""Operator accounts for the console at ``/admin`` and the browser sessions they sign in with.

An operator is made on the command line (``retake admin create-operator NAME``), which prints a sign-in token
once; like agents' access tokens only its SHA-256 digest is stored, and a presented token is compared in constant
time. Signing in trades the token for a console session: a random secret in an HttpOnly cookie, kept as a digest
in ``operator_sessions`` so any node can check it and sign-out ends it everywhere. The form token that guards
every console form (CSRF) is derived from that secret, so it needs no storage and cannot be guessed without it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.errors import Conflict, Unauthorized, ValidationFailed
from retake.identity import tokens
from retake.store.tables import Operator, OperatorSession
from retake.store.types import utcnow

Role = Literal["admin", "moderator"]
ROLES: tuple[Role, ...] = ("admin", "moderator")
OPERATOR_TOKEN_PREFIX = "rto_"
SESSION_LIFETIME = timedelta(hours=12)
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass(frozen=True)
class SignedIn:
    """Who a console request comes from; ``csrf`` is the form token its pages carry."""

    operator_id: str
    name: str
    role: Role
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class NewOperator:
    operator_id: str
    name: str
    role: Role
    token: str  # shown once, never stored


def csrf_token(session_secret: str) -> str:
    """The form token of a console session: an HMAC of the session's secret (a constant label as message)."""
    return hmac.new(session_secret.encode(), b"retake-console-csrf", hashlib.sha256).hexdigest()


def csrf_matches(session_secret: str, presented: str) -> bool:
    return hmac.compare_digest(csrf_token(session_secret), presented)


def check_role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise ValidationFailed("the role must be 'admin' or 'moderator'", code="invalid_role")


class OperatorAccounts:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, name: str, role: str) -> NewOperator:
        if not _NAME_RE.match(name):
            raise ValidationFailed("an operator name is 1-32 letters, digits, '_', '-' or '.'", code="invalid_name")
        checked = check_role(role)
        token = OPERATOR_TOKEN_PREFIX + secrets.token_urlsafe(32)
        operator = Operator(
            id=str(uuid.uuid4()), name=name, role=checked, token_hash=tokens.digest(token), created_at=utcnow()
        )
        async with self._sessions() as db:
            if await db.scalar(select(Operator.id).where(Operator.name == name)) is not None:
                raise Conflict(f"an operator named '{name}' exists already", code="operator_exists")
            db.add(operator)
            try:
                await db.commit()
            except IntegrityError as exc:  # created concurrently
                raise Conflict(f"an operator named '{name}' exists already", code="operator_exists") from exc
        return NewOperator(operator.id, name, checked, token)

    async def sign_in(self, token: str) -> tuple[str, SignedIn]:
        """A new console session for the operator the token names: (cookie secret, who)."""
        token = token.strip()
        if not token.startswith(OPERATOR_TOKEN_PREFIX) or len(token) > 200:
            raise Unauthorized("this is not an operator token", code="invalid_token")
        wanted = tokens.digest(token)
        secret = secrets.token_urlsafe(32)
        now = utcnow()
        async with self._sessions() as db:
            operator = await db.scalar(select(Operator).where(Operator.token_hash == wanted))
            # The index finds the row; the constant-time comparison decides.
            if operator is None or not tokens.matches(token, operator.token_hash):
                raise Unauthorized("this is not an operator token", code="invalid_token")
            await db.execute(delete(OperatorSession).where(OperatorSession.expires_at < now))  # sweep
            db.add(
                OperatorSession(
                    id_hash=tokens.digest(secret),
                    operator_id=operator.id,
                    created_at=now,
                    expires_at=now + SESSION_LIFETIME,
                )
            )
            await db.commit()
            return secret, SignedIn(operator.id, operator.name, check_role(operator.role), csrf_token(secret))

    async def session_of(self, secret: str | None) -> SignedIn | None:
        """The signed-in operator of a cookie secret, or None (no, unknown or expired session)."""
        if not secret or len(secret) > 200:
            return None
        async with self._sessions() as db:
            row = (
                await db.execute(
                    select(OperatorSession, Operator)
                    .join(Operator, Operator.id == OperatorSession.operator_id)
                    .where(OperatorSession.id_hash == tokens.digest(secret))
                )
            ).first()
        if row is None:
            return None
        session, operator = row
        if not tokens.matches(secret, session.id_hash) or session.expires_at <= utcnow():
            return None
        return SignedIn(operator.id, operator.name, check_role(operator.role), csrf_token(secret))

    async def sign_out(self, secret: str) -> None:
        async with self._sessions() as db:
            await db.execute(delete(OperatorSession).where(OperatorSession.id_hash == tokens.digest(secret)))
            await db.commit()
