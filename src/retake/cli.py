"""``retake`` command line: ``serve`` and ``admin …``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from retake.agent.cli import agent_app
from retake.config import Settings

app = typer.Typer(help="retake: livestreaming for AI agents.", no_args_is_help=True, add_completion=False)
admin = typer.Typer(help="Operator commands that act on the store directly.", no_args_is_help=True)
app.add_typer(admin, name="admin")
app.add_typer(agent_app, name="agent")
console = Console(stderr=True)
T = TypeVar("T")


def _settings(**overrides: Any) -> Settings:
    # Only flags given on the command line override the RETAKE_* environment.
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _run_or_exit(work: Coroutine[Any, Any, T]) -> T:
    """Run one command's store work; a refusal by a service is printed and ends the command with status 1."""
    from retake.errors import RetakeError

    try:
        return asyncio.run(work)
    except RetakeError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc


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
    enable_airdrop: Annotated[
        bool | None,
        typer.Option("--enable-airdrop", help="allow POST /api/v1/wallet/airdrop test SOL (env RETAKE_ENABLE_AIRDROP)"),
    ] = None,
    demo: Annotated[
        bool | None,
        typer.Option("--demo", help="also run a demo agent that streams a test picture and chats (env RETAKE_DEMO)"),
    ] = None,
    workers: Annotated[
        str | None,
        typer.Option(
            "--workers",
            help="worker processes sharing the HTTP and RTMP ports, or 'auto' (one per core); more than 1 needs "
            "PostgreSQL and Redis (env RETAKE_WORKERS, 1)",
        ),
    ] = None,
    worker_port_base: Annotated[
        int | None,
        typer.Option(
            "--worker-port-base", help="worker i's own HTTP port is this + i (env RETAKE_WORKER_PORT_BASE, port + 1)"
        ),
    ] = None,
) -> None:
    """Run the platform: API, Socket.IO, pages, playback and the RTMP listener in one process (or in several:
    --workers)."""
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
        enable_airdrop=enable_airdrop,
        demo=demo,
        workers=workers,
        worker_port_base=worker_port_base,
    )
    if settings.worker_index is None and settings.worker_count > 1:
        from retake.server.supervisor import supervise  # before the app is imported: the workers import it

        raise typer.Exit(supervise(settings, console))
    from retake.server.runner import run

    run(settings, console)


@admin.command("migrate")
def admin_migrate(data_dir: DataDirOpt = None, database_url: DbOpt = None) -> None:
    """Bring the database schema to the newest revision, then exit. Nodes also migrate at start (one at a time,
    under a database-wide lock); run this before a rollout to have the schema ready before any node starts."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from retake.server import admin as store_only

    settings = _settings(data_dir=data_dir, database_url=database_url)
    where = make_url(settings.effective_database_url).render_as_string(hide_password=True)
    with console.status(f"migrating {where}…"):
        try:
            done = asyncio.run(store_only.migrate_only(settings))
        except (OSError, SQLAlchemyError) as exc:
            console.print(f"[red]error:[/red] cannot migrate {where}: {exc}")
            raise typer.Exit(1) from exc
    if done.before == done.after:
        console.print(f"[green]✓[/green] {where} is current (revision {done.after})", soft_wrap=True)
    else:
        console.print(
            f"[green]✓[/green] {where} migrated from {done.before or 'an empty database'} to {done.after}",
            soft_wrap=True,
        )
    typer.echo(done.after)


@admin.command("verify")
def admin_verify(
    agent_name: Annotated[str, typer.Argument(help="the agent's name (any case)")],
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Mark an agent as verified without a tweet (for self-hosting without X access)."""
    from retake.server import admin as store_only
    from retake.server.console.actions import CLI

    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def go() -> tuple[str, bool]:
        async with store_only.store(settings) as sessions:
            before = await store_only.verified_before(sessions, agent_name)
            verified = await store_only.actions(settings, sessions).verify(CLI, agent_name)
            if before is False:  # newly verified: the agent's webhook hears of it (verification.completed)
                await store_only.announce_verified(settings, sessions, verified.agent_id)
            return verified.agent_id, verified.verified

    with console.status(f"verifying {agent_name}…"):
        agent_id, _ok = _run_or_exit(go())
    console.print(f"[green]✓[/green] {agent_name} ({agent_id}) is verified")


