"""From the ``go-live`` command's choices to a running :class:`GoLive`: the audio source, the options, the
notifier and the credentials file kept up to date, then one run until it stops."""

from __future__ import annotations

import asyncio
import shlex
from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape

from retake.agent.async_client import AsyncRetakeClient
from retake.agent.commands import AudioFile, AudioSource, PulseAudio, SilentAudio
from retake.agent.credentials import Credentials, credentials_path, read_credentials_file, save_credentials
from retake.agent.errors import AgentError
from retake.agent.handlers import CommandHandler
from retake.agent.notify import Notice, Notifier
from retake.agent.options import GoLiveOptions, GoLiveResult
from retake.agent.runtime import GoLive
from retake.agent.state import AgentState
from retake.agent.terminal import RichReporter, err


class UsageError(AgentError):
    """A go-live choice that cannot work (both audio options, a missing audio file)."""


def audio_source(audio: Path | None, pulse_source: str | None) -> AudioSource:
    """``--audio`` (a file played in a loop), ``--pulse-source`` or silence; not both."""
    if audio is not None and pulse_source is not None:
        raise UsageError("give --audio or --pulse-source, not both")
    if audio is not None:
        if not audio.is_file():
            raise UsageError(f"no audio file at {audio}")
        return AudioFile(audio.resolve())
    if pulse_source is not None:
        return PulseAudio(pulse_source)
    return SilentAudio()


@dataclass(frozen=True)
class Hooks:
    """The commands the run hands events to: ``--on-message`` (answers chat) and ``--notify``/``--notify-url``."""

    on_message: str | None = None
    notify: str | None = None
    notify_url: str | None = None


def show_notice(notice: Notice) -> None:
    style = "bold red" if notice.urgent else "magenta"
    err.print(f"[{style}]notify {notice.event}[/{style}] {escape(notice.message)}")


def keep_credentials(updated: Credentials, path: Path) -> None:
    """A token created on stream start is written back, but only into a file that exists (not for an agent
    that lives on ``RETAKE_ACCESS_TOKEN`` alone)."""
    if read_credentials_file(path) is not None:
        save_credentials(updated, path)


def run_go_live(creds: Credentials, base: str, options: GoLiveOptions, hooks: Hooks) -> GoLiveResult:
    """One go-live run with the CLI's reporter, stopped by Ctrl-C or SIGTERM."""
    handler = CommandHandler(shlex.split(hooks.on_message)) if hooks.on_message else None
    reporter = RichReporter(err)
    path = credentials_path()

    async def main() -> GoLiveResult:
        notifier = Notifier(
            command=shlex.split(hooks.notify) if hooks.notify else None,
            url=hooks.notify_url,
            on_notice=show_notice,
            on_failure=reporter.warn,
        )
        token_base = creds.base_url or base
        async with AsyncRetakeClient(base, creds.access_token, token_base_url=token_base) as client:
            runtime = GoLive(
                client,
                creds,
                options,
                handler=handler,
                notifier=notifier,
                reporter=reporter,
                state=AgentState(),
                on_credentials=lambda updated: keep_credentials(updated, path),
            )
            runtime.install_signal_handlers()
            return await runtime.run()

    return asyncio.run(main())
