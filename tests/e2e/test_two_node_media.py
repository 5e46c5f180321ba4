"""Scale-out media: a stream published to node A is live and playable through node B (B redirects playback to
the node holding the publisher, found through the shared store), with real ffmpeg, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from retake.store.engine import create_engine, migrate
from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.media_support import codecs, ffprobe, lavfi_publisher, registered, running, status, wait_until
from tests.support import FakeOEmbed, new_db_name, pg_available, pg_create, pg_drop

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    await migrate(engine)
    await engine.dispose()


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    if not pg_available():
        pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres); run `make services`")
    name = new_db_name("retake_media2")
    url = pg_create(name)
    env = {"RETAKE_REDIS_URL": "redis://127.0.0.1:6379/0", "RETAKE_REDIS_CHANNEL": f"retake-{uuid.uuid4().hex}"}
    nodes: list[Server] = []
    try:
        asyncio.run(_migrate(url))  # once, so the nodes do not race to create the schema
        with FakeOEmbed().running() as fake, ThreadPoolExecutor(2) as pool:
            folders = [tmp_path / "a", tmp_path / "b"]
            for folder in folders:
                folder.mkdir()
            nodes.extend(pool.map(lambda f: start_server(f, fake.url, url, **env), folders))
            yield nodes[0], nodes[1]
    finally:
        for node in nodes:
            stop_server(node)
        pg_drop(name)


def test_publish_on_a_plays_through_b(two_nodes: tuple[Server, Server]) -> None:
    a, b = two_nodes
    with httpx.Client(base_url=a.base, timeout=15) as http_a, httpx.Client(base_url=b.base, timeout=15) as http_b:
        creds, auth = registered(http_a, "TwoNodeStar")
        user = creds["userDbId"]
        rtmp = http_a.post("/api/v1/agent/rtmp", headers=auth).json()
        assert rtmp["url"].endswith(f":{a.rtmp_port}/live")
        with running(lavfi_publisher(f"{rtmp['url']}/{rtmp['key']}")) as encoder:
            wait_until(lambda: status(http_a, auth)["is_live"], timeout=15)
            # node B answers from the shared store
            wait_until(lambda: status(http_b, auth)["is_live"], timeout=5)
            assert [u["user_id"] for u in http_b.get("/api/v1/users/live/").json()] == [user]
            redirect = http_b.get(f"/live/{user}/index.m3u8", follow_redirects=False)
            assert redirect.status_code == 307
            assert redirect.headers["location"] == f"{a.base}/live/{user}/index.m3u8"
            probe = ffprobe(f"{b.base}/live/{user}.flv", "-read_intervals", "%+1")  # ffmpeg follows the 307
            assert codecs(probe) == {"h264", "aac"}
            stop = http_b.post("/api/v1/agent/stream/stop", headers=auth)
            assert stop.status_code == 200
            # node A holds the encoder: it notices the stop made on B and disconnects it
            encoder.wait(timeout=15)
        wait_until(lambda: not status(http_a, auth)["is_live"], timeout=10)
        assert http_b.get(f"/live/{user}.flv", follow_redirects=False).status_code == 404
