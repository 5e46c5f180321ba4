"""Issue 12 item 4 (RTMP part): chunk size 1 before authentication made one connection's parse hold the
event loop 1.8 s (four connections: 3.8 s). Parsing must yield to the loop every ~millisecond of work."""

from __future__ import annotations

import asyncio
import time

from tests.ingest.conftest import ServerFactory
from tests.ingest.support import FakeHooks
from tests.security.rtmp_support import flood_process

SECONDS = 3.0


async def _max_lag(until: float, interval: float = 0.005) -> tuple[float, float]:
    """(wall-clock lag, CPU lag): how late a 5 ms sleep wakes up at worst, and the most CPU time the loop's
    thread spent between two wake-ups. The second is what this test asserts: on a loaded machine (this one
    has 2 cores shared by many processes) the wall-clock lag also counts time the process was not scheduled."""
    loop = asyncio.get_running_loop()
    wall = cpu = 0.0
    while loop.time() < until:
        before, cpu_before = loop.time(), time.thread_time()
        await asyncio.sleep(interval)
        wall = max(wall, loop.time() - before - interval)
        cpu = max(cpu, time.thread_time() - cpu_before)
    return wall, cpu


async def test_chunk_size_one_before_connect_does_not_stall_the_loop(make_server: ServerFactory) -> None:
    server = await make_server(FakeHooks())
    loop = asyncio.get_running_loop()
    # The senders run in a child process: the client side takes nothing from this loop.
    flood = await asyncio.to_thread(flood_process, server.port, SECONDS + 1)
    try:
        started = time.monotonic()
        wall, lag = await _max_lag(loop.time() + SECONDS)
        parsed = sum(client.conn.bytes_received for client in server._clients.values())
    finally:
        flood.kill()
        flood.wait()
    print(
        f"max loop lag {lag * 1000:.1f} ms CPU ({wall * 1000:.1f} ms wall) over {time.monotonic() - started:.1f} s,"
        f" {parsed / 1e6:.1f} MB parsed"
    )
    assert parsed > 1_000_000, "the flood did not reach the server"
    assert lag < 0.050, f"event loop stalled {lag * 1000:.0f} ms"
