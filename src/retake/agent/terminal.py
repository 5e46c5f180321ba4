"""What ``retake agent …`` prints: the two consoles (progress and status on stderr, results on stdout), the
Rich reporter the go-live runtime talks to, and how an error ends a command."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from retake.agent.client import RetakeClient
from retake.agent.credentials import ENV_ACCESS_TOKEN, credentials_path, load_credentials, resolve_base_url
from retake.agent.errors import AgentError, ApiError

# soft_wrap: lines are never broken at the console width, so URLs and ids stay whole in logs and pipes.
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


class RichReporter:
    """Spinners on a terminal; plain ``…`` lines otherwise (logs, CI, a supervisor)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        if self.console.is_terminal:
            with self.console.status(escape(text) + "…"):
                yield
        else:
            self.console.print(f"… {escape(text)}")
            yield

    def info(self, text: str) -> None:
        self.console.print(f"  {escape(text)}")

    def ok(self, text: str) -> None:
        self.console.print(f"[green]✓[/green] {escape(text)}")

    def warn(self, text: str) -> None:
        self.console.print(f"[yellow]![/yellow] {escape(text)}")

    def error(self, text: str) -> None:
        self.console.print(f"[bold red]✗ {escape(text)}[/bold red]")


def fail(message: str) -> NoReturn:
    """End the command with ``error: …`` on stderr and exit status 1."""
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(1)


@contextmanager
def reported_errors() -> Iterator[None]:
    """The SDK's exceptions as one ``error:`` line (API refusals with their status and code) and exit 1."""
    try:
        yield
    except ApiError as exc:
        fail(f"{exc.message} ({exc.status or 'socket'} {exc.code})")
    except AgentError as exc:
        fail(str(exc))


def print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


def stored_client(base_url: str | None) -> RetakeClient:
    """A client with the credentials file's token (``retake agent register`` wrote it), or ``error:`` and exit 1."""
    path = credentials_path()
    with reported_errors():
        creds = load_credentials(path)
        if creds is None:
            fail(f"no credentials at {path}: run `retake agent register` first (or set {ENV_ACCESS_TOKEN})")
        base = resolve_base_url(base_url, creds)
        return RetakeClient(base, creds.access_token, token_base_url=creds.base_url or base)
