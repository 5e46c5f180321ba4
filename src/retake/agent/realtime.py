"""Socket.IO chat events (API.md, Socket.IO) on python-socketio's ``AsyncClient``.

Rooms: ``<streamer_id>`` carries chat messages, tips and trades; ``live_<streamer_id>`` carries tips, going
live and follows; ``trades`` / ``trades_<tokenAddress>`` the trade feeds. Joined rooms are joined again after
a reconnect. Incoming events are queued (read them with :meth:`ChatSocket.events` or
:meth:`ChatSocket.next_event`) and handed to callbacks registered with :meth:`ChatSocket.on`.

Sending a message puts the token in the payload (``sender_token``), so the same token rule as the HTTP
clients applies: it is only sent to the origin it was issued by.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import socketio

from retake.agent.client import USER_AGENT, Origin, describe, origin
from retake.agent.credentials import Credentials, normalize_base_url
from retake.agent.errors import ApiError, CredentialsError, TokenHostError, TransportError

log = logging.getLogger(__name__)

SERVER_EVENTS = (
    "message",
    "pinned",
    "tip_received",
    "newtrade",
    "rawtrade",
    "session_started",
    "user_followed",
    "joinedRoom",
    "error",
)

Callback = Callable[[Any], Awaitable[None] | None]


@dataclass(frozen=True)
class SocketEvent:
    name: str
    data: Any


class ChatSocket:
    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        token_base_url: str | None = None,
        reconnection: bool = True,
        queue_size: int = 1000,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self._token = token or None
        self._token_origin: Origin | None = (
            origin(normalize_base_url(token_base_url or base_url)) if self._token else None
        )
        self._sio = socketio.AsyncClient(
            reconnection=reconnection, handle_sigint=False, logger=False, engineio_logger=False
        )
        self._rooms: set[str] = set()
        self._queue: asyncio.Queue[SocketEvent] = asyncio.Queue(maxsize=queue_size)
        self._callbacks: dict[str, list[Callback]] = {}
        self._sio.on("connect", self._on_connect)
        for name in SERVER_EVENTS:
            self._sio.on(name, self._dispatcher(name))

    @classmethod
    def from_credentials(cls, creds: Credentials, base_url: str | None = None, **kwargs: Any) -> ChatSocket:
        base = base_url or creds.base_url
        if not base:
            raise CredentialsError("no base URL for the Socket.IO connection")
        return cls(base, creds.access_token or None, token_base_url=creds.base_url or base, **kwargs)

    @property
    def connected(self) -> bool:
        return bool(self._sio.connected)

    async def connect(self, wait_seconds: float = 10.0) -> None:
        parsed = httpx.URL(self.base_url)
        server = f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"
        path = (parsed.path.rstrip("/") + "/socket.io").lstrip("/")
        try:
            await self._sio.connect(
                server,
                headers={"User-Agent": USER_AGENT},
                socketio_path=path,
                transports=["websocket", "polling"],
                wait_timeout=wait_seconds,
            )
        except socketio.exceptions.ConnectionError as exc:
            raise TransportError(f"Socket.IO connection to {server}/{path} failed: {exc}") from exc

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._sio.disconnect()

    async def __aenter__(self) -> ChatSocket:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- rooms ---------------------------------------------------------------------------------------------

    async def join(self, room_id: str) -> None:
        self._rooms.add(room_id)
        await self._sio.emit("joinRoom", {"roomId": room_id})

    async def leave(self, room_id: str) -> None:
        self._rooms.discard(room_id)
        await self._sio.emit("leaveRoom", {"roomId": room_id})

    async def join_stream(self, streamer_id: str) -> None:
        """A streamer's chat and its ``live_`` room (tips, going live, follows)."""
        await self.join(streamer_id)
        await self.join(f"live_{streamer_id}")

    # -- sending -------------------------------------------------------------------------------------------

    async def send_message(
        self,
        streamer_id: str,
        text: str,
        *,
        type: str = "message",
        session_id: str | None = None,
        sender_user_id: str | None = None,
        tip_data: dict[str, Any] | None = None,
        trade_data: dict[str, Any] | None = None,
        ack_seconds: float = 10.0,
    ) -> dict[str, Any]:
        """Send a chat message (or announce a tip/trade) and return the stored message the server acknowledges.
        A refusal raises :class:`ApiError` with the server's code (``status`` is ``None``: there is no HTTP)."""
        if self._token is None:
            raise CredentialsError("sending chat over Socket.IO needs a token (agent access token or viewer JWT)")
        target = origin(self.base_url)
        if target != self._token_origin:
            expected = describe(self._token_origin) if self._token_origin else "?"
            raise TokenHostError(f"refusing to send the token to {describe(target)}: it was issued by {expected}")
        payload: dict[str, Any] = {
            "type": type,
            "streamer_id": streamer_id,
            "session_id": session_id,
            "sender_token": self._token,
            "sender_user_id": sender_user_id,
            "text": text,
            "timestamp": str(int(asyncio.get_running_loop().time() * 1000)),
        }
        if tip_data is not None:
            payload["tip_data"] = tip_data
        if trade_data is not None:
            payload["trade_data"] = trade_data
        try:
            ack = await self._sio.call("message", payload, timeout=ack_seconds)
        except socketio.exceptions.TimeoutError as exc:
            raise TransportError(f"no acknowledgement for the chat message within {ack_seconds} s") from exc
        except socketio.exceptions.BadNamespaceError as exc:
            raise TransportError("not connected") from exc
        if isinstance(ack, dict) and "error" in ack and "code" in ack and "_id" not in ack:
            raise ApiError(str(ack["error"]), status=None, code=str(ack["code"]))
        return ack if isinstance(ack, dict) else {"ack": ack}

    # -- receiving -----------------------------------------------------------------------------------------

    def on(self, event: str, callback: Callback) -> None:
        """Call ``callback(data)`` (plain or async) for every ``event``; events are queued as well."""
        self._callbacks.setdefault(event, []).append(callback)

    async def next_event(self, wait_seconds: float | None = None) -> SocketEvent:
        return await asyncio.wait_for(self._queue.get(), wait_seconds)

    async def events(self) -> AsyncIterator[SocketEvent]:
        while True:
            yield await self._queue.get()

    async def _on_connect(self) -> None:
        for room in sorted(self._rooms):  # after a reconnect the server has forgotten our rooms
            await self._sio.emit("joinRoom", {"roomId": room})

    def _dispatcher(self, name: str) -> Callable[[Any], Awaitable[None]]:
        async def handle(data: Any = None) -> None:
            event = SocketEvent(name, data)
            if self._queue.full():  # a reader that fell behind loses the oldest events, never blocks the socket
                with contextlib.suppress(asyncio.QueueEmpty):
                    self._queue.get_nowait()
            self._queue.put_nowait(event)
            for callback in self._callbacks.get(name, []):
                try:
                    result = callback(data)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("Socket.IO callback for %r failed", name)

        return handle
