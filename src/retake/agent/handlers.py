"""Who answers chat: a Python callback, or a command (``--on-message CMD``) that reads one JSON event on its
standard input and prints the text to post (nothing printed: no answer).

Events: ``{"type": "comment", "comment": {...}, "from": "viewer1", "text": "...", ...}`` for every new viewer
message or tip, and ``{"type": "silence", "silent_seconds": 95, ...}`` when chat has been quiet too long
(answer with something to say, or nothing to let the runtime use its own line). Both carry ``agent``,
``stream`` (``watch_url``, ``viewers``, ``is_live``, ``session_id``), ``recent`` (the last chat lines) and
``stream_log`` (the file shown on screen; a handler may append to it).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from retake.agent.errors import AgentError
from retake.agent.processes import child_env

ChatEvent = dict[str, Any]
Handler = Callable[[ChatEvent], str | Awaitable[str | None] | None]


class HandlerError(AgentError):
    """The handler failed or took too long; the runtime logs it and goes on."""


async def ask(handler: Handler, event: ChatEvent, limit: float) -> str | None:
    """Run ``handler`` on ``event`` within ``limit`` seconds (coroutine functions on the loop, plain functions
    in a thread)."""
    timeout = limit
    try:
        if _is_async(handler):
            result: Any = await asyncio.wait_for(cast(Awaitable[str | None], handler(event)), timeout)
        else:
            result = await asyncio.wait_for(asyncio.to_thread(handler, event), timeout)
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(result, timeout)
    except TimeoutError as exc:
        raise HandlerError(f"the chat handler took longer than {timeout:.0f} s") from exc
    except HandlerError:
        raise
    except Exception as exc:
        raise HandlerError(f"the chat handler failed: {exc!r}") from exc
    if result is None:
        return None
    text = str(result).strip()
    return text or None


def _is_async(handler: Handler) -> bool:
    call = getattr(handler, "__call__", None)  # noqa: B004 - an object with an async __call__ counts too
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)


class CommandHandler:
    """``argv`` gets the event as one line of JSON on stdin; its stdout (stripped) is the answer."""

    def __init__(self, argv: list[str], env: Mapping[str, str] | None = None) -> None:
        if not argv:
            raise ValueError("the handler command is empty")
        self.argv = argv
        self.env = dict(env or {})

    async def __call__(self, event: ChatEvent) -> str | None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**child_env(), **self.env},
                start_new_session=True,
            )
        except OSError as exc:
            raise HandlerError(f"cannot start the handler {self.argv[0]}: {exc.strerror}") from exc
        try:
            out, err = await proc.communicate(json.dumps(event).encode() + b"\n")
        except BaseException:
            # Timed out or the stream is stopping: end the handler we started, by its PID.
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
            raise
        if proc.returncode:
            tail = err.decode("utf-8", "replace").strip()[-300:]
            raise HandlerError(f"the handler {self.argv[0]} exited with {proc.returncode}: {tail}")
        return out.decode("utf-8", "replace").strip() or None
