"""The chat page cache: validity by events, versions and age; fills that race a change; the memory bound."""

from __future__ import annotations

import asyncio

import pytest

from retake.chat.page_cache import LocalVersions, PageCache, PageKey
from retake.chat.results import ChatCleared, PinState
from retake.events import PlatformEvent


class Versions:
    """Like RedisVersions, in memory: what other nodes' writes would do to the shared counters."""

    def __init__(self) -> None:
        self.chats: dict[str, int] = {}
        self.everyone = 0
        self.down = False
        self.bumped: list[str | None] = []

    async def read(self, streamer_id: str) -> str | None:
        if self.down:
            return None
        return f"{self.chats.get(streamer_id, 0)}.{self.everyone}"

    async def bump(self, streamer_id: str | None) -> None:
        self.bumped.append(streamer_id)
        if streamer_id is None:
            self.everyone += 1
        else:
            self.chats[streamer_id] = self.chats.get(streamer_id, 0) + 1

    async def close(self) -> None:
        return None


class Reader:
    """Counts database reads; each read returns a new value."""

    def __init__(self) -> None:
        self.reads = 0

    async def __call__(self) -> str:
        self.reads += 1
        return f"page {self.reads}"


def key(streamer: str, limit: int = 50, before: int | None = None) -> PageKey:
    return ("comments", streamer, limit, before)


async def get(cache: PageCache, k: PageKey, reader: Reader) -> str:
    value: str = await cache.get_or_fill(k, reader, len)
    return value


def message(streamer: str) -> PlatformEvent:
    return PlatformEvent("message", streamer, ChatCleared(0, streamer, None, None))


async def test_a_page_is_kept_until_its_chat_changes() -> None:
    cache = PageCache(LocalVersions())
    reader = Reader()
    assert await get(cache, key("s1"), reader) == "page 1"
    assert await get(cache, key("s1"), reader) == "page 1"
    assert await get(cache, key("s2"), reader) == "page 2"
    assert await get(cache, key("s1", before=9), reader) == "page 3"
    await cache.on_event(
        PlatformEvent("pinned", "s1/x", PinState("s1", "x", False, None, None, None))
    )  # pins are not in pages
    await cache.on_event(message("s1"))  # a message, delete, delete_all, jail ... in s1's chat
    assert await get(cache, key("s1"), reader) == "page 4"
    assert await get(cache, key("s1", before=9), reader) == "page 5"
    assert await get(cache, key("s2"), reader) == "page 2", "other chats keep their pages"
    assert (cache.hits, cache.misses) == (2, 5)


async def test_a_change_on_another_node_shows_through_the_version() -> None:
    versions = Versions()
    cache = PageCache(versions)
    reader = Reader()
    assert await get(cache, key("s1"), reader) == "page 1"
    assert await get(cache, key("s1"), reader) == "page 1"
    versions.chats["s1"] = 7  # node B stored a message in s1's chat
    assert await get(cache, key("s1"), reader) == "page 2"
    versions.everyone += 1  # node B renamed a user
    assert await get(cache, key("s1"), reader) == "page 3"
    versions.down = True  # Redis unreachable: always the database, nothing stored
    assert await get(cache, key("s1"), reader) == "page 4"
    assert await get(cache, key("s1"), reader) == "page 5"


async def test_this_nodes_changes_bump_the_shared_versions() -> None:
    versions = Versions()
    cache = PageCache(versions)
    await cache.on_event(message("s1"))
    await cache.invalidate_all()
    assert versions.bumped == ["s1", None]


async def test_a_page_read_while_its_chat_changes_is_not_kept() -> None:
    cache = PageCache(LocalVersions())
    reading, release = asyncio.Event(), asyncio.Event()

    async def slow_read() -> str:  # its query ran before the new message was committed
        reading.set()
        await release.wait()
        return "page without the new message"

    first = asyncio.create_task(cache.get_or_fill(key("s1"), slow_read, len))
    other = asyncio.create_task(cache.get_or_fill(key("s2"), slow_read, len))
    await reading.wait()
    await cache.on_event(message("s1"))
    release.set()
    assert await first == "page without the new message"  # answered, as any read racing a write may be
    await other
    reader = Reader()
    assert await get(cache, key("s1"), reader) == "page 1", "but not kept"
    assert await get(cache, key("s2"), reader) == "page without the new message"


async def test_invalidate_all_also_spoils_reads_in_flight() -> None:
    cache = PageCache(LocalVersions())
    release = asyncio.Event()

    async def slow_read() -> str:
        await release.wait()
        return "old name"

    pending = asyncio.create_task(cache.get_or_fill(key("s1"), slow_read, len))
    await asyncio.sleep(0)
    await cache.invalidate_all()
    release.set()
    await pending
    assert len(cache) == 0


async def test_a_failed_read_stores_nothing() -> None:
    cache = PageCache(LocalVersions())

    async def missing() -> str:
        raise LookupError("no streamer")

    with pytest.raises(LookupError):
        await cache.get_or_fill(key("nope"), missing, len)
    assert len(cache) == 0 and cache._fills == {}


async def test_age_and_memory_bounds() -> None:
    now = [0.0]
    cache = PageCache(LocalVersions(), max_bytes=20, max_age=60, clock=lambda: now[0])
    reader = Reader()
    await get(cache, key("s1"), reader)  # 6 bytes each
    await get(cache, key("s2"), reader)
    await get(cache, key("s3"), reader)
    await get(cache, key("s1"), reader)  # used: s2 is now the least recently used
    await get(cache, key("s4"), reader)  # 24 bytes > 20: s2 goes
    assert cache.size_bytes == 18 and len(cache) == 3
    assert await get(cache, key("s2"), reader) == "page 5"
    now[0] = 61
    assert await get(cache, key("s1"), reader) == "page 6", "older than max_age: read again"
