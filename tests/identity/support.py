"""Helpers for viewer-identity tests: guest accounts, PyNaCl wallets, row counts, a local JWKS server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import base58
import httpx
from nacl.signing import SigningKey
from sqlalchemy import func, select

from retake.server.platform import Platform
from retake.store.tables import AuthNonce, Follow, IdentityLink, StreamSession, User
from tests.support import JsonHttpServer


def platform_of(client: httpx.AsyncClient) -> Platform:
    platform: Platform = client.app.state.platform  # type: ignore[attr-defined]
    return platform


@dataclass
class Viewer:
    token: str
    user: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.user["user_id"])

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def guest(client: httpx.AsyncClient, username: str | None = None) -> Viewer:
    body = {"username": username} if username is not None else {}
    response = await client.post("/api/v1/auth/guest", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    return Viewer(data["token"], data["user"])


class Wallet:
    """A real ed25519 keypair, as a Solana wallet holds one; the address is the base58 public key."""

    def __init__(self) -> None:
        self.key = SigningKey.generate()
        self.address = base58.b58encode(bytes(self.key.verify_key)).decode()

    def sign(self, message: str) -> str:
        return base58.b58encode(self.key.sign(message.encode()).signature).decode()


async def row_counts(client: httpx.AsyncClient) -> dict[str, int]:
    """Rows per table, to assert that refused input stored nothing."""
    counts = {}
    async with platform_of(client).sessions() as db:
        for table in (User, Follow, StreamSession, AuthNonce, IdentityLink):
            counts[table.__tablename__] = int(await db.scalar(select(func.count()).select_from(table)) or 0)
    return counts


class JwksServer(JsonHttpServer):
    """A local HTTP server publishing a JWK Set, as an identity provider such as Privy does."""

    path = "/.well-known/jwks.json"

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.hits = 0
        super().__init__()

    def answer(self, path: str) -> tuple[int, Any]:
        self.hits += 1
        return 200, self.jwks
