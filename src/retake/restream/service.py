"""Restream destinations of an agent (stored, key sealed) and the pushes of the streams live on this node.

Pushes follow the platform events: ``session_started`` (published by the node whose ingest holds the publisher,
once its media flows) starts one :class:`~retake.restream.pusher.Pusher` per destination, if the stream plays
here; the stream's end stops them (the subscription ends with it), as does ``session_ended``. A destination
added while live starts at once, a removed one stops at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from typing import Any, Final, Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.errors import Conflict, NotFound, ValidationFailed
from retake.events import EventBus, PlatformEvent
from retake.ids import parse_id
from retake.ingest.push import PushConnection, PushError, PushTarget
from retake.media.stream import LiveStream
from retake.restream.keybox import KeyBox
from retake.restream.pusher import DEFAULT_BACKOFF, Backoff, Pusher
from retake.store.tables import Restream

log = logging.getLogger(__name__)

MAX_PER_AGENT: Final = 5
MAX_NAME: Final = 64
MAX_URL: Final = 2000
MAX_KEY: Final = 512


class LiveStreams(Protocol):
    """This node's playback (``streams.media_bridge.Playback``): the live stream of a streamer, if it plays here."""

    def live_stream(self, stream_id: str) -> LiveStream | None: ...


@dataclass(frozen=True, slots=True)
class RestreamConfig:
    allow_private: bool = False  # destinations on loopback/private addresses (tests, a local relay)
    connect_timeout_seconds: float = 10.0
    backoff: Backoff = DEFAULT_BACKOFF


