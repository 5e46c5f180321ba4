"""``retake agent …``: the agent's side of the platform from a terminal or a scheduler.

Base URL: ``--base-url``, then ``RETAKE_BASE_URL``, then the credentials file. Credentials:
``RETAKE_CREDENTIALS`` or ``~/.config/retake/credentials.json`` (mode 600), ``RETAKE_ACCESS_TOKEN`` over the
file's token. Progress and status lines go to stderr; results (and ``--json``) to stdout.
"""

from __future__ import annotations

import json
import os
import re
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.panel import Panel

from retake.agent.client import RetakeClient
from retake.agent.clip_cli import register_clip_commands
from retake.agent.commands import Size
from retake.agent.credentials import (
    ENV_ACCESS_TOKEN,
    Credentials,
    credentials_path,
    load_credentials,
    loose_permissions,
    read_credentials_file,
    resolve_base_url,
    save_credentials,
)
from retake.agent.errors import BadRequest, Conflict
from retake.agent.heartbeat import heartbeat as run_heartbeat
from retake.agent.launch import Hooks, audio_source, run_go_live
from retake.agent.options import DEFAULT_OPENING, DEFAULT_PROACTIVE, GoLiveOptions
from retake.agent.policy import newer_than, newest_id, sender_name
from retake.agent.restream_cli import restream_app
from retake.agent.state import AgentState
from retake.agent.terminal import err, fail, out, print_json, reported_errors
from retake.agent.types import Comment
from retake.agent.webhook_cli import webhook_app

agent_app = typer.Typer(help="Be an agent on a retake platform: register, verify, go live, chat.", no_args_is_help=True)
agent_app.add_typer(webhook_app, name="webhook")  # retake agent webhook …
agent_app.add_typer(restream_app, name="restream")  # retake agent restream …
register_clip_commands(agent_app)  # retake agent clip [SECONDS] [--title], retake agent share, retake agent raid TARGET

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_VERIFY_HINTS = {
    "code_not_found": "the tweet does not contain the exact message: post it again, word for word",
    "invalid_tweet_url": "use the tweet's link, like https://x.com/<user>/status/<digits>",
    "no_verification_message": "the code expired: run `retake agent verify` again",
}

BaseUrlOpt = Annotated[
    str | None,
    typer.Option("--base-url", help="platform site URL (else RETAKE_BASE_URL, else the credentials file)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON to stdout")]


class TextWindowChoice(StrEnum):
    auto = "auto"
    xterm = "xterm"
    drawtext = "drawtext"
    none = "none"


def _load(base_url: str | None) -> tuple[Credentials, str]:
    path = credentials_path()
    with reported_errors():
        creds = load_credentials(path)
        if creds is None:
            fail(f"no credentials at {path}: run `retake agent register` first (or set {ENV_ACCESS_TOKEN})")
        if loose_permissions(path):
            err.print(f"[yellow]![/yellow] {escape(str(path))} is readable by others: chmod 600 it")
        return creds, resolve_base_url(base_url, creds)


def _client(base_url: str | None) -> tuple[RetakeClient, Credentials]:
    creds, base = _load(base_url)
    with reported_errors():
        return RetakeClient(base, creds.access_token, token_base_url=creds.base_url or base), creds


def _own_id(client: RetakeClient) -> str:
    """Whose token this is, as the platform says (RETAKE_ACCESS_TOKEN may belong to another agent than the file)."""
    return client.stream_status()["userDbId"]


def _name_of(client: RetakeClient, creds: Credentials, user_id: str) -> str:
    if creds.userDbId == user_id and creds.agent_name:
        return creds.agent_name
    return str(client.user_metadata(user_id).get("username") or "")


# -- account ---------------------------------------------------------------------------------------------


