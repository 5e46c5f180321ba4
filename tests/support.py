"""Test helpers shared by the tiers: throwaway PostgreSQL databases, a fake oEmbed server, ports."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

PG_ADMIN = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc"]
VALID_WALLET = "11111111111111111111111111111111"  # the System Program id: a valid 32-byte key
OTHER_WALLET = "So11111111111111111111111111111111111111112"


def pg_available() -> bool:
    try:
        subprocess.run([*PG_ADMIN, "SELECT 1"], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def pg_create(name: str, template: str | None = None) -> str:
    clause = f" TEMPLATE {template}" if template else ""
    subprocess.run([*PG_ADMIN, f'CREATE DATABASE "{name}"{clause}'], check=True, capture_output=True, timeout=30)
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def pg_drop(name: str) -> None:
    subprocess.run([*PG_ADMIN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], capture_output=True, timeout=30)


def new_db_name(prefix: str = "retake_test") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """``count`` different free ports. Calling free_port() twice can give the same port twice (the first socket
    is closed before the second asks): a server then got its RTMP and HTTP port equal and failed to bind."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


class JsonHttpServer:
    """A threaded HTTP server on a free loopback port answering GETs with JSON: ``answer(path)`` gives the status
    and the body. The local stand-in for a third-party service, speaking its real wire format."""

    path = "/"
    content_type = "application/json"

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = owner.answer(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", owner.content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def answer(self, path: str) -> tuple[int, Any]:
        raise NotImplementedError

    @contextmanager
    def running(self) -> Iterator[Self]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


class FakeOEmbed(JsonHttpServer):
    """A local HTTP server answering like publish.twitter.com/oembed: JSON with the tweet inside ``html``."""

    path = "/oembed"
    content_type = "application/json; charset=utf-8"

    def __init__(self) -> None:
        self.tweets: dict[str, str] = {}  # status id -> tweet text
        self.requests: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        super().__init__()

    def answer(self, path: str) -> tuple[int, Any]:
        query = parse_qs(urlsplit(path).query)
        self.requests.append(query)
        url = query.get("url", [""])[0]
        status_id = url.rstrip("/").rsplit("/", 1)[-1]
        if self.fail_with is not None:
            return self.fail_with, {"error": "upstream"}
        if status_id not in self.tweets:
            return 404, {"errors": [{"message": "Sorry, that page does not exist", "code": 34}]}
        author = urlsplit(url).path.split("/")[1]
        text = self.tweets[status_id].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        markup = (
            '<blockquote class="twitter-tweet"><p lang="en" dir="ltr">'
            + text
            + f"</p>&mdash; {author} (@{author}) "
            + f'<a href="{url}?ref_src=twsrc%5Etfw">November 27, 2026</a></blockquote>\n'
        )
        return 200, {
            "url": url,
            "author_name": author,
            "author_url": f"https://twitter.com/{author}",
            "html": markup,
            "width": 550,
            "height": None,
            "type": "rich",
            "cache_age": "3153600000",
            "provider_name": "Twitter",
            "provider_url": "https://twitter.com",
            "version": "1.0",
        }
