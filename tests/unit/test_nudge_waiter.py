"""A nudge waiter cancelled at the moment it is nudged ends cancelled (store/nudges.py)."""

from __future__ import annotations

import asyncio

from retake.store.nudges import Waiter


async def test_a_cancel_that_meets_a_nudge_is_not_swallowed() -> None:
    waiter = Waiter()
    rounds = 0

    async def watch() -> None:  # as the node's watchers loop: wait, work, wait again
        nonlocal rounds
        while True:
            await waiter.wait(60)
            rounds += 1

    task = asyncio.create_task(watch())
    await asyncio.sleep(0.01)
    # The shutdown cancels the watcher in the same loop turn as a nudge arrives (an operator shutdown nudges
    # the session watchers). With asyncio.wait_for on Python 3.11 the nudge won: the cancellation was dropped
    # and the watcher waited its 60 s safety net again, holding up the shutdown.
    waiter.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    assert task in done and task.cancelled(), f"the watcher went on waiting after {rounds} round(s)"


async def test_nudged_and_timed_out_waits() -> None:
    waiter = Waiter()
    waiter.set()
    assert await waiter.wait(5) is True
    assert await waiter.wait(0.05) is False  # the flag was cleared when it woke