class RestreamService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        events: EventBus,
        streams: LiveStreams,
        keys: KeyBox,
        config: RestreamConfig | None = None,
    ) -> None:
        self._sessions = sessions
        self._events = events
        self._streams = streams
        self._keys = keys
        self.config = config or RestreamConfig()
        self._pushers: dict[str, dict[int, Pusher]] = {}  # streamer user id -> restream id -> its push
        self._unsubscribe: Any = None

    # -- destinations (REST) -------------------------------------------------------------------------------

    async def add(self, user_id: str, name: str, url: str, key: str) -> dict[str, Any]:
        name = name.strip()
        if not 1 <= len(name) <= MAX_NAME:
            raise ValidationFailed(f"name must be 1 to {MAX_NAME} characters", code="invalid_name")
        if not 1 <= len(key) <= MAX_KEY or key != key.strip():
            raise ValidationFailed(f"key must be 1 to {MAX_KEY} characters, without spaces around", code="invalid_key")
        target = self._target(url, key)
        async with self._sessions() as db:
            count = await db.scalar(select(func.count()).select_from(Restream).where(Restream.user_id == user_id))
            if (count or 0) >= MAX_PER_AGENT:
                raise Conflict(f"at most {MAX_PER_AGENT} restream destinations per agent", code="restream_limit")
            row = Restream(user_id=user_id, name=name, url=url.strip(), sealed_key="", key_last4=key[-4:])
            db.add(row)
            await db.flush()
            row.sealed_key = self._keys.seal(key, _context(row.id))
            await db.commit()
            await db.refresh(row)
        stream = self._streams.live_stream(user_id)
        if stream is not None and not stream.closed:  # live here now: push at once
            self._start_one(user_id, row.id, row.name, target, stream)
        return self._view(row)

    async def destinations(self, user_id: str) -> list[dict[str, Any]]:
        async with self._sessions() as db:
            rows = (await db.scalars(select(Restream).where(Restream.user_id == user_id).order_by(Restream.id))).all()
        return [self._view(row) for row in rows]

    async def remove(self, user_id: str, restream_id: str) -> None:
        rid = parse_id(restream_id, "id", code="invalid_id", message="must be a restream id")
        async with self._sessions() as db:
            row = await db.get(Restream, rid)
            if row is None or row.user_id != user_id:
                raise NotFound("no such restream destination", code="restream_not_found")
            await db.delete(row)
            await db.commit()
        pusher = self._pushers.get(user_id, {}).pop(rid, None)
        if pusher is not None:
            await pusher.stop()

    def statuses(self, user_id: str) -> list[dict[str, Any]]:
        """What ``GET /agent/stream/status`` shows: the pushes of this agent's stream on this node."""
        return [
            {"id": str(rid), "name": pusher.label.split(" ", 1)[1], **_status(pusher)}
            for rid, pusher in sorted(self._pushers.get(user_id, {}).items())
        ]

    def _view(self, row: Restream) -> dict[str, Any]:
        pusher = self._pushers.get(row.user_id, {}).get(row.id)
        status = _status(pusher) if pusher is not None else _IDLE
        return {
            "id": str(row.id),
            "name": row.name,
            "url": row.url,
            "key_last4": row.key_last4,
            "created_at": row.created_at.isoformat().replace("+00:00", "Z"),
            **status,
        }

    def _target(self, url: str, key: str) -> PushTarget:
        if len(url) > MAX_URL:
            raise ValidationFailed(f"url must be at most {MAX_URL} characters", code="invalid_url")
        try:
            target = PushTarget.parse(url, key)
        except ValueError as exc:
            raise ValidationFailed(str(exc), code="invalid_url") from None
        if not self.config.allow_private and _private_literal(target.host):
            raise ValidationFailed("the destination is a private or loopback address", code="invalid_url")
        return target

    # -- pushes ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._unsubscribe = self._events.subscribe(self.on_event)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for user_id in list(self._pushers):
            await self._stop_all(user_id)

    async def on_event(self, event: PlatformEvent) -> None:
        # streams' SessionStarted/SessionEnded records (restream does not import streams: read the field by name)
        streamer = getattr(event.record, "streamer_id", None)
        if not isinstance(streamer, str):
            return
        if event.name == "session_started":
            await self._start_all(streamer)
        elif event.name == "session_ended":
            await self._stop_all(streamer)

    async def _start_all(self, user_id: str) -> None:
        stream = self._streams.live_stream(user_id)
        if stream is None:
            return  # the publisher is on another node: that node pushes
        async with self._sessions() as db:
            rows = (await db.scalars(select(Restream).where(Restream.user_id == user_id).order_by(Restream.id))).all()
        running = self._pushers.setdefault(user_id, {})
        for row in rows:
            current = running.get(row.id)
            if current is not None and current.stream is stream:
                continue  # already pushing this stream
            if current is not None:
                await current.stop()
            try:
                key = self._keys.open(row.sealed_key, _context(row.id))
                target = PushTarget.parse(row.url, key)
            except ValueError as exc:
                log.warning("restream %d cannot start: %s", row.id, exc)
                continue
            self._start_one(user_id, row.id, row.name, target, stream)

    def _start_one(self, user_id: str, rid: int, name: str, target: PushTarget, stream: LiveStream) -> None:
        pusher = Pusher(f"{rid} {name}", target, stream, connect=self._connect, backoff=self.config.backoff)
        running = self._pushers.setdefault(user_id, {})
        running[rid] = pusher

        def done() -> None:
            if running.get(rid) is pusher:
                del running[rid]

        pusher.start(done)

    async def _stop_all(self, user_id: str) -> None:
        running = self._pushers.pop(user_id, {})
        await asyncio.gather(*(pusher.stop() for pusher in running.values()))

    async def _connect(self, target: PushTarget) -> PushConnection:
        if not self.config.allow_private:
            await _require_public(target.host, target.port)
        return await PushConnection.open(target, time_limit=self.config.connect_timeout_seconds)


_IDLE: Final[dict[str, Any]] = {"status": "idle", "last_error": None, "bytes_sent": 0, "uptime_seconds": 0}


def _status(pusher: Pusher) -> dict[str, Any]:
    status = pusher.status()
    return {
        "status": status.state,
        "last_error": status.last_error,
        "bytes_sent": status.bytes_sent,
        "uptime_seconds": status.uptime_seconds,
    }


def _context(restream_id: int) -> str:
    return f"restream:{restream_id}"


def _private_literal(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: checked when it is resolved, at each connection
    return not ip.is_global


async def _require_public(host: str, port: int) -> None:
    """Resolve ``host`` and refuse it if any address is not public (DNS that points at the inside)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port)
    except OSError as exc:
        raise PushError(f"cannot resolve {host}: {exc.strerror or type(exc).__name__}") from None
    for info in infos:
        address = info[4][0]
        if not isinstance(address, str) or not ipaddress.ip_address(address.split("%", 1)[0]).is_global:
            raise PushError(f"{host} resolves to a private or loopback address")
