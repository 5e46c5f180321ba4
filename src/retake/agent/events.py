"""``async for event in client.events()``: the agent's push events over its socket, polling when there is none.

The agent socket is a Socket.IO connection made with ``auth: {token}``; the server puts it in the agent's
private room and emits every agent event there as ``agent_event`` with the webhook body ``{id, type,
created_at, data}``. When the socket cannot be opened (an older server, a proxy without WebSockets), the
stream falls back to polling the agent's own comments and yields them as ``chat.message`` events of the same
shape (ids ``poll_<chat_event_id>``), so a loop written against push still works.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from retake.agent.calls import comments, stream_status
from retake.agent.client import USER_AGENT, describe, origin
from retake.agent.errors import CredentialsError, TokenHostError, TransportError
from retake.agent.types import JSONObject

if TYPE_CHECKING:
    from retake.agent.async_client import AsyncRetakeClient

log = logging.getLogger(__name__)

POLL_SECONDS = 3.0


def _check_token(client: AsyncRetakeClient) -> None:
    if not client.has_token:
        raise CredentialsError("the agent event stream needs an access token")
    target = origin(client.base_url)
    if target != client.token_origin:
        expected = describe(client.token_origin) if client.token_origin else "?"
        raise TokenHostError(f"refusing to send the access token to {describe(target)}: it was issued by {expected}")


class AgentSocket:
    """The agent socket as a queue of ``agent_event`` bodies. python-socketio reconnects by itself; events sent
    while it was away are not replayed, so a reader that must not miss any (the go-live chat loop) watches
    ``reconnects`` and catches up over REST when it moves."""

    def __init__(self, client: AsyncRetakeClient, queue_size: int = 10_000) -> None:
        _check_token(client)
        self._client = client
        self.queue: asyncio.Queue[JSONObject] = asyncio.Queue(maxsize=queue_size)
        self.reconnects = 0
        self._connects = 0
        self._sio: Any = None

    @property
    def connected(self) -> bool:
        return bool(self._sio is not None and self._sio.connected)

    async def connect(self, wait_seconds: float = 10.0) -> bool:
        """True when the socket is open; False (logged) when the server or a proxy refused it."""
        import httpx
        import socketio  # imported on use, as retake.agent does for ChatSocket

        sio = socketio.AsyncClient(reconnection=True, handle_sigint=False, logger=False, engineio_logger=False)
        sio.on("agent_event", self._received)
        sio.on("connect", self._connected)
        parsed = httpx.URL(self._client.base_url)
        server = f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"
        path = (parsed.path.rstrip("/") + "/socket.io").lstrip("/")
        try:
            await sio.connect(
                server,
                headers={"User-Agent": USER_AGENT},
                auth={"token": self._client._token},
                socketio_path=path,
                transports=["websocket", "polling"],
                wait_timeout=wait_seconds,
            )
        except socketio.exceptions.ConnectionError as exc:
            log.warning("agent socket unavailable (%s)", exc)
            with contextlib.suppress(Exception):
                await sio.disconnect()
            return False
        self._sio = sio
        return True

    async def _connected(self) -> None:
        self._connects += 1
        if self._connects > 1:
            self.reconnects += 1

    async def _received(self, data: Any = None) -> None:
        if isinstance(data, dict):
            if self.queue.full():  # a reader that fell behind loses the oldest events rather than block the socket
                self.queue.get_nowait()
            self.queue.put_nowait(data)

    async def next(self, wait_seconds: float | None = None) -> JSONObject | None:
        """The next event, or None after ``wait_seconds`` without one."""
        try:
            return await asyncio.wait_for(self.queue.get(), wait_seconds)
        except TimeoutError:
            return None

    async def close(self) -> None:
        if self._sio is not None:
            with contextlib.suppress(Exception):
                await self._sio.disconnect()
            self._sio = None


async def agent_events(
    client: AsyncRetakeClient, *, poll_seconds: float = POLL_SECONDS, connect_seconds: float = 10.0
) -> AsyncIterator[JSONObject]:
    socket = AgentSocket(client)
    if not await socket.connect(connect_seconds):
        log.warning("polling comments every %g s instead of the agent socket", poll_seconds)
        async for event in _poll(client, poll_seconds):
            yield event
        return
    try:
        while True:
            yield await socket.queue.get()
    finally:
        await socket.close()


async def _poll(client: AsyncRetakeClient, every: float) -> AsyncIterator[JSONObject]:
    me = str((await client.call(stream_status()))["userDbId"])
    newest = 0
    first = True
    while True:
        try:
            page = await client.call(comments(me, limit=50))
        except TransportError as exc:
            log.warning("polling comments failed: %s", exc)
            page = {"comments": [], "next_cursor": None}
        fresh = [c for c in page.get("comments", []) if int(str(c.get("_id", "0"))) > newest]
        for comment in sorted(fresh, key=lambda c: int(str(c["_id"]))):
            newest = max(newest, int(str(comment["_id"])))
            if not first:  # the first page is history, not news
                yield {
                    "id": f"poll_{comment['_id']}",
                    "type": "chat.message",
                    "created_at": comment.get("timestamp"),
                    "data": comment,
                }
        first = False
        await asyncio.sleep(every)
