"""RtmpServer(read_coalesce=...): a publishing connection is read once per tick, everything else as before."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import uvloop

from retake.ingest import RtmpServer, nap_gate
from retake.ingest.peer import Client
from tests.e2e.media_support import lavfi_publisher
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


def server_side(server: RtmpServer) -> Client:
    (client,) = server._clients.values()  # type: ignore[attr-defined]
    return client


def low_water(client: Client) -> int:
    sock = client.transport.get_extra_info("socket")
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT))


async def test_a_nap_holds_the_bytes_in_the_kernel_and_keeps_reading_on(make_server: ServerFactory) -> None:
    """The nap raises the socket's receive low-water mark instead of pausing reading (on uvloop a pause cost a
    second wake-up per tick); the tick lowers it to 1 and what waited is read in that turn."""
    hooks = RecordingHooks()
    server = await make_server(hooks, read_coalesce=TICK)
    reads = count_reads(server)
    publisher = await live_publisher(server, hooks)
    client = server_side(server)
    assert client.napping and client.gate is not None and client.gate.held
    assert low_water(client) >= 4096
    assert client.transport.is_reading()  # the socket stays in the loop
    before = len(reads)
    await publisher.send_media(2, start=33)
    await asyncio.sleep(TICK / 4)
    assert len(reads) == before and len(hooks.media) == 1  # held by the kernel, not read
    await wait_for(lambda: len(hooks.media) == 3, within=TICK * 4)
    assert len(reads) - before == 1
    assert low_water(client) >= 4096  # that read started the next nap
    await publisher.close()


async def test_more_than_the_mark_is_read_at_once(make_server: ServerFactory) -> None:
    """A burst above the mark (a fast stream) wakes the loop within the nap, and the next nap measures the
    receive buffer again."""
    hooks = RecordingHooks()
    server = await make_server(hooks, read_coalesce=5.0)  # a tick that would fail the test if waited for
    publisher = await live_publisher(server, hooks)
    client = server_side(server)
    mark = low_water(client)
    started = asyncio.get_running_loop().time()
    await publisher.send_media(mark // len(AVC_KEYFRAME) + 20, start=33)
    await wait_for(lambda: len(hooks.media) > 1, within=2.0)
    assert asyncio.get_running_loop().time() - started < 2.0
    assert client.gate is not None and client.gate._low_water == 0  # to be measured again
    await publisher.close()


async def test_without_the_option_a_nap_pauses_reading(
    make_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not Linux (or not TCP): the nap pauses reading, and the tick resumes it, with the same one read."""
    monkeypatch.setattr(nap_gate, "_SUPPORTED", False)
    hooks = RecordingHooks()
    server = await make_server(hooks, read_coalesce=TICK)
    reads = count_reads(server)
    publisher = await live_publisher(server, hooks)
    client = server_side(server)
    assert client.napping and client.gate is not None and not client.gate.held
    assert not client.transport.is_reading()
    before = len(reads)
    for i in range(1, 4):
        await publisher.send_media(1, start=33 * i)
        await asyncio.sleep(0.02)
    await wait_for(lambda: len(hooks.media) == 4, within=TICK * 4)
    assert len(reads) - before == 1
    await publisher.close()


def _voluntary_switches() -> int:
    status = Path(f"/proc/self/task/{threading.get_native_id()}/status").read_text()
    match = re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M)
    assert match is not None
    return int(match[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts wake-ups in /proc (Linux)")
def test_on_uvloop_a_real_publisher_wakes_the_loop_once_per_tick() -> None:
    """ffmpeg writes each of its ~73 messages a second on its own. On uvloop, a paused socket stays in epoll
    until it next reports it, so a nap by pause woke the loop twice per tick; the low-water mark once."""
    tick = 0.1

    async def run() -> tuple[int, int]:
        hooks = RecordingHooks()
        server = RtmpServer(hooks, "127.0.0.1", 0, read_coalesce=tick)
        await server.start()
        ffmpeg = await asyncio.create_subprocess_exec(
            *lavfi_publisher(f"rtmp://127.0.0.1:{server.port}/live/good", seconds=8, size="160x90"),
            stdin=subprocess.DEVNULL,
        )
        try:
            await wait_for(lambda: len(hooks.media) > 30, within=15)
            await asyncio.sleep(0.5)
            media, switches = len(hooks.media), _voluntary_switches()
            await asyncio.sleep(2.0)
            return len(hooks.media) - media, _voluntary_switches() - switches
        finally:
            ffmpeg.kill()
            await ffmpeg.wait()
            await server.stop()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        messages, wakeups = runner.run(run())
    ticks = 2.0 / tick
    assert messages > 100  # ffmpeg was sending (~73 a second)
    assert wakeups <= ticks * 1.4, f"{wakeups} wake-ups in {ticks:.0f} ticks for {messages} messages"


async def test_a_connection_closed_during_its_nap_is_left_alone_at_the_tick(make_server: ServerFactory) -> None:
    """The tick must not touch the socket of a connection that closed meanwhile (uvloop's socket object of a
    closed transport raised ValueError from the timer callback: a traceback in the log, found by a CI run)."""
    hooks = RecordingHooks()
    server = await make_server(hooks, read_coalesce=TICK)
    publisher = await live_publisher(server, hooks)
    client = server_side(server)
    assert client.napping and client.gate is not None and client.gate.held
    client.transport.close()
    server._wake_nappers()  # type: ignore[attr-defined]  # the tick, now
    assert client.gate.held  # nothing was done to the closed socket
    client.gate.release()  # and a release on it anyway is quiet
    assert not client.gate.held
    await publisher.close()


def test_the_gate_of_a_closed_uvloop_transport_is_quiet() -> None:
    """uvloop's socket object of a closed transport raises ValueError (fd -1), not OSError: hold says no."""

    async def run() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, _protocol = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        gate = nap_gate.NapGate(transport)
        assert gate.hold()
        transport.close()
        await asyncio.sleep(0.05)  # the close completes: the transport has no descriptor any more
        gate.release()
        assert not gate.hold()  # falls back to pausing (which a closing transport ignores)
        server.close()
        await server.wait_closed()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run())
