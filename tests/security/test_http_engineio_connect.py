"""Issue 12 item 10: a raw Engine.IO socket that never sends the Socket.IO CONNECT packet is closed after
``RETAKE_SOCKET_CONNECT_TIMEOUT_SECONDS`` (2 s here; 10 s by default). Before, it stayed open (it only has to
answer pings)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import websockets

from tests.e2e.conftest import Server
from tests.security.conftest import serve

TIMEOUT = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(tmp_path_factory.mktemp("eio"), RETAKE_SOCKET_CONNECT_TIMEOUT_SECONDS=str(TIMEOUT))


async def _open(server: Server) -> websockets.ClientConnection:
    url = server.base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = await websockets.connect(url)
    opened = await asyncio.wait_for(ws.recv(), 5)
    assert isinstance(opened, str) and opened.startswith("0{"), opened
    return ws


async def _closed_after(ws: websockets.ClientConnection, limit: float) -> float | None:
    start = time.monotonic()
    try:
        while time.monotonic() - start < limit:
            packet = await asyncio.wait_for(ws.recv(), limit)
            if packet == "2":  # answer pings like a live client would
                await ws.send("3")
    except (websockets.ConnectionClosed, TimeoutError):
        pass
    return time.monotonic() - start if ws.close_code is not None or ws.state.name == "CLOSED" else None


async def test_engineio_socket_without_connect_is_closed(server: Server) -> None:
    silent = await _open(server)
    joined = await _open(server)
    await joined.send("40")
    assert (await asyncio.wait_for(joined.recv(), 5)).startswith("40"), "the namespace CONNECT is answered"
    closed = await _closed_after(silent, TIMEOUT + 4)
    assert closed is not None, f"a socket that sent no CONNECT was still open after {TIMEOUT + 4:.0f} s"
    assert closed < TIMEOUT + 3
    assert joined.state.name == "OPEN", "a connected client is kept"
    await joined.close()
