"""Runs the ASGI app under uvicorn with the RTMP listener on the same event loop."""

from __future__ import annotations

import logging

import uvicorn
from rich.console import Console
from rich.panel import Panel

from retake import __version__
from retake.config import Settings
from retake.server.app import create_app


def run(settings: Settings, console: Console) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings)
    db = "PostgreSQL" if settings.effective_database_url.startswith("postgresql") else "SQLite"
    console.print(
        Panel.fit(
            f"[bold]retake {__version__}[/bold]\n"
            f"web   {settings.public_url}/\n"
            f"API   {settings.api_base}  (docs: {settings.public_url}/docs)\n"
            f"RTMP  {settings.rtmp_url}/<stream key>\n"
            f"data  {settings.data_dir.resolve()}  ({db})",
            title="serving",
        )
    )
    # uvicorn installs SIGINT/SIGTERM handlers and runs the lifespan shutdown: a graceful stop.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
