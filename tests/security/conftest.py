"""Shared helpers of the security tests: a real ``retake serve`` process (tests/e2e/conftest.py) with short
admission deadlines, raw sockets, and an in-process app on SQLite."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from retake.config import Settings
from retake.server.app import create_app
from tests.e2e.conftest import Server, oembed_server, server, start_server, stop_server
from tests.ingest.conftest import make_server
from tests.support import FakeOEmbed

__all__ = ["make_server", "oembed_server", "server"]  # fixtures of the RTMP security tests


def serve(tmp: Path, **env: str) -> Iterator[Server]:
    """A ``retake serve`` process for one test module (started once: a start costs seconds)."""
    with FakeOEmbed().running() as oembed:
        server = start_server(tmp, oembed.url, RETAKE_RTMP_ENABLED="false", **env)
        try:
            yield server
        finally:
            stop_server(server)
            print("---- retake serve log (tail) ----")
            print(server.log()[-4000:])


def address(server: Server) -> tuple[str, int]:
    host, port = server.base.removeprefix("http://").split(":")
    return host, int(port)


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the peer closed ``sock`` (EOF or reset), reading and dropping what it sends; None if it
    stayed open that long."""
    start = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - start < seconds:
        try:
            if not sock.recv(65536):
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - start
    return None


def sqlite_settings(tmp: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp / "data",
        "database_url": f"sqlite+aiosqlite:///{tmp / 'retake.db'}",
        "public_url": "http://testserver",
        "register_rate": "1000/minute",
        "rtmp_enabled": False,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def in_process(
    settings: Settings, client: tuple[str, int] = ("127.0.0.1", 50000)
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http