@admin.command("rotate-jwt-key")
def admin_rotate_jwt_key(data_dir: DataDirOpt = None) -> None:
    """Add a new JWT signing key to <data-dir>/keys/. Running servers sign with it at once; tokens signed by
    older keys keep working until you delete those key files (wait for the token lifetime, 7 days by default)."""
    from retake.identity.jwt_keys import JwtKeyRing

    ring = JwtKeyRing(_settings(data_dir=data_dir).data_dir / "keys")
    older = ring.kids()
    kid = ring.rotate()
    typer.echo(kid)
    console.print(f"[green]✓[/green] new signing key {kid} in {ring.folder}")
    for old in older:
        console.print(f"  still verifying: {old} (remove {ring.folder / f'jwt-{old}.pem'} to retire it)")


@admin.command("warn")
def admin_warn(
    agent_name: Annotated[str, typer.Argument(help="the agent's name (any case)")],
    reason: Annotated[str, typer.Argument(help="what the agent is warned about (shown to it and its viewers)")],
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Warn an agent: a system message in its chat and an entry in the `warnings` of its stream status."""
    from retake.server import admin as store_only
    from retake.server.console.actions import CLI

    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def go() -> int:
        async with store_only.store(settings) as sessions:
            return (await store_only.actions(settings, sessions).warn(CLI, agent_name, reason)).id

    action_id = _run_or_exit(go())
    console.print(f"[green]✓[/green] {agent_name} warned (action {action_id}); running servers announce it in chat")


@admin.command("shutdown")
def admin_shutdown(
    agent_name: Annotated[str, typer.Argument(help="the agent's name (any case)")],
    reason: Annotated[str, typer.Option("--reason", help="shown to the agent and its viewers")] = "",
    wait: Annotated[float, typer.Option("--wait", help="seconds to wait for a running server to act")] = 8.0,
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
) -> None:
    """End an agent's open session: a running server closes its publisher and revokes its stream keys."""
    from retake.server import admin as store_only
    from retake.server.console.actions import CLI

    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def go() -> tuple[str | None, bool]:
        async with store_only.store(settings) as sessions:
            acts = store_only.actions(settings, sessions)
            action = await acts.shutdown(CLI, agent_name, reason)
            operator = acts.desk
            if await operator.wait_noticed(action.id, wait):
                return action.session_id, True
            # No server claimed it (none is running): end the session in the store from here.
            return action.session_id, not await operator.apply_unnoticed(action)

    with console.status(f"shutting down {agent_name}'s stream…"):
        session_id, by_server = _run_or_exit(go())
    where = "by the running server" if by_server else "in the store (no running server noticed it)"
    console.print(f"[green]✓[/green] session {session_id} of {agent_name} ended {where}")


@admin.command("create-operator")
def admin_create_operator(
    name: Annotated[str, typer.Argument(help="the operator's name (1-32 letters, digits, '_', '-' or '.')")],
    role: Annotated[str, typer.Option("--role", help="admin (everything) or moderator (warn, delete, jail)")] = "admin",
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Create an operator of the console at /admin; its sign-in token is printed once (only a digest is kept)."""
    from retake.accounts.operators import OperatorAccounts
    from retake.server import admin as store_only

    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def go() -> str:
        async with store_only.store(settings) as sessions:
            return (await OperatorAccounts(sessions).create(name, role)).token

    token = _run_or_exit(go())
    console.print(f"[green]✓[/green] operator {name} ({role}) created; sign in at {settings.public_url}/admin with:")
    typer.echo(token)
    console.print("  the token is shown only this once: keep it somewhere safe")


def main() -> None:  # pragma: no cover - console entry point
    logging.basicConfig(level=logging.INFO)
    app()
