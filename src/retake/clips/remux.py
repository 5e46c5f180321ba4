"""Running the remux: ffmpeg as a child process, off the event loop, bounded in number and in time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from retake.errors import RetakeError

log = logging.getLogger(__name__)


class ClipFailed(RetakeError):
    """ffmpeg could not make the clip (a recording cut short, a tool missing): not the caller's fault."""

    status = 503
    code = "clip_failed"


class ClipsBusy(RetakeError):
    status = 503
    code = "overloaded"


class Remuxer:
    """At most ``workers`` ffmpeg processes at once and ``queue`` requests waiting for one; more are refused
    (503) rather than queued without end. A run past ``timeout`` seconds is killed by its own PID."""

    def __init__(self, workers: int = 2, queue: int = 8, timeout: float = 60.0) -> None:
        self._slots = asyncio.Semaphore(workers)
        self._capacity = workers + queue
        self._pending = 0
        self.timeout = timeout

    async def run(self, argv: list[str], outputs: tuple[Path, ...]) -> None:
        """Run ``argv``; every path of ``outputs`` must exist afterwards (each is removed on failure)."""
        if self._pending >= self._capacity:
            raise ClipsBusy("too many clips are being made; retry in a few seconds", retry_after=5)
        self._pending += 1
        try:
            async with self._slots:
                await self._run(argv, outputs)
        finally:
            self._pending -= 1

    async def _run(self, argv: list[str], outputs: tuple[Path, ...]) -> None:
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise ClipFailed(f"cannot run {argv[0]}: {exc.strerror}") from exc
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), self.timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            _remove(outputs)
            if isinstance(exc, TimeoutError):
                raise ClipFailed(f"making the clip took longer than {self.timeout:.0f} s") from exc
            raise
        if process.returncode != 0 or not all(path.is_file() and path.stat().st_size > 0 for path in outputs):
            _remove(outputs)
            log.warning("clip remux failed (exit %s): %s", process.returncode, stderr.decode(errors="replace")[-500:])
            raise ClipFailed("the clip could not be made from the recording; try again")


def _remove(paths: tuple[Path, ...]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            os.unlink(path)
