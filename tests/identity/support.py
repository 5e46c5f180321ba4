"""Helpers for viewer-identity tests: guest accounts, PyNaCl wallets, row counts, a local JWKS server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import base58
import httpx
from nacl.signing import SigningKey
from sqlalchemy import func, select

from retake.server.platform import Platform
from retake.store.tables import AuthNonce, Follow, IdentityLink, StreamSession, User


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


class JwksServer:
    """A local HTTP server publishing a JWK Set, as an identity provider such as Privy does."""

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                data = json.dumps(server.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @contextmanager
    def running(self) -> Iterator[JwksServer]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
