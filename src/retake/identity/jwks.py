"""JWTs of an external identity provider (Privy, or any OIDC-style issuer), checked against its JWKS URL.

The key set is fetched with httpx (never blocking the event loop), cached, and fetched again when a token names
a ``kid`` we have not seen, which is how providers roll their keys; that refetch is rate limited so a flood of
made-up kids cannot turn into a flood of requests to the provider.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from retake.errors import Unauthorized, UpstreamFailed

log = logging.getLogger(__name__)

# Asymmetric algorithms only: an ``oct`` (shared secret) key in a public JWKS would let anyone sign.
_ALLOWED = frozenset({"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"})


class JwksVerifier:
    def __init__(
        self,
        url: str,
        *,
        audience: str | None = None,
        issuer: str | None = None,
        timeout: float = 5.0,
        cache_seconds: float = 600.0,
        min_refetch_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self._audience = audience
        self._issuer = issuer
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._min_refetch = min_refetch_seconds
        self.clock = clock  # injectable: tests step past the refetch interval without sleeping
        self._transport = transport
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def _fetch(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as client:
                response = await client.get(self.url, headers={"Accept": "application/json"})
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise UpstreamFailed(
                f"could not fetch the identity provider's keys: {type(exc).__name__}", code="jwks_unavailable"
            ) from exc
        keys: dict[str, jwt.PyJWK] = {}
        for entry in data.get("keys", []) if isinstance(data, dict) else []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue  # unknown key types are skipped, not fatal: the provider may publish kinds we do not use
            if key.algorithm_name in _ALLOWED:
                keys[str(entry.get("kid", ""))] = key
        self._keys = keys
        self._fetched_at = self.clock()

    async def _key_for(self, kid: str) -> jwt.PyJWK | None:
        async with self._lock:
            now = self.clock()
            stale = self._fetched_at is None or now - self._fetched_at > self._cache_seconds
            unknown = kid not in self._keys and (self._fetched_at is None or now - self._fetched_at > self._min_refetch)
            if stale or unknown:
                try:
                    await self._fetch()
                except UpstreamFailed:
                    if not self._keys:
                        raise
                    log.warning("JWKS refresh failed; keeping the %d cached keys", len(self._keys))
            return self._keys.get(kid)

    async def verify(self, token: str) -> dict[str, Any]:
        """The verified claims (``sub`` is required), or ``Unauthorized``."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid token", code="invalid_token") from exc
        key = await self._key_for(str(header.get("kid", "")))
        if key is None:
            raise Unauthorized("token signed by an unknown key", code="invalid_token")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[key.algorithm_name],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
                leeway=30,
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired", code="token_expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid token", code="invalid_token") from exc
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise Unauthorized("token has no subject", code="invalid_token")
        return claims
