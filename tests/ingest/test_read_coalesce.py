"""RtmpServer(read_coalesce=...): a publishing connection is read once per tick, everything else as before."""

from __future__ import annotations

import asyncio

from retake.ingest import RtmpServer
from retake.ingest.peer import Client
from tests.ingest.conftest import ServerFactory
from tests.ingest.support import AVC_KEYFRAME
from tests.ingest.test_server import Publisher, RecordingHooks, wait_for

TICK = 0.5  # long against the ~0.1 s the writes below take, so a slow machine still fits them in one tick


def count_reads(server: object) -> list[int]:
    """Patch the server's read callback to note the size of each read it is given."""
    reads: list[int] = []
    original = server._data_received  # type: ignore[attr-defined]

    def counting(client: Client, data: bytes) -> None:
        reads.append(len(data))
        original(client, data)

    server._data_received = counting  # type: ignore[attr-defined]
    return reads


async def live_publisher(server: RtmpServer, hooks: RecordingHooks) -> Publisher:
    """A publisher of "good" whose first media message has reached the hooks."""
    publisher = await Publisher.open(server.port)
    await publisher.publish("good")
    await publisher.send_media(1)
    await wait_for(lambda: len(hooks.media) == 1)
    return publisher


async def test_writes_within_a_tick_come_in_one_read(make_server: ServerFactory) -> None:
    hooks = RecordingHooks()
    server = await make_server(hooks, read_coalesce=TICK)
    reads = count_reads(server)
    publisher = await live_publisher(server, hooks)
    before = len(reads)
    for i in range(1, 5):  # four writes, as ffmpeg makes one per message
        await publisher.send_media(1, start=33 * i)
        await asyncio.sleep(0.02)
    await wait_for(lambda: len(hooks.media) == 5)
    assert len(reads) - before == 1
    assert [m.timestamp_ms for _grant, m in hooks.media] == [0, 33, 66, 99, 132]
    assert hooks.in_task == [False] * 5  # still straight from the read callback
    await publisher.close()
    await wait_for(lambda: bool(hooks.unpublished))
    assert hooks.unpublished[0][1] == "disconnect"


async def test_without_a_tick_every_write_is_read_at_once(make_server: ServerFactory) -> None:
    hooks = RecordingHooks()
    server = await make_server(hooks)
    reads = count_reads(server)
    publisher = await live_publisher(server, hooks)
    before = len(reads)
    for i in range(1, 4):
        await publisher.send_media(1, start=33 * i)
        await wait_for(lambda n=1 + i: len(hooks.media) == n)
    assert len(reads) - before == 3
    await publisher.close()


async def test_unpublish_while_napping_keeps_order(make_server: ServerFactory) -> None:
    hooks = RecordingHooks()
    server = await make_server(hooks, read_coalesce=TICK)
    publisher = await live_publisher(server, hooks)
    client = publisher.client
    # Read at the next tick: media the read callback delivers, then an unpublish that goes to the task.
    media = b"".join(client.media("video", 100 + i, AVC_KEYFRAME) for i in range(3))
    await publisher.send(media + client.unpublish("good"))
    await wait_for(lambda: bool(hooks.unpublished), within=5)
    assert [reason for _grant, reason in hooks.unpublished] == ["unpublish"]
    assert hooks.media_at_unpublish == 4
    await publisher.close()


async def test_stop_with_a_tick_pending(make_server: ServerFactory) -> None:
    hooks = RecordingHooks()
    server = await make_server(hooks, read_coalesce=TICK)
    publisher = await live_publisher(server, hooks)
    await publisher.send_media(1, start=33)  # waits in the kernel for the tick
    assert server._nap_timer is not None
    await server.stop()
    assert server._nap_timer is None
    assert hooks.unpublished[0][1] == "shutdown"
    assert await publisher.closed_by_server()
