"""Keeping the operator in the loop (the skill's "notify your human builder"): every notable event of a
running stream goes, as one JSON object, to ``--notify CMD`` (on its standard input) and/or ``--notify-url``
(POSTed), in order, one at a time, each bounded by a timeout so a stuck receiver cannot stall the stream.

Event names: ``live``, ``viewers_falling``, ``milestone``, ``large_tip``, ``encoder_crashed``,
``encoder_recovered``, ``encoder_failed``, ``display_crashed``, ``shutdown_warning`` (urgent: an operator warning or
shutdown), ``stream_warning`` (stream health, a disabled webhook), ``session_ended``
(urgent when the platform ended it), ``skill_changed``, ``stopped``. The access token is never part of an
event, never in the notifier's environment, and never sent to ``--notify-url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from retake.agent.processes import child_env

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    event: str
    message: str
    urgent: bool = False
    data: dict[str, Any] = field(default_factory=dict)
    time: str = field(default_factory=lambda: _now())

    def to_json(self, agent: str, watch_url: str) -> dict[str, Any]:
        return {
            "event": self.event,
            "urgent": self.urgent,
            "message": self.message,
            "agent": agent,
            "watch_url": watch_url,
            "time": self.time,
            **self.data,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Notifier:
    def __init__(
        self,
        *,
        command: list[str] | None = None,
        url: str | None = None,
        agent: str = "",
        watch_url: str = "",
        on_notice: Callable[[Notice], None] | None = None,
        on_failure: Callable[[str], None] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.command = command
        self.url = url
        self.agent = agent
        self.watch_url = watch_url
        self.sent: list[dict[str, Any]] = []  # every event, in order (for the runtime's summary and tests)
        self._on_notice = on_notice
        self._on_failure = on_failure
        self._timeout = timeout
        self._queue: asyncio.Queue[Notice | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None

    def emit(self, event: str, message: str, *, urgent: bool = False, **data: Any) -> Notice:
        notice = Notice(event, message, urgent, data)
        self.sent.append(notice.to_json(self.agent, self.watch_url))
        if self._on_notice:
            self._on_notice(notice)
        if self.command or self.url:
            if self._worker is None:
                self._worker = asyncio.get_running_loop().create_task(self._run(), name="notifier")
            self._queue.put_nowait(notice)
        return notice

    async def aclose(self, grace: float = 10.0) -> None:
        """Deliver what is queued (within ``grace`` seconds), then stop."""
        if self._worker is not None:
            self._queue.put_nowait(None)
            try:
                await asyncio.wait_for(asyncio.shield(self._worker), grace)
            except TimeoutError:
                self._worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._worker
        if self._http is not None:
            await self._http.aclose()

    async def _run(self) -> None:
        while (notice := await self._queue.get()) is not None:
            body = json.dumps(notice.to_json(self.agent, self.watch_url)).encode()
            if self.command:
                await self._deliver_command(self.command, body)
            if self.url:
                await self._deliver_url(self.url, body)

    async def _deliver_command(self, argv: list[str], body: bytes) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                env=child_env(),
                start_new_session=True,
            )
        except OSError as exc:
            self._fail(f"notify command {argv[0]} could not start: {exc.strerror}")
            return
        try:
            await asyncio.wait_for(proc.communicate(body + b"\n"), self._timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            self._fail(f"notify command {argv[0]} took longer than {self._timeout:.0f} s and was stopped")
            return
        if proc.returncode:
            self._fail(f"notify command {argv[0]} exited with {proc.returncode}")

    async def _deliver_url(self, url: str, body: bytes) -> None:
        if self._http is None:
            # A client of its own: never the API client, so the access token cannot travel with it.
            self._http = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        try:
            response = await self._http.post(url, content=body, headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            self._fail(f"notify URL failed: {exc!r}")
            return
        if response.status_code >= 300:
            self._fail(f"notify URL answered {response.status_code}")

    def _fail(self, message: str) -> None:
        log.warning("%s", message)
        if self._on_failure:
            self._on_failure(message)
