"""Scale-out: two ``retake serve`` processes sharing one PostgreSQL database and one Redis behave as one platform
for chat and events (ARCHITECTURE.md). Each test run uses its own database and its own Redis channel, so runs
in parallel never hear each other."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from retake.store.engine import create_engine, migrate
from tests.e2e.conftest import RETAKE, Server, start_server, stop_server
from tests.realtime.conftest import FAST_OPERATOR
from tests.realtime.support import Probe, register, socket_message
from tests.support import FakeOEmbed, new_db_name, pg_available, pg_create, pg_drop

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

REDIS_URL = "redis://127.0.0.1:6379/0"


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    await migrate(engine)
    await engine.dispose()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    if not pg_available():
        pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres); run `make services`")
    name = new_db_name("retake_rt")
    url = pg_create(name)
    env = {"RETAKE_REDIS_URL": REDIS_URL, "RETAKE_REDIS_CHANNEL": f"retake-test-{uuid.uuid4().hex}", **FAST_OPERATOR}
    fake = FakeOEmbed()
    nodes: list[Server] = []
    try:
        # Migrated here, so both nodes can start at once without racing to create the schema.
        asyncio.run(_migrate(url))
        with fake.running(), ThreadPoolExecutor(2) as pool:
            folders = [tmp_path_factory.mktemp(f"node_{label}") for label in ("a", "b")]
            starting = [pool.submit(start_server, folder, fake.url, url, **env) for folder in folders]
            nodes.extend(future.result() for future in starting)
            yield nodes[0], nodes[1]
            list(pool.map(stop_server, nodes))
    finally:
        for node in nodes:
            stop_server(node)
        pg_drop(name)
    for node in nodes:
        assert "Traceback" not in node.log(), node.log()[-4000:]


@pytest.fixture
async def clients(cluster: tuple[Server, Server]) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    a, b = cluster
    async with (
        httpx.AsyncClient(base_url=a.base, timeout=10) as http_a,
        httpx.AsyncClient(base_url=b.base, timeout=10) as http_b,
    ):
        yield http_a, http_b


async def test_rest_on_a_reaches_a_socket_on_b_and_back(
    cluster: tuple[Server, Server], clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    a, b = cluster
    http_a, http_b = clients
    streamer, viewer = await register(http_a), await register(http_b)
    on_a, on_b = await Probe().connect(a.base), await Probe().connect(b.base)
    try:
        await on_a.join(streamer.user_id)
        await on_b.join(streamer.user_id)
        sent = await http_a.post(
            "/api/v1/agent/stream/chat/send",
            json={"message": "sent to node A", "destination_user_id": streamer.user_id},
            headers=viewer.headers,
        )
        _, seen_on_b = await on_b.wait_for(lambda e: e[0] == "message" and e[1].get("text") == "sent to node A")
        assert seen_on_b["_id"] == sent.json()["message_id"]
        read_on_b = (await http_b.get("/api/v1/chat/", params={"streamer_id": streamer.user_id})).json()["chats"]
        assert read_on_b[0]["chat_event_id"] == seen_on_b["chat_event_id"]

        ack = await on_b.sio.call("message", socket_message(viewer, streamer.user_id, "sent to node B"), timeout=10)
        _, seen_on_a = await on_a.wait_for(lambda e: e[0] == "message" and e[1].get("text") == "sent to node B")
        assert seen_on_a == ack
        await asyncio.sleep(0.3)
        assert len(on_a.messages(text="sent to node A")) == 1, "each node's emit reaches each client once"
    finally:
        await on_a.close()
        await on_b.close()


async def test_moderation_and_operator_notices_across_nodes(
    cluster: tuple[Server, Server], clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    a, b = cluster
    http_a, _ = clients
    streamer, viewer = await register(http_a, "scale"), await register(http_a)
    session_id = (await http_a.post("/api/v1/agent/stream/start", headers=streamer.headers)).json()["session_id"]
    watcher = await Probe().connect(b.base)
    sender = await Probe().connect(b.base)
    try:
        await watcher.join(streamer.user_id)
        await http_a.post(
            f"/api/v1/sessions/{session_id}/jail", json={"user_id": viewer.user_id}, headers=streamer.headers
        )
        await watcher.wait_for(lambda e: e[0] == "message" and e[1].get("type") == "jail")
        refused = await sender.sio.call("message", socket_message(viewer, streamer.user_id, "hi"), timeout=10)
        assert refused["code"] == "muted", "the mute made on node A holds on node B"

        command = [*RETAKE, "admin", "warn", streamer.name, "heads up", "--data-dir", str(Path(a.data_dir))]
        warned = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=60, env=a.env)
        assert warned.returncode == 0, warned.stderr
        await watcher.wait_for(lambda e: e[0] == "message" and e[1].get("type") == "system")
        await asyncio.sleep(1.0)  # several polls of both nodes
        assert len(watcher.messages(type="system")) == 1, "exactly one node announces an operator notice"
    finally:
        await watcher.close()
        await sender.close()
