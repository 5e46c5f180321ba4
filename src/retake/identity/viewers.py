"""Viewer accounts and the platform's JWTs: guests, wallet sign-in, and external-provider users.

``IdentityService`` is also the ``JwtVerifier`` that ``UserAuthenticator`` consults: a token signed by one of our
keys names its user in ``sub``; any other token is handed to the external JWKS verifier (when configured) and its
subject is mapped to a platform user, created on first sight.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.config import Settings
from retake.errors import Unauthorized, ValidationFailed
from retake.identity.jwks import JwksVerifier
from retake.identity.jwt_keys import ALGORITHM, JwtKeyRing
from retake.identity.livekit import LiveKitIssuer
from retake.identity.validation import check_name, check_wallet
from retake.identity.wallet import decode_signature, new_nonce, sign_in_message, signature_matches
from retake.ratelimit import RateLimiter
from retake.store.tables import AuthNonce, IdentityLink, User
from retake.store.types import utcnow

log = logging.getLogger(__name__)

AUDIENCE = "retake"
NONCE_TTL = timedelta(minutes=5)
# Used and expired nonces are kept a while so a replay is answered "already used", not "unknown".
NONCE_RETENTION = timedelta(hours=1)
_NAME_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


@dataclass(frozen=True)
class SignIn:
    token: str
    user: User
    created: bool


@dataclass(frozen=True)
class Nonce:
    nonce: str
    message: str
    expires_at: datetime


def _random_name(prefix: str) -> str:
    return f"{prefix}-{''.join(secrets.choice(_NAME_ALPHABET) for _ in range(6))}"


class IdentityService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        keys: JwtKeyRing,
        *,
        issuer: str,
        ttl_seconds: int,
        livekit: LiveKitIssuer,
        external: JwksVerifier | None = None,
        clock: Callable[[], datetime] = utcnow,
        nonce_rate: str = "30/minute",
    ) -> None:
        self._sessions = sessions
        self.keys = keys
        self.livekit = livekit
        self._issuer = issuer
        self._ttl = ttl_seconds
        self.external = external
        # Injectable so tests can age a nonce past its five minutes without sleeping.
        self.clock = clock
        # Per client address: every nonce is a row, so an anonymous caller must not mint them without bound.
        self.nonce_limiter = RateLimiter(nonce_rate)

    @classmethod
    def from_settings(cls, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> IdentityService:
        """Keys live in ``<data_dir>/keys/``; the first start creates the JWT key and, without configured LiveKit
        credentials, the platform's own LiveKit key pair."""
        folder = settings.data_dir / "keys"
        keys = JwtKeyRing(folder)
        keys.ensure()
        livekit = LiveKitIssuer.from_settings(
            settings.livekit_api_key, settings.livekit_api_secret, settings.livekit_url, folder
        )
        external = None
        if settings.jwks_url:
            external = JwksVerifier(settings.jwks_url, audience=settings.jwks_audience, issuer=settings.jwks_issuer)
        return cls(
            sessions,
            keys,
            issuer=settings.public_url,
            ttl_seconds=settings.jwt_ttl_seconds,
            livekit=livekit,
            external=external,
        )

    # -- platform JWTs -------------------------------------------------------------------------------------

    def issue_token(self, user_id: str) -> str:
        now = int(utcnow().timestamp())
        claims: dict[str, str | int] = {
            "iss": self._issuer,
            "aud": AUDIENCE,
            "sub": user_id,
            "iat": now,
            "exp": now + self._ttl,
        }
        return self.keys.sign(claims)

    async def user_id_for(self, token: str) -> str:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid token", code="invalid_token") from exc
        public = self.keys.public_key(kid) if isinstance(kid, str) else None
        if public is None:
            if self.external is None:
                raise Unauthorized("invalid token", code="invalid_token")
            claims = await self.external.verify(token)
            return await self._external_user(str(claims["sub"]))
        try:
            claims = jwt.decode(
                token,
                key=public,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired: sign in again", code="token_expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid token", code="invalid_token") from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise Unauthorized("invalid token", code="invalid_token")
        return subject

    # -- accounts ------------------------------------------------------------------------------------------

    async def create_guest(self, username: str | None) -> SignIn:
        if username is not None:
            username = check_name(username, "username")
        user = await self._create_user(kind="guest", username=username, hint=lambda: _random_name("guest"))
        return SignIn(self.issue_token(user.id), user, True)

    async def issue_nonce(self, wallet_address: str) -> Nonce:
        check_wallet(wallet_address)
        now = self.clock()
        nonce, expires = new_nonce(), now + NONCE_TTL
        message = sign_in_message(self._issuer, wallet_address, nonce, now, expires)
        async with self._sessions() as db:
            await db.execute(delete(AuthNonce).where(AuthNonce.expires_at < now - NONCE_RETENTION))
            db.add(
                AuthNonce(
                    nonce=nonce, wallet_address=wallet_address, message=message, created_at=now, expires_at=expires
                )
            )
            await db.commit()
        return Nonce(nonce, message, expires)

    async def wallet_sign_in(self, wallet_address: str, signature: str, nonce: str | None = None) -> SignIn:
        check_wallet(wallet_address)
        raw = decode_signature(signature)
        now = self.clock()
        async with self._sessions() as db:
            query = select(AuthNonce).where(AuthNonce.wallet_address == wallet_address)
            if nonce:
                query = query.where(AuthNonce.nonce == nonce)
            candidates = list((await db.scalars(query.order_by(AuthNonce.created_at.desc()).limit(20))).all())
        if not candidates:
            # The HTTP edge adds which call makes one (server/api/hints.py).
            raise Unauthorized("no sign-in request for this wallet", code="no_nonce")
        # The request names no nonce (API.md), so the signature tells which outstanding message was signed.
        signed = next((c for c in candidates if signature_matches(wallet_address, c.message, raw)), None)
        if signed is None:
            raise Unauthorized("the signature does not match the sign-in message", code="invalid_signature")
        if signed.used_at is not None:
            raise Unauthorized("this sign-in message was already used: request a new nonce", code="nonce_used")
        if signed.expires_at <= now:
            raise Unauthorized("this sign-in message expired: request a new nonce", code="nonce_expired")
        async with self._sessions() as db:
            # Conditional update: of two concurrent requests with the same signature, exactly one wins.
            result = await db.execute(
                update(AuthNonce)
                .where(AuthNonce.nonce == signed.nonce, AuthNonce.used_at.is_(None))
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                await db.rollback()
                raise Unauthorized("this sign-in message was already used: request a new nonce", code="nonce_used")
            await db.commit()
        user, created = await self._linked_user(
            "wallet", wallet_address, kind="wallet", wallet=wallet_address, hint=lambda: _wallet_name(wallet_address)
        )
        return SignIn(self.issue_token(user.id), user, created)

    async def _external_user(self, subject: str) -> str:
        if len(subject) > 255 or "\x00" in subject:
            raise Unauthorized("token subject is not one we can store", code="invalid_token")
        user, _created = await self._linked_user(
            "external", subject, kind="external", hint=lambda: _random_name("viewer")
        )
        return user.id

    async def _linked_user(
        self, provider: str, subject: str, *, kind: str, hint: Callable[[], str], wallet: str | None = None
    ) -> tuple[User, bool]:
        """The user linked to (provider, subject), created with a generated name on first sign-in."""
        async with self._sessions() as db:
            found = await self._find_link(db, provider, subject)
        if found is not None:
            return found, False
        try:
            return await self._create_user(
                kind=kind, username=None, hint=hint, wallet=wallet, link=(provider, subject)
            ), True
        except _LinkTaken:
            async with self._sessions() as db:
                again = await self._find_link(db, provider, subject)
            if again is None:  # pragma: no cover - the link that collided was deleted in between
                raise Unauthorized("sign-in raced with an account deletion; try again", code="retry") from None
            return again, False

    @staticmethod
    async def _find_link(db: AsyncSession, provider: str, subject: str) -> User | None:
        user: User | None = await db.scalar(
            select(User)
            .join(IdentityLink, IdentityLink.user_id == User.id)
            .where(IdentityLink.provider == provider, IdentityLink.subject == subject)
        )
        return user

    async def _create_user(
        self,
        *,
        kind: str,
        username: str | None,
        hint: Callable[[], str],
        wallet: str | None = None,
        link: tuple[str, str] | None = None,
    ) -> User:
        attempts = 1 if username is not None else 6
        for attempt in range(attempts):
            name = username if username is not None else (hint() if attempt == 0 else _random_name(kind))
            now = utcnow()
            user = User(
                id=str(uuid.uuid4()),
                username=name,
                username_key=name.lower(),
                kind=kind,
                bio="",
                avatar_url="",
                wallet_address=wallet,
                created_at=now,
            )
            async with self._sessions() as db:
                if await db.scalar(select(User.id).where(User.username_key == user.username_key)) is not None:
                    if username is not None:
                        raise ValidationFailed(f"username '{username}' is already taken", code="name_taken")
                    continue
                try:
                    db.add(user)
                    await db.flush()  # the user row first: the link's foreign key points at it
                    if link is not None:
                        db.add(IdentityLink(provider=link[0], subject=link[1], user_id=user.id, created_at=now))
                    await db.commit()
                except IntegrityError as exc:
                    await db.rollback()
                    if link is not None and await self._find_link(db, *link) is not None:
                        raise _LinkTaken from exc
                    if username is not None:
                        raise ValidationFailed(f"username '{username}' is already taken", code="name_taken") from exc
                    continue
            log.info("created %s user %s", kind, user.id)
            return user
        raise ValidationFailed("could not find a free name; send a username", code="name_taken")


class _LinkTaken(Exception):
    """A concurrent first sign-in of the same identity created the user first."""


def _wallet_name(wallet_address: str) -> str:
    # Short and recognisable, as wallets show addresses: first and last four characters.
    return f"{wallet_address[:4]}-{wallet_address[-4:]}"
