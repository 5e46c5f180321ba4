"""The Socket.IO server at ``/socket.io/``: rooms, client chat, and the bridge from the platform's event bus.

Services never talk to Socket.IO: they publish ``PlatformEvent``s on ``platform.events`` and the bridge emits
each one to its room. With ``redis_url`` set, the server uses ``AsyncRedisManager``, so an emit on one node
reaches the clients of every node sharing that Redis channel; a message stored through REST on node A is
delivered, with the same id, to a client connected to node B (ARCHITECTURE.md, scale-out). Without Redis the
manager is in-process and one node is the whole platform.

Client events are handled one at a time per connection (``async_handlers=False``): a client's messages are
stored in the order it sent them, and a client that floods waits for its own backlog instead of piling up tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import engineio.packet
import socketio
from starlette.types import ASGIApp, Receive, Scope, Send

from retake.chat.service import MAX_TEXT
from retake.config import Settings
from retake.errors import Forbidden, NotFound, RetakeError, ValidationFailed
from retake.events import INTERNAL_EVENTS, PlatformEvent
from retake.ratelimit import RateLimiter
from retake.server.realtime.agent_room import join_agent_room, refuse_private_room  # webhooks
from retake.server.realtime.fanout import DirectFanout, DirectManager, DirectRedisManager
from retake.server.realtime.fanout import install as install_fanout
from retake.server.realtime.payloads import ClientMessage, error_body, parse_message, parse_room
from retake.server.realtime.wire import comment, wire_payload

if TYPE_CHECKING:
    from retake.server.platform import Platform

log = logging.getLogger(__name__)

MAX_ROOMS_PER_CONNECTION = 50
MAX_PACKET_BYTES = 64 * 1024  # chat lines are at most 500 characters; nothing a client sends is larger
REDIS_READY_SECONDS = 5.0
_pending: set[asyncio.Task[None]] = set()


class _TolerantServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio raises (and logs a traceback) when a client sends a packet it cannot decode: a bad type
    digit, a ``null`` event, a stray binary attachment. Such a client does not speak the protocol, so it is
    dropped with a one-line warning; the node and every other connection carry on."""

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
        except Exception as exc:
            log.warning("closing a Socket.IO connection that sent a malformed packet (%s)", type(exc).__name__)
            # Not awaited here: this runs inside the connection's read loop, which the close waits for.
            task = self.start_background_task(self._drop, eio_sid)
            _pending.add(task)  # asyncio keeps only weak references to tasks
            task.add_done_callback(_pending.discard)

    # An Engine.IO session costs a socket and buffers before it joins any namespace; one that never sends the
    # Socket.IO CONNECT packet was kept open for as long as it answered pings. Set by ``Realtime``.
    connect_timeout: float = 10.0

    async def _handle_eio_connect(self, eio_sid: str, environ: Any) -> None:
        await super()._handle_eio_connect(eio_sid, environ)
        asyncio.get_running_loop().call_later(self.connect_timeout, self._connect_deadline, eio_sid)

    def _connect_deadline(self, eio_sid: str) -> None:
        if eio_sid not in self.eio.sockets:
            return  # already gone
        if any(self.manager.sid_from_eio_sid(eio_sid, ns) for ns in ("/", *self.manager.get_namespaces())):
            return
        log.debug("closing a Socket.IO connection that sent no CONNECT within %.0f s", self.connect_timeout)
        task = self.start_background_task(self._shut, eio_sid)
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        await super()._handle_eio_disconnect(eio_sid, reason)
        # A long-polling client that closes its session leaves its last GET waiting in the engine for up to
        # ping interval + timeout (45 s), holding a task and, at shutdown, the whole grace period. A no-op
        # packet ends that GET now; the client has gone, so nobody reads it.
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None and not socket.upgraded:
            socket.queue.put_nowait(engineio.packet.Packet(engineio.packet.NOOP))

    async def _shut(self, eio_sid: str) -> None:
        """Disconnect, and also end the transport: Engine.IO only sends its CLOSE packet and leaves closing the
        WebSocket to the client, which a hostile one never does. ``None`` in the queue ends the writer, and the
        writer's end closes the WebSocket (a long-poll is answered and not renewed)."""
        socket = self.eio.sockets.get(eio_sid)
        await self._drop(eio_sid)
        if socket is not None:
            socket.queue.put_nowait(None)

    async def _drop(self, eio_sid: str) -> None:
        with contextlib.suppress(Exception):
            await self.eio.disconnect(eio_sid)