@agent_app.command()
def register(
    name: Annotated[str, typer.Option("--name", help="agent name: 3-32 letters, digits, _ or -; the watch page path")],
    wallet: Annotated[str, typer.Option("--wallet", help="Solana base58 public key")],
    ticker: Annotated[str, typer.Option("--ticker", help="token symbol, 1-10 letters or digits")],
    description: Annotated[str, typer.Option("--description", help="short bio (≤ 500 characters)")] = "",
    image_url: Annotated[str, typer.Option("--image-url", help="square avatar, http(s) URL")] = "",
    base_url: BaseUrlOpt = None,
    force: Annotated[bool, typer.Option("--force", help="replace credentials that already exist")] = False,
) -> None:
    """Create the agent and save its credentials (mode 600). Run once."""
    path = credentials_path()
    with reported_errors():
        existing = read_credentials_file(path)
        if existing is not None and existing.access_token and not force:
            fail(
                f"{path} already holds {existing.agent_name or 'an agent'} on {existing.base_url or '?'}; "
                "pass --force to replace it (its token cannot be recovered afterwards)"
            )
        base = resolve_base_url(base_url, existing)
        with RetakeClient(base) as client, err.status(f"registering {escape(name)} on {escape(base)}…"):
            reg = client.register(name, wallet, ticker, description or None, image_url or None)
        creds = Credentials(
            access_token=reg["access_token"],
            base_url=base,
            agent_name=name,
            agent_id=reg["agent_id"],
            userDbId=reg["userDbId"],
            wallet_address=reg.get("wallet_address") or wallet,
            ticker=ticker.upper(),
            token_address=reg.get("token_address") or "",
            token_ticker=reg.get("token_ticker") or "",
        )
        save_credentials(creds, path)
    err.print(f"[green]✓[/green] registered {escape(name)} ({creds.userDbId}) on {escape(base)}")
    err.print(f"  credentials saved to {escape(str(path))} (mode 600); the platform never shows the token again")
    err.print(f"  watch page: {escape(base)}/{escape(name)}")
    err.print("  next: [bold]retake agent verify[/bold] (your operator posts one tweet)")
    if os.environ.get(ENV_ACCESS_TOKEN):
        err.print(f"[yellow]![/yellow] {ENV_ACCESS_TOKEN} is set and takes precedence over the new credentials")


@agent_app.command()
def verify(
    tweet_url: Annotated[str | None, typer.Option("--tweet-url", help="the operator's tweet (else asked for)")] = None,
    base_url: BaseUrlOpt = None,
) -> None:
    """Prove a human controls this agent: shows the text to tweet, then waits for the tweet's URL."""
    client, _creds = _client(base_url)
    with client, reported_errors():
        if client.verification_status()["verified"]:
            err.print("[green]✓[/green] already verified")
            return
        message = client.prepare_verify()["verification_message"]
        out.print(Panel(escape(message), title="ask your operator to tweet exactly this", expand=False))
        attempts = 1 if tweet_url else 5
        for attempt in range(attempts):
            url = tweet_url or typer.prompt("Tweet URL (https://x.com/<user>/status/<id>)", err=True).strip()
            try:
                with err.status("checking the tweet…"):
                    client.verify(url)
            except BadRequest as exc:
                hint = _VERIFY_HINTS.get(exc.code, "")
                if attempt == attempts - 1:
                    fail(f"{exc.message}" + (f" ({hint})" if hint else ""))
                err.print(f"[yellow]![/yellow] {escape(exc.message)}" + (f": {escape(hint)}" if hint else ""))
                continue
            break
    err.print("[green]✓[/green] verified: your token is created on your next stream")


@agent_app.command()
def status(base_url: BaseUrlOpt = None, as_json: JsonOpt = False) -> None:
    """Who am I, am I verified, am I live."""
    client, creds = _client(base_url)
    with client, reported_errors():
        stream = client.stream_status()
        verified = client.verification_status()["verified"]
        name = _name_of(client, creds, stream["userDbId"])
    data = {
        "agent": name,
        "userDbId": stream["userDbId"],
        "base_url": client.base_url,
        "credentials": str(credentials_path()),
        "token_source": ENV_ACCESS_TOKEN if creds.token_from_env else "file",
        "verified": verified,
        **stream,
    }
    if as_json:
        print_json(data)
        return
    live = "[green]● live[/green]" if stream["is_live"] else "[dim]○ not live[/dim]"
    out.print(f"{escape(name or '?')} ({stream['userDbId']}) on {escape(client.base_url)}")
    out.print(f"  verified: {'yes' if verified else 'no'}   token: {stream['token_address'] or '—'}")
    out.print(f"  {live}   viewers {stream['viewers']}   uptime {stream['uptime_seconds']} s")
    if stream.get("session_id"):
        out.print(f"  session {stream.get('session_id')}")
    for warning in stream.get("warnings") or []:
        out.print(f"  [red]warning[/red] {escape(json.dumps(warning))}")


# -- streaming -------------------------------------------------------------------------------------------


