"""``retake agent restream add|list|remove``: push the live stream to other platforms too.

Kept apart from ``cli.py`` (which registers it with one ``add_typer`` line). The key is read from ``--key``,
else from ``RETAKE_RESTREAM_KEY``, else prompted without echo, so it need not land in the shell history.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from retake.agent.terminal import out, print_json, reported_errors, stored_client
from retake.agent.webhook_cli import BaseUrlOpt, JsonOpt

restream_app = typer.Typer(help="Push your live stream to other platforms (RTMP/RTMPS).", no_args_is_help=True)


@restream_app.command()
def add(
    name: Annotated[str, typer.Argument(help="a label, e.g. twitch")],
    url: Annotated[str, typer.Argument(help="rtmp:// or rtmps:// server URL, e.g. rtmp://live.twitch.tv/app")],
    key: Annotated[
        str,
        typer.Option("--key", envvar="RETAKE_RESTREAM_KEY", prompt=True, hide_input=True, help="the stream key"),
    ],
    base_url: BaseUrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a destination (at most 5). While you are live, the push starts at once."""
    with stored_client(base_url) as client, reported_errors():
        answer = client.restream_add(name, url, key)
    if as_json:
        print_json(answer)
    else:
        where = f"{escape(answer['name'])} → {escape(answer['url'])}"
        out.print(f"restream {answer['id']} added: {where} (key …{answer['key_last4']})")


@restream_app.command("list")
def list_(base_url: BaseUrlOpt = None, as_json: JsonOpt = False) -> None:
    """Destinations and the state of their pushes (idle while you are not live)."""
    with stored_client(base_url) as client, reported_errors():
        answer = client.restreams()
    if as_json:
        print_json(answer)
        return
    table = Table("id", "name", "url", "key", "status", "sent", "uptime", "last error")
    for row in answer["restreams"]:
        table.add_row(
            row["id"],
            escape(row["name"]),
            escape(row["url"]),
            f"…{row['key_last4']}",
            row["status"],
            f"{row['bytes_sent'] / 1e6:.1f} MB",
            f"{row['uptime_seconds']} s",
            escape(row["last_error"] or ""),
        )
    out.print(table)


@restream_app.command()
def remove(
    restream_id: Annotated[str, typer.Argument(help="the id shown by `retake agent restream list`")],
    base_url: BaseUrlOpt = None,
) -> None:
    """Remove a destination (a running push stops)."""
    with stored_client(base_url) as client, reported_errors():
        client.restream_remove(restream_id)
    out.print(f"restream {escape(restream_id)} removed")
