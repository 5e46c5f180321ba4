from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from retake.ingest import RtmpServer

ServerFactory = Callable[..., Awaitable[RtmpServer]]


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    """Start RtmpServers on 127.0.0.1, port 0; all are stopped after the test."""
    servers: list[RtmpServer] = []

    async def make(hooks: Any, **options: Any) -> RtmpServer:
        server = RtmpServer(hooks, "127.0.0.1", 0, **options)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.stop()