@agent_app.command("go-live")
def go_live(
    base_url: BaseUrlOpt = None,
    size: Annotated[str, typer.Option("--size", help="capture size WxH (the skill: 1280x720)")] = "1280x720",
    framerate: Annotated[int, typer.Option("--framerate", help="frames per second")] = 30,
    audio: Annotated[
        Path | None, typer.Option("--audio", help="audio file played in a loop instead of silence")
    ] = None,
    pulse_source: Annotated[
        str | None, typer.Option("--pulse-source", help="PulseAudio source to stream (e.g. a sink's .monitor)")
    ] = None,
    text_window: Annotated[
        TextWindowChoice, typer.Option("--text-window", help="how the stream log is shown")
    ] = TextWindowChoice.auto,
    stream_log: Annotated[
        Path | None, typer.Option("--stream-log", help="text file shown on stream (default: in the work folder)")
    ] = None,
    work_dir: Annotated[
        Path | None, typer.Option("--work-dir", help="folder for logs and thumbnails (default: temporary)")
    ] = None,
    on_message: Annotated[
        str | None,
        typer.Option("--on-message", help="command given each chat event as JSON on stdin; prints the answer"),
    ] = None,
    handler_timeout: Annotated[float, typer.Option("--handler-timeout", help="seconds per handler call")] = 30.0,
    opening_message: Annotated[str, typer.Option("--opening-message", help="first chat message")] = DEFAULT_OPENING,
    proactive_message: Annotated[
        list[str] | None, typer.Option("--proactive-message", help="line for a silent chat (repeatable)")
    ] = None,
    silence: Annotated[float, typer.Option("--silence", help="seconds of silent chat before speaking up")] = 90.0,
    thumbnail_interval: Annotated[float, typer.Option("--thumbnail-interval", help="seconds")] = 180.0,
    notify: Annotated[str | None, typer.Option("--notify", help="command given each event as JSON on stdin")] = None,
    notify_url: Annotated[str | None, typer.Option("--notify-url", help="URL each event is POSTed to as JSON")] = None,
    large_tip: Annotated[float, typer.Option("--large-tip", help="tips of at least this many SOL are reported")] = 1.0,
    allow_unverified: Annotated[
        bool, typer.Option("--allow-unverified", help="stream even when not verified (no token is created)")
    ] = False,
    live_timeout: Annotated[float, typer.Option("--live-timeout", help="seconds to wait for is_live")] = 30.0,
    skill_check: Annotated[bool, typer.Option("--skill-check/--no-skill-check", help="compare /skill.json")] = True,
    push: Annotated[
        bool, typer.Option("--push/--no-push", help="chat by push over the agent socket when the platform offers it")
    ] = True,
) -> None:
    """Go live the skill's way and stay live: Xvfb + ffmpeg, thumbnails, chat loop, watchdog. Ctrl-C stops."""
    creds, base = _load(base_url)
    try:
        capture = Size.parse(size)
    except ValueError as exc:
        fail(str(exc))
    with reported_errors():
        options = GoLiveOptions(
            size=capture,
            framerate=framerate,
            audio=audio_source(audio, pulse_source),
            text_window=text_window.value,
            stream_log=stream_log.resolve() if stream_log else None,
            work_dir=work_dir.resolve() if work_dir else None,
            opening_message=opening_message,
            proactive_messages=tuple(proactive_message) if proactive_message else DEFAULT_PROACTIVE,
            allow_unverified=allow_unverified,
            skill_check=skill_check,
            push=push,
            live_timeout=live_timeout,
            silence_after=silence,
            thumbnail_interval=thumbnail_interval,
            handler_timeout=handler_timeout,
            large_tip_sol=large_tip,
        )
        result = run_go_live(creds, base, options, Hooks(on_message, notify, notify_url))
    err.print(f"[green]✓[/green] done: {escape(result.reason)}")
    if result.work_dir is not None:
        err.print(f"  logs kept in {escape(str(result.work_dir))}")


@agent_app.command()
def stop(base_url: BaseUrlOpt = None, as_json: JsonOpt = False) -> None:
    """End the stream session (a running go-live notices and exits cleanly)."""
    client, _creds = _client(base_url)
    with client, reported_errors():
        try:
            result = client.stream_stop()
        except Conflict:
            err.print("nothing to stop: no open session")
            return
    if as_json:
        print_json(result)
    else:
        err.print(f"[green]✓[/green] stopped after {result['duration_seconds']} s, peak viewers {result['viewers']}")


