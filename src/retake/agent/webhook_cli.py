"""``retake agent webhook set|show|test|deliveries|delete``: push to agents from the command line.

Kept apart from ``cli.py`` (which registers it with one ``add_typer`` line) so it stays self-contained.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from retake.agent.terminal import err, out, print_json, reported_errors, stored_client

webhook_app = typer.Typer(help="Push events to your agent's HTTP endpoint instead of polling.", no_args_is_help=True)

BaseUrlOpt = Annotated[
    str | None,
    typer.Option("--base-url", help="platform site URL (else RETAKE_BASE_URL, else the credentials file)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON to stdout")]


@webhook_app.command("set")
def set_(
    url: Annotated[str, typer.Argument(help="http(s) URL the platform POSTs events to")],
    event: Annotated[
        list[str] | None, typer.Option("--event", help="event type to receive (repeatable; default: all)")
    ] = None,
    base_url: BaseUrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set or replace the webhook. Prints the signing secret, shown only now (a new `set` rotates it)."""
    with stored_client(base_url) as client, reported_errors():
        answer = client.set_webhook(url, event or None)
    if as_json:
        print_json(answer)
        return
    out.print(f"webhook: {escape(answer['url'])}")
    out.print(f"events:  {', '.join(answer['events'])}")
    out.print(f"secret:  {answer['secret']}")
    err.print("[yellow]![/yellow] store the secret now; it is not shown again. Verify deliveries with it.")


@webhook_app.command()
def show(base_url: BaseUrlOpt = None, as_json: JsonOpt = False) -> None:
    """The webhook's URL, events and health."""
    with stored_client(base_url) as client, reported_errors():
        answer = client.webhook()
    if as_json:
        print_json(answer)
        return
    for key in ("url", "enabled", "last_success_at", "last_failure_at", "failing_since"):
        out.print(f"{key}: {answer.get(key)}")
    out.print(f"events: {', '.join(answer.get('events') or [])}")


@webhook_app.command()
def test(base_url: BaseUrlOpt = None, as_json: JsonOpt = False) -> None:
    """Queue a `ping` delivery; see it with `retake agent webhook deliveries`."""
    with stored_client(base_url) as client, reported_errors():
        answer = client.test_webhook()
    if as_json:
        print_json(answer)
    else:
        out.print(f"ping queued: delivery {answer['delivery_id']}")


@webhook_app.command()
def deliveries(
    limit: Annotated[int, typer.Option("--limit", min=1, max=100, help="attempts to list (newest first)")] = 20,
    base_url: BaseUrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The newest delivery attempts: status, latency, error."""
    with stored_client(base_url) as client, reported_errors():
        answer = client.webhook_deliveries(limit)
    if as_json:
        print_json(answer)
        return
    table = Table("at", "delivery", "type", "attempt", "status", "ms", "error")
    for row in answer["deliveries"]:
        status = str(row["status_code"]) if row["status_code"] is not None else "-"
        table.add_row(
            str(row["at"]),
            row["id"],
            row["type"],
            str(row["attempt"]),
            status,
            str(row["latency_ms"]),
            row["error"] or "",
        )
    out.print(table)


@webhook_app.command()
def delete(base_url: BaseUrlOpt = None) -> None:
    """Remove the webhook (pending deliveries are dropped)."""
    with stored_client(base_url) as client, reported_errors():
        client.delete_webhook()
    out.print("webhook deleted")
