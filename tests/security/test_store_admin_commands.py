"""Item 7 of issue 12: ``retake admin …`` acts on the store only, never with a node's start-up effects.

Before: run with a node's environment (its ``RETAKE_PUBLIC_URL``, here derived from its ``RETAKE_PORT``), the
command started a whole platform, whose start-up cleared ``media_node`` of that node's live sessions, so other
nodes reported the stream offline. Real server processes, real ffmpeg, both databases."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import RETAKE, Server, start_server, start_servers, stop_server
from tests.e2e.media_support import lavfi_publisher, registered, running, status, wait_until
from tests.support import FakeOEmbed, new_db_name, pg_available, pg_create, pg_drop

pytestmark = [pytest.mark.e2e]
FAST_OPERATOR = {"RETAKE_OPERATOR_POLL_SECONDS": "0.2"}


def _media_node(server: Server, user_id: str) -> str | None:
    query = f"SELECT media_node FROM stream_sessions WHERE user_id = '{user_id}' AND status = 'open'"
    url = server.env.get("RETAKE_DATABASE_URL")
    if url:
        command = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", url.rsplit("/", 1)[1], "-tAc", query]
    else:
        command = ["sqlite3", str(server.data_dir / "retake.db"), query]
    rows = subprocess.run(command, capture_output=True, text=True, check=True, timeout=30).stdout.split()
    return rows[0] if rows else None


@pytest.fixture(params=["sqlite", "postgres"])
def nodes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Server]]:
    """Node A, and on PostgreSQL a second node B sharing the store (and Redis)."""
    started: list[Server] = []
    name = None
    try:
        with FakeOEmbed().running() as fake:
            if request.param == "sqlite":
                started.append(start_server(tmp_path, fake.url, **FAST_OPERATOR))
            else:
                if not pg_available():
                    pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres); run `make services`")
                name = new_db_name("retake_admin")
                url = pg_create(name)
                env = {"RETAKE_REDIS_URL": "redis://127.0.0.1:6379/0", "RETAKE_REDIS_CHANNEL": f"r-{uuid.uuid4().hex}"}
                folders = [tmp_path / "a", tmp_path / "b"]
                for folder in folders:
                    folder.mkdir()
                started.extend(start_servers(folders, fake.url, url, **env, **FAST_OPERATOR))
            yield started
    finally:
        for server in started:
            stop_server(server)
        if name is not None:
            pg_drop(name)


def test_admin_warn_with_the_nodes_environment_leaves_its_live_session_alone(nodes: list[Server]) -> None:
    a = nodes[0]
    with httpx.Client(base_url=a.base, timeout=15) as http_a:
        creds, auth = registered(http_a, "AdminLiveStar")
        user = creds["userDbId"]
        rtmp = http_a.post("/api/v1/agent/rtmp", headers=auth).json()
        with running(lavfi_publisher(f"{rtmp['url']}/{rtmp['key']}")) as encoder:
            wait_until(lambda: _media_node(a, user) == a.base, timeout=20)
            # The operator, on node A's machine, with node A's environment.
            done = subprocess.run(
                [*RETAKE, "admin", "warn", "AdminLiveStar", "keep it friendly"],
                env=a.env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            assert _media_node(a, user) == a.base, "the admin command cleared the node's media_node claim"
            # Several polls of the node's operator desk (every 0.2 s here): the warning is announced, nothing else
            # changes.
            time.sleep(1.0)
            assert encoder.poll() is None
            assert _media_node(a, user) == a.base
            assert status(http_a, auth)["is_live"]
            for other in nodes[1:]:
                with httpx.Client(base_url=other.base, timeout=15) as http_b:
                    assert status(http_b, auth)["is_live"]
                    assert [u["user_id"] for u in http_b.get("/api/v1/users/live/").json()] == [user]
                    redirect = http_b.get(f"/live/{user}/index.m3u8", follow_redirects=False)
                    assert redirect.status_code == 307
            warnings = status(http_a, auth)["warnings"]
            assert [w["reason"] for w in warnings] == ["keep it friendly"]