class Realtime:
    """Built in ``create_app`` (so it can be mounted), started and stopped in the lifespan."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        manager: DirectFanout
        if settings.redis_url:
            manager = DirectRedisManager(
                settings.redis_url, channel=settings.redis_channel, max_buffered=settings.ws_max_buffered_bytes
            )
        else:
            manager = DirectManager(max_buffered=settings.ws_max_buffered_bytes)
        self.manager = manager
        self.sio = _TolerantServer(
            async_mode="asgi",
            client_manager=manager,
            async_handlers=False,
            max_http_buffer_size=MAX_PACKET_BYTES,
            logger=False,
            engineio_logger=False,
        )
        self.sio.connect_timeout = settings.socket_connect_timeout_seconds
        # Broadcasts write one pre-built frame per viewer (fanout.py); without the engine internals it needs, the
        # managers above still avoid a task per recipient.
        self.direct_frames = install_fanout(self.sio, settings.ws_max_buffered_bytes)
        self._limiter = RateLimiter(settings.socket_event_rate)
        self._platform: Platform | None = None
        self._unsubscribe: Any = None
        self.sio.on("connect", self._on_connect)
        self.sio.on("joinRoom", self._on_join)
        self.sio.on("leaveRoom", self._on_leave)
        self.sio.on("message", self._on_message)
        self.sio.on("*", self._on_unknown)

    def asgi_app(self) -> ASGIApp:
        """The app to mount at ``/socket.io``; the mount already routed, so every request is Engine.IO's."""
        inner = socketio.ASGIApp(self.sio, socketio_path=None)

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                await inner(scope, receive, send)
            except Exception as exc:
                # Engine.IO decodes WebSocket frames outside any handler, so a frame that is not an Engine.IO
                # packet ends the connection with an exception; that is the client's fault, not a server error.
                if scope["type"] != "websocket":
                    raise
                log.warning("closed a Socket.IO WebSocket that sent a malformed frame (%s)", type(exc).__name__)

        return guarded

    # -- lifespan ------------------------------------------------------------------------------------------

    async def start(self, platform: Platform) -> None:
        self._platform = platform
        self._unsubscribe = platform.events.subscribe(self._relay)
        if isinstance(self.manager, socketio.AsyncRedisManager):
            # The library would subscribe to Redis on the first client connection; subscribing now means a node
            # that reports healthy already receives what other nodes emit.
            self.sio.manager_initialized = True
            self.manager.initialize()
            await self._wait_for_redis()

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        listener = getattr(self.manager, "thread", None)
        if isinstance(listener, asyncio.Task):
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
        for resource in (getattr(self.manager, "pubsub", None), getattr(self.manager, "redis", None)):
            if resource is not None:
                with contextlib.suppress(Exception):
                    await resource.aclose()
        await self.sio.shutdown()

    async def disconnect_everyone(self) -> None:
        """Close every Socket.IO connection of this node (shutdown): long-polls end now instead of at their
        timeout. Clients see an ordinary disconnect and reconnect, to another node if there is one."""
        if not self.sio.eio.sockets:
            return
        try:
            await self.sio.eio.disconnect()
        except Exception:  # shutting down anyway: a failure here must not stop the rest of the shutdown
            log.warning("could not disconnect all Socket.IO clients", exc_info=True)

    async def _wait_for_redis(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REDIS_READY_SECONDS
        while loop.time() < deadline:
            pubsub = getattr(self.manager, "pubsub", None)
            if pubsub is not None and pubsub.subscribed:
                log.info("Socket.IO shares rooms through Redis channel %r", self._settings.redis_channel)
                return
            await asyncio.sleep(0.02)
        log.warning("Redis did not confirm the Socket.IO subscription in %.0f s; retrying", REDIS_READY_SECONDS)

    # -- the bridge ----------------------------------------------------------------------------------------

    async def _relay(self, event: PlatformEvent) -> None:
        if event.name in INTERNAL_EVENTS:
            return
        await self.sio.emit(event.name, wire_payload(event), room=event.room)

    # -- client events -------------------------------------------------------------------------------------

    async def _on_connect(self, sid: str, *args: Any) -> bool:
        # Anyone may watch: rooms carry public events. Extra query parameters (Client-ID, Client-Type) that
        # real clients send are accepted and ignored; identity is checked per message via sender_token.
        auth = args[1] if len(args) > 1 else None
        if isinstance(auth, dict) and auth.get("token") is not None:  # webhooks: the agent socket
            await join_agent_room(self.sio, self._platform, sid, auth["token"])
        return True

    async def _on_join(self, sid: str, *args: Any) -> dict[str, Any]:
        try:
            self._limiter.hit(sid, "Socket.IO events")
            room = parse_room(args[0] if args else None)
            refuse_private_room(room)  # webhooks: agent_<id> is joined only by connecting with the agent's token
            joined = [r for r in self.sio.rooms(sid) if r != sid]
            if room not in joined and len(joined) >= MAX_ROOMS_PER_CONNECTION:
                raise ValidationFailed(
                    f"at most {MAX_ROOMS_PER_CONNECTION} rooms per connection; leave one first", code="too_many_rooms"
                )
            await self.sio.enter_room(sid, room)
        except RetakeError as exc:
            return await self._refuse(sid, exc)
        answer = {"roomId": room}
        await self.sio.emit("joinedRoom", answer, to=sid)
        return answer

    async def _on_leave(self, sid: str, *args: Any) -> dict[str, Any]:
        try:
            self._limiter.hit(sid, "Socket.IO events")
            room = parse_room(args[0] if args else None)
            if room != sid:  # a client's own room is how the server reaches it
                await self.sio.leave_room(sid, room)
        except RetakeError as exc:
            return await self._refuse(sid, exc)
        return {"roomId": room}

    async def _on_message(self, sid: str, *args: Any) -> dict[str, Any]:
        """Store and broadcast a chat line; the stored comment is also the acknowledgement, if one is asked."""
        try:
            self._limiter.hit(sid, "Socket.IO events")
            incoming = parse_message(args[0] if args else None)
            return await self._store(incoming)
        except RetakeError as exc:
            return await self._refuse(sid, exc)
        except Exception:  # the edge of the system: a client must get an answer, never a dead socket
            log.exception("Socket.IO message failed")
            return await self._refuse(
                sid, RetakeError("internal server error; it has been logged", code="internal_error")
            )

    async def _on_unknown(self, event: Any, sid: str, *_args: Any) -> dict[str, Any]:
        try:
            self._limiter.hit(sid, "Socket.IO events")
        except RetakeError as exc:
            return await self._refuse(sid, exc)
        name = str(event)[:64]
        return await self._refuse(sid, ValidationFailed(f"unknown event '{name}'", code="unknown_event"))

    async def _store(self, incoming: ClientMessage) -> dict[str, Any]:
        platform = self._platform
        if platform is None:
            raise RetakeError("the server is starting; try again", code="unavailable")
        sender = await platform.users.authenticate(incoming.sender_token)
        if incoming.sender_user_id and incoming.sender_user_id != sender.id:
            raise Forbidden("sender_user_id does not match sender_token", code="sender_mismatch")
        text = incoming.text if incoming.text.strip() or incoming.type == "message" else f"sent a {incoming.type}"
        note = None
        if incoming.type in ("tip", "trade"):
            # Only a real ledger record may be announced: a client cannot make up a tip or a trade in chat.
            # The ledger marks a record announced when it confirms it, so what would refuse the message anyway
            # is checked first: a refused announcement must not use the record up.
            if not 1 <= len(text.strip()) <= MAX_TEXT:
                raise ValidationFailed(f"message must be 1-{MAX_TEXT} characters", code="invalid_message")
            async with platform.sessions() as db:
                await platform.chat.gate.check_send(db, incoming.streamer_id, sender.id)
            tx_hash = incoming.tx_hash
            if tx_hash:
                note = await platform.chat.transactions.confirm(incoming.type, tx_hash, sender.id, incoming.streamer_id)
            if note is None:
                raise NotFound(
                    f"no {incoming.type} with this tx_hash by this sender on the ledger", code="unknown_transaction"
                )
        posted = await platform.chat.send(sender, incoming.streamer_id, text, incoming.type, note=note)
        return dict(comment(posted.comment))  # the acknowledgement is the comment as it was broadcast

    async def _refuse(self, sid: str, exc: RetakeError) -> dict[str, Any]:
        body = error_body(exc)
        await self.sio.emit("error", body, to=sid)
        return body
