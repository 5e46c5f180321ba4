"""Our own chat during a stream (the skill's chat loop): read new comments, hand viewer messages and tips to the
handler, post its answers, and speak up when chat has been silent too long.

New comments arrive by push (``chat.message`` on the agent socket, :class:`retake.agent.events.AgentSocket`)
when the platform offers it, or by polling at the skill's pace. While the socket is down (python-socketio
reconnecting) the desk polls, and after a reconnect it polls once to catch up: events sent while it was away
are not replayed. Either way comments are handled once, in id order, after the last one seen."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from retake.agent.async_client import AsyncRetakeClient
from retake.agent.errors import AgentError, RateLimited
from retake.agent.events import AgentSocket
from retake.agent.handlers import Handler, HandlerError, ask
from retake.agent.notify import Notifier
from retake.agent.options import GoLiveOptions
from retake.agent.policy import (
    CHAT_TYPES,
    ChatPacer,
    newer_than,
    newest_id,
    sender_id,
    sender_name,
    tip_amount_sol,
)
from retake.agent.report import Reporter
from retake.agent.types import Comment

COMMENT_MILESTONES = (10, 50, 100, 500, 1000)
MAX_MESSAGE = 500


def split_message(text: str, limit: int = MAX_MESSAGE, parts: int = 3) -> list[str]:
    """Chat takes 1-500 characters per message: long answers go out in up to ``parts`` pieces."""
    text = text.strip()
    chunks: list[str] = []
    while text and len(chunks) < parts:
        if len(text) <= limit:
            chunks.append(text)
            break
        cut = text.rfind(" ", 0, limit)
        cut = cut if cut > limit // 2 else limit
        chunks.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return chunks


class ChatDesk:
    def __init__(
        self,
        client: AsyncRetakeClient,
        *,
        user_id: str,
        agent_name: str,
        options: GoLiveOptions,
        handler: Handler | None,
        notifier: Notifier,
        report: Reporter,
        show: Callable[[str], None],
        context: Callable[[], dict[str, Any]],
    ) -> None:
        self.client = client
        self.user_id = user_id
        self.agent_name = agent_name
        self.options = options
        self.handler = handler
        self.notifier = notifier
        self.report = report
        self._show = show  # a line on stream
        self._context = context  # agent and stream facts for the handler
        self.last_comment_id: str | None = None
        self.last_chat_at = time.monotonic()
        self.recent: deque[dict[str, Any]] = deque(maxlen=20)
        self.comments_handled = 0
        self.replies_sent = 0
        self._proactive_index = 0
        self._failing = False

    async def prime(self) -> None:
        """Start after what is already in chat: history is not answered again."""
        page = await self.client.comments(self.user_id, limit=50)
        self.last_comment_id = newest_id(page["comments"])

    async def say(self, text: str) -> None:
        """Post to our own chat (split past the platform's 500 characters) and show it on screen."""
        for chunk in split_message(text):
            try:
                await self.client.chat_send(chunk, self.user_id)
            except RateLimited as exc:
                await asyncio.sleep(min(exc.retry_after or 2.0, 10.0))
                await self.client.chat_send(chunk, self.user_id)
        self.replies_sent += 1
        self.last_chat_at = time.monotonic()
        self.recent.append({"from": self.agent_name, "text": text, "own": True})
        self._show(f"{self.agent_name}: {text}")

    async def run(self, socket: AgentSocket | None = None) -> None:
        """Until cancelled: by push over ``socket`` if given, else by polling."""
        if socket is not None:
            await self._run_push(socket)
            return
        o = self.options
        pacer = ChatPacer(o.chat_interval, o.chat_busy_interval, o.chat_quiet_interval, o.chat_quiet_after)
        interval = o.chat_interval
        while True:
            await asyncio.sleep(interval)
            had_messages = False
            try:
                had_messages = await self.poll()
                if time.monotonic() - self.last_chat_at >= o.silence_after:
                    await self.break_silence()
            except Exception as exc:  # a surprising answer must not take a live stream down
                self.report.warn(f"chat loop: {exc!r}")
            interval = pacer.next_interval(time.monotonic(), had_messages)

    async def _run_push(self, socket: AgentSocket) -> None:
        o = self.options
        caught_up = socket.reconnects
        while True:
            try:
                if not socket.connected:  # reconnecting: poll meanwhile, so chat is still answered
                    await asyncio.sleep(o.chat_interval)
                    await self.poll()
                elif socket.reconnects != caught_up:
                    caught_up = socket.reconnects
                    await self.poll()
                else:
                    silent_for = time.monotonic() - self.last_chat_at
                    event = await socket.next(max(0.5, min(o.chat_interval, o.silence_after - silent_for)))
                    if event is not None:
                        await self.on_event(event)
                if time.monotonic() - self.last_chat_at >= o.silence_after:
                    await self.break_silence()
            except Exception as exc:  # a surprising event must not take a live stream down
                self.report.warn(f"chat loop: {exc!r}")

    async def on_event(self, event: dict[str, Any]) -> None:
        """One pushed event: a ``chat.message`` in our own room is handled as a polled comment would be (a
        mention elsewhere is not our chat); other types are read from stream status by the monitor."""
        data = event.get("data")
        if event.get("type") != "chat.message" or not isinstance(data, dict):
            return
        if str(data.get("streamer_id") or data.get("streamId") or "") != self.user_id:
            return
        await self._handle(newer_than([data], self.last_comment_id))  # type: ignore[list-item]

    async def poll(self) -> bool:
        """Handle the comments newer than the last one seen; True when a viewer wrote."""
        try:
            page = await self.client.comments(self.user_id, limit=50)
        except RateLimited as exc:
            await asyncio.sleep(min(exc.retry_after or 5.0, 30.0))
            return False
        except AgentError as exc:
            if not self._failing:
                self.report.warn(f"reading comments failed: {exc}")
            self._failing = True
            return False
        self._failing = False
        return await self._handle(newer_than(page["comments"], self.last_comment_id))

    async def _handle(self, fresh: list[Comment]) -> bool:
        self.last_comment_id = newest_id(fresh, self.last_comment_id)
        had_messages = False
        for comment in fresh:
            self.last_chat_at = time.monotonic()
            if sender_id(comment) == self.user_id or comment.get("type", "message") not in CHAT_TYPES:
                continue
            had_messages = True
            await self._on_comment(comment)
        return had_messages

    async def _on_comment(self, comment: Comment) -> None:
        self.comments_handled += 1
        name, text = sender_name(comment), str(comment.get("text") or "")
        self.recent.append({"from": name, "text": text, "own": False})
        self._show(f"{name}: {text}")
        amount = tip_amount_sol(comment)
        if amount is not None and amount >= self.options.large_tip_sol:
            self.notifier.emit("large_tip", f"{name} tipped {amount:g} SOL: {text}", sender=name, amount_sol=amount)
        if self.comments_handled in COMMENT_MILESTONES:
            self.notifier.emit(
                "milestone",
                f"{self.comments_handled} chat messages this stream",
                kind="comments",
                value=self.comments_handled,
            )
        if self.handler is None:
            return
        event = {"type": "comment", "comment": dict(comment), "from": name, "text": text, **self._context()}
        reply = await self._ask(event)
        if reply:
            await self._say_safely(reply)

    async def break_silence(self) -> None:
        silent = int(time.monotonic() - self.last_chat_at)
        self.last_chat_at = time.monotonic()  # one line per silence, even if sending fails
        reply = None
        if self.handler is not None:
            reply = await self._ask({"type": "silence", "silent_seconds": silent, **self._context()})
        if not reply and self.options.proactive_messages:
            lines = self.options.proactive_messages
            reply = lines[self._proactive_index % len(lines)]
            self._proactive_index += 1
        if reply:
            await self._say_safely(reply)

    async def _ask(self, event: dict[str, Any]) -> str | None:
        assert self.handler is not None
        try:
            return await ask(self.handler, event, self.options.handler_timeout)
        except HandlerError as exc:
            self.report.warn(str(exc))
            return None

    async def _say_safely(self, text: str) -> None:
        try:
            await self.say(text)
        except AgentError as exc:
            self.report.warn(f"could not send to chat: {exc}")
