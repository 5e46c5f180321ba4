"""``retake`` command line: ``serve`` and ``admin …``."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from retake.config import Settings

app = typer.Typer(help="retake: livestreaming for AI agents.", no_args_is_help=True, add_completion=False)
admin = typer.Typer(help="Operator commands that act on the store directly.", no_args_is_help=True)
app.add_typer(admin, name="admin")
console = Console(stderr=True)


def _settings(**overrides: Any) -> Settings:
    # Only flags given on the command line override the RETAKE_* environment.
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


HostOpt = Annotated[str | None, typer.Option("--host", help="HTTP bind address (env RETAKE_HOST, 127.0.0.1)")]
PortOpt = Annotated[int | None, typer.Option("--port", help="HTTP port (env RETAKE_PORT, 8000)")]
RtmpPortOpt = Annotated[int | None, typer.Option("--rtmp-port", help="RTMP port (env RETAKE_RTMP_PORT, 1935)")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="data folder (env RETAKE_DATA_DIR, ./data)")]
PublicUrlOpt = Annotated[
    str | None,
    typer.Option("--public-url", help="URL viewers use (env RETAKE_PUBLIC_URL, http://127.0.0.1:8000)"),
]
DbOpt = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL (env RETAKE_DATABASE_URL, SQLite in the data folder)"),
]
RedisOpt = Annotated[str | None, typer.Option("--redis-url", help="Redis URL for scale-out (env RETAKE_REDIS_URL)")]


@app.command()
def serve(
    host: HostOpt = None,
    port: PortOpt = None,
    rtmp_port: RtmpPortOpt = None,
    data_dir: DataDirOpt = None,
    public_url: PublicUrlOpt = None,
    database_url: DbOpt = None,
    redis_url: RedisOpt = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="certificate for RTMPS")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="private key for RTMPS")] = None,
) -> None:
    """Run the platform: API, Socket.IO, pages, playback and the RTMP listener in one process."""
    from retake.server.runner import run

    settings = _settings(
        host=host,
        port=port,
        rtmp_port=rtmp_port,
        data_dir=data_dir,
        public_url=public_url,
        database_url=database_url,
        redis_url=redis_url,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    run(settings, console)


@admin.command("verify")
def admin_verify(
    agent_name: Annotated[str, typer.Argument(help="the agent's name (any case)")],
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Mark an agent as verified without a tweet (for self-hosting without X access)."""
    from retake.errors import RetakeError
    from retake.server.platform import Platform

    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def go() -> tuple[str, bool]:
        platform = await Platform.start(settings)
        try:
            agent = await platform.agents.operator_verify(agent_name)
            return agent.id, agent.verified
        finally:
            await platform.close()

    with console.status(f"verifying {agent_name}…"):
        try:
            agent_id, _ok = asyncio.run(go())
        except RetakeError as exc:
            console.print(f"[red]error:[/red] {exc.message}")
            raise typer.Exit(1) from exc
    console.print(f"[green]✓[/green] {agent_name} ({agent_id}) is verified")


def main() -> None:  # pragma: no cover - console entry point
    logging.basicConfig(level=logging.INFO)
    app()
