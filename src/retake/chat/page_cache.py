"""Rendered chat pages kept per node until the chat changes: most polls ask for the page they got 3 s ago.

With 1,000 agents polling every 3 s and chat arriving at ~10 messages/s over all chats, a given chat changes
about once every 100 s, so nearly every poll can be answered from memory. An entry is keyed by
(shape, streamer, limit, cursor) and is valid while

1. this node has not seen the chat change: every write to a chat (messages, tips, trades, deletions,
   jail/unjail) is published on the platform ``EventBus`` as a ``message`` event to the streamer's room by the
   node that made it, and ``PageCache.on_event`` drops that streamer's entries. (An operator notice is written
   by ``retake admin warn`` and published by the node that claims it, so it joins cached pages with its
   broadcast, within ``operator_poll_seconds``.) A change of a user's name, picture or wallet (they appear in
   every page that user wrote in) drops every entry (``invalidate_all``);
2. its ``version`` still equals what ``PageVersions.read`` answers, which is how a change made on another node
   shows here (below);
3. it is younger than ``max_age`` (a safety net, see "Several nodes").

A page read while the chat changes is not stored: the write may have committed after the page's query read the
table, so every fill that is in flight for that streamer is marked stale by the invalidation (``_Fill``).

Several nodes. ``LocalVersions`` (no Redis) knows only this node's writes, i.e. it assumes one node per
database, as the in-process Socket.IO manager already does. With ``--redis-url`` (the scale-out configuration,
ARCHITECTURE.md) ``RedisVersions`` keeps a counter per chat in Redis: the node that writes increments it
(from ``on_event``, before the Socket.IO broadcast), and every poll reads it (one ``MGET``, ~0.1 ms) before
using an entry or querying, so a message stored through node B is in node A's very next page. If Redis cannot be
read, the poll goes to the database. Several nodes sharing a database without Redis are not supported; there
``max_age`` bounds how stale a page can get.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from retake.events import PlatformEvent

log = logging.getLogger(__name__)

# (shape, streamer_id, limit, before_id)
PageKey = tuple[str, str, int, int | None]


class PageVersions(Protocol):
    async def read(self, streamer_id: str) -> str | None:
        """A token that changes whenever any node changed this chat (or any user's profile); None when it
        cannot be known now (then the cache is not used)."""
        ...

    async def bump(self, streamer_id: str | None) -> None:
        """This node changed ``streamer_id``'s chat (None: a profile that may appear in any chat)."""
        ...

    async def close(self) -> None: ...


class LocalVersions:
    """One node: the event bus already tells this node about every change, so the version never changes."""

    async def read(self, streamer_id: str) -> str | None:
        return ""

    async def bump(self, streamer_id: str | None) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisVersions:
    """Per-chat counters in Redis, shared by every node of one platform (keys under ``prefix``)."""

    def __init__(self, url: str, prefix: str, *, timeout: float = 0.5) -> None:
        from redis.asyncio import Redis

        self._redis: Any = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._prefix = prefix
        self._all = f"{prefix}:all"
        self._warned_at = 0.0

    def _key(self, streamer_id: str) -> str:
        return f"{self._prefix}:chat:{streamer_id}"

    async def read(self, streamer_id: str) -> str | None:
        try:
            chat, everyone = await self._redis.mget(self._key(streamer_id), self._all)
        except Exception as exc:  # Redis down or slow: answer from the database, correct if slower
            self._warn("reading chat versions from Redis failed, polls go to the database: %s", exc)
            return None
        return f"{_text(chat)}.{_text(everyone)}"

    async def bump(self, streamer_id: str | None) -> None:
        try:
            await self._redis.incr(self._all if streamer_id is None else self._key(streamer_id))
        except Exception as exc:  # other nodes' entries for this chat then live until their max age
            self._warn("bumping a chat version in Redis failed: %s", exc)

    async def close(self) -> None:
        await self._redis.aclose()

    def _warn(self, message: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= 10:
            self._warned_at = now
            log.warning(message, exc)


def _text(value: bytes | None) -> str:
    return value.decode() if value is not None else "0"


@dataclass(eq=False)
class _Fill:
    """A page being read from the database for one streamer; ``stale`` once that chat changed meanwhile."""

    streamer_id: str
    stale: bool = False


@dataclass
class _Entry:
    value: Any
    version: str
    size: int
    expires: float


@dataclass
class PageCache:
    versions: PageVersions
    max_bytes: int = 64 * 1024 * 1024
    max_age: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _entries: OrderedDict[PageKey, _Entry] = field(default_factory=OrderedDict)  # least recently used first
    _by_streamer: dict[str, set[PageKey]] = field(default_factory=dict)
    _fills: dict[str, set[_Fill]] = field(default_factory=dict)
    _bytes: int = 0
    hits: int = 0
    misses: int = 0

    async def get_or_fill(self, key: PageKey, fill: Callable[[], Awaitable[Any]], size: Callable[[Any], int]) -> Any:
        """The cached value for ``key`` if still valid, else ``await fill()`` (stored unless the chat changed
        meanwhile). Exceptions from ``fill`` (an unknown streamer) pass through and store nothing."""
        streamer_id = key[1]
        version = await self.versions.read(streamer_id)  # before the query: a later change must show as newer
        if version is None:
            self.misses += 1
            return await fill()
        entry = self._entries.get(key)
        if entry is not None:
            if entry.version == version and entry.expires > self.clock():
                self._entries.move_to_end(key)
                self.hits += 1
                return entry.value
            self._drop(key)
        self.misses += 1
        pending = _Fill(streamer_id)
        self._fills.setdefault(streamer_id, set()).add(pending)
        try:
            value = await fill()
        finally:
            waiting = self._fills.get(streamer_id)
            if waiting is not None:
                waiting.discard(pending)
                if not waiting:
                    del self._fills[streamer_id]
        if not pending.stale:
            self._store(key, value, version, size(value))
        return value

    async def on_event(self, event: PlatformEvent) -> None:
        """EventBus listener: every change to a chat is a ``message`` event to ``<streamer_id>``."""
        if event.name == "message":
            self.invalidate(event.room)
            await self.versions.bump(event.room)

    def invalidate(self, streamer_id: str) -> None:
        for key in self._by_streamer.pop(streamer_id, set()):
            self._drop(key)
        for pending in self._fills.get(streamer_id, ()):
            pending.stale = True

    async def invalidate_all(self) -> None:
        """A user's name or picture changed: it may be in any page."""
        self._entries.clear()
        self._by_streamer.clear()
        self._bytes = 0
        for waiting in self._fills.values():
            for pending in waiting:
                pending.stale = True
        await self.versions.bump(None)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def _store(self, key: PageKey, value: Any, version: str, size: int) -> None:
        if size > self.max_bytes:
            return
        self._drop(key)
        while self._entries and self._bytes + size > self.max_bytes:
            self._drop(next(iter(self._entries)))
        self._entries[key] = _Entry(value, version, size, self.clock() + self.max_age)
        self._by_streamer.setdefault(key[1], set()).add(key)
        self._bytes += size

    def _drop(self, key: PageKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._bytes -= entry.size
        keys = self._by_streamer.get(key[1])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_streamer[key[1]]
