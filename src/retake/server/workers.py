"""A bounded pool of worker threads for CPU-heavy work of a request (image decoding and re-encoding).

Run on the event loop, one guest re-encoding a 40-megapixel PNG avatar in a loop took ``/health`` p50 from
0.04 s to 0.66 s and stalled live FLV viewers. Pillow releases the GIL while it decodes and encodes, so threads
keep the loop free. The pool is bounded twice: ``workers`` threads, and at most ``queue`` jobs waiting for one;
a job beyond that is refused at once with 503 ``overloaded`` rather than queued without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from retake.config import Settings
from retake.errors import RetakeError
from retake.images import reencode
from retake.server.overload import RETRY_AFTER_SECONDS

T = TypeVar("T")


class PoolFull(RetakeError):
    status = 503
    code = "overloaded"

    def __init__(self) -> None:
        super().__init__(
            "the server is busy with other uploads; retry after the time in Retry-After",
            code="overloaded",
            retry_after=RETRY_AFTER_SECONDS,
        )


class CpuPool:
    def __init__(self, workers: int, queue: int, name: str = "retake-cpu") -> None:
        self.workers = workers
        self.capacity = workers + queue  # running plus waiting
        self.pending = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name, initializer=_lower_priority)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        if self.pending >= self.capacity:
            raise PoolFull
        self.pending += 1  # only touched on the loop thread
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self.pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


WORKER_NICENESS = 10


def _lower_priority() -> None:
    """Releasing the GIL is not enough on a busy machine: a worker at full CPU still competes with the event
    loop's thread for a core. On Linux each thread has its own nice value, so workers yield the CPU to the loop
    (and to RTMP ingest) whenever both want it, and use it fully otherwise."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)


_pools: dict[tuple[int, int], CpuPool] = {}
_lock = threading.Lock()


def image_pool(workers: int, queue: int) -> CpuPool:
    """The process's pool for these limits, made on first use (uploads are rare; idle threads cost nothing)."""
    with _lock:
        pool = _pools.get((workers, queue))
        if pool is None:
            pool = _pools[(workers, queue)] = CpuPool(workers, queue, name="retake-image")
        return pool


async def reencode_upload(settings: Settings, data: bytes) -> tuple[bytes, str]:
    """``images.reencode`` of an upload, in the image pool, with the limits of ``settings``."""
    pool = image_pool(settings.image_workers, settings.image_queue)
    return await pool.run(reencode, data, settings.max_thumbnail_bytes, settings.max_image_pixels)
