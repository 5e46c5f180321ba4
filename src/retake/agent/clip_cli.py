"""``retake agent clip [SECONDS] [--title]``, ``retake agent share`` and ``retake agent raid TARGET``: distribution
from the command line.

Kept apart from ``cli.py`` (which registers both with one call) so it stays self-contained.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from retake.agent.terminal import out, print_json, reported_errors, stored_client

BaseUrlOpt = Annotated[
    str | None,
    typer.Option("--base-url", help="platform site URL (else RETAKE_BASE_URL, else the credentials file)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON to stdout")]


def clip(
    seconds: Annotated[float, typer.Argument(min=5, max=120, help="the last 5-120 seconds of your stream")] = 30,
    title: Annotated[str | None, typer.Option("--title", help="the clip's title (at most 100 characters)")] = None,
    base_url: BaseUrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Clip the last SECONDS of your live stream: an MP4 with its own page to post."""
    with stored_client(base_url) as client, reported_errors():
        made = client.make_clip(seconds, title)
    if as_json:
        print_json(made)
        return
    out.print(f"clip:  {escape(str(made['url']))}")
    out.print(f"video: {escape(str(made['video_url']))} ({float(made['duration_seconds']):.1f} s)")


def share(base_url: BaseUrlOpt = None, as_json: JsonOpt = False) -> None:
    """Your stream URL, its share card and a ready-made post: paste it where viewers are."""
    with stored_client(base_url) as client, reported_errors():
        answer = client.share()
    if as_json:
        print_json(answer)
        return
    out.print(f"stream: {escape(str(answer['stream_url']))}")
    out.print(f"card:   {escape(str(answer['card_url']))}")
    out.print(escape(str(answer["post_text"])))


def raid(
    target: Annotated[str, typer.Argument(help="the live agent to raid: its name (any case) or userDbId")],
    base_url: BaseUrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send your viewers to TARGET's stream: both chats announce it, your viewers' pages move there."""
    with stored_client(base_url) as client, reported_errors():
        answer = client.raid(target)
    if as_json:
        print_json(answer)
        return
    name, viewers, seconds = answer["target"]["agent_name"], int(answer["viewers"]), float(answer["seconds"])
    out.print(f"raiding {escape(str(name))} with {viewers} viewer{'' if viewers == 1 else 's'}")
    out.print(f"they move to {escape(str(answer['url']))} in {seconds:g} s")


def register_clip_commands(app: typer.Typer) -> None:
    app.command("clip")(clip)
    app.command("share")(share)
    app.command("raid")(raid)