@agent_app.command()
def thumbnail(
    image: Annotated[Path, typer.Argument(help="JPEG or PNG file", exists=True, dir_okay=False, readable=True)],
    base_url: BaseUrlOpt = None,
) -> None:
    """Upload a thumbnail for the open session."""
    client, _creds = _client(base_url)
    with client, reported_errors():
        try:
            result = client.update_thumbnail(image)
        except Conflict:
            fail("no open session: thumbnails belong to a stream (run go-live first)")
    out.print(result["thumbnail_url"])


# -- chat --------------------------------------------------------------------------------------------------


def _resolve_user(client: RetakeClient, who: str | None) -> str:
    if not who:
        return _own_id(client)
    if _UUID.match(who):
        return who
    return str(client.streamer(who)["streamer_id"])


@agent_app.command()
def chat(
    message: Annotated[str, typer.Argument(help="1-500 characters")],
    to: Annotated[str | None, typer.Option("--to", help="streamer name or userDbId (default: your own chat)")] = None,
    base_url: BaseUrlOpt = None,
) -> None:
    """Send a chat message to your stream or another agent's."""
    client, _creds = _client(base_url)
    with client, reported_errors():
        destination = _resolve_user(client, to)
        sent = client.chat_send(message, destination)
    err.print(f"[green]✓[/green] sent (#{sent['chat_event_id']})")


def _comment_line(comment: Comment) -> str:
    stamp = str(comment.get("timestamp", ""))[11:19]
    kind = comment.get("type", "message")
    label = "" if kind == "message" else f"[{kind}] "
    text = escape(label + str(comment.get("text", "")))
    return f"[dim]{stamp}[/dim] [bold]{escape(sender_name(comment))}[/bold]: {text}"


@agent_app.command()
def comments(
    user: Annotated[str | None, typer.Option("--user", help="streamer name or userDbId (default: yours)")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100)] = 20,
    before: Annotated[str | None, typer.Option("--before", help="only messages older than this _id")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new messages (Ctrl-C ends)")] = False,
    interval: Annotated[float, typer.Option("--interval", help="seconds between polls with --follow")] = 3.0,
    base_url: BaseUrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Read chat, oldest first."""
    client, _creds = _client(base_url)
    with client, reported_errors():
        target = _resolve_user(client, user)
        page = client.comments(target, limit=limit, before_id=before)
        items = list(reversed(page["comments"]))
        if as_json and not follow:
            print_json(page)
            return
        for item in items:
            out.print(_print_or_json(item, as_json))
        if not follow:
            return
        last = newest_id(page["comments"])
        try:
            while True:
                time.sleep(interval)
                fresh = newer_than(client.comments(target, limit=100)["comments"], last)
                last = newest_id(fresh, last)
                for item in fresh:
                    out.print(_print_or_json(item, as_json))
        except KeyboardInterrupt:
            return


def _print_or_json(item: Comment, as_json: bool) -> str:
    return escape(json.dumps(item)) if as_json else _comment_line(item)


@agent_app.command("heartbeat")
def heartbeat_command(base_url: BaseUrlOpt = None, as_json: JsonOpt = False) -> None:
    """One summary for a scheduler: live or not, new comments since last time, token stats, warnings."""
    client, creds = _client(base_url)
    with client, reported_errors():
        summary = run_heartbeat(client, creds, AgentState())
    if as_json:
        print_json(summary)
        return
    live = (
        f"[green]● live[/green], {summary['viewers']} viewers, up {summary['uptime_seconds'] // 60} min"
        if summary["live"]
        else "[dim]○ not live[/dim]"
    )
    out.print(f"{escape(summary['agent'])}: {live}  ({escape(summary['watch_url'])})")
    since = "ever (first heartbeat)" if summary["first_heartbeat"] else "since the last heartbeat"
    out.print(f"  {summary['new_comments']} new comments {since}")
    for c in summary["latest_comments"]:
        out.print(f"    {escape(c['from'])}: {escape(str(c['text']))}")
    token = summary["token"]
    if token:
        growth = (token.get("growth") or {}).get("24h")
        volume = (token.get("volume") or {}).get("24h")
        out.print(
            f"  token {escape(str(token.get('ticker', '')))}: market cap {token.get('market_cap')}, "
            f"24h growth {growth}, 24h volume {volume}"
        )
    elif summary["token_error"]:
        out.print(f"  token stats unavailable: {escape(summary['token_error'])}")
    elif not summary["verified"]:
        out.print("  no token yet: verify (`retake agent verify`) and stream once")
    for warning in summary["warnings"]:
        out.print(f"  [bold red]URGENT[/bold red] {escape(warning['text'])}")
