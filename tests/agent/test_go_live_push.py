"""go-live chats by push when the platform offers it, and polls when the socket is refused.

A real ``retake serve``, real Xvfb and ffmpeg, the runtime in this process with a transport that records every
request it makes: with push, a viewer's message is answered without a single read of
``/agent/stream/comments`` after the prime; behind a proxy that refuses ``/socket.io`` (as a proxy without
WebSockets would), the same run falls back to polling and still answers."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web

from retake.agent.async_client import AsyncRetakeClient
from retake.agent.commands import Size
from retake.agent.credentials import Credentials
from retake.agent.options import GoLiveOptions
from retake.agent.runtime import GoLive
from retake.agent.state import AgentState
from tests.e2e.conftest import RETAKE, Server, start_server, stop_server
from tests.support import FakeOEmbed
from tests.webhooks import nodes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
COMMENTS = "/api/v1/agent/stream/comments"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    fake = FakeOEmbed()
    with fake.running():
        server = start_server(tmp_path_factory.mktemp("push-go-live"), fake.url)
        yield server
        stop_server(server)
    assert "Traceback" not in server.log(), server.log()[-4000:]


class Recording(httpx.AsyncHTTPTransport):
    """A real HTTP transport that remembers the path of every request (the spy the assertions read)."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await super().handle_async_request(request)


@contextlib.asynccontextmanager
async def no_websockets_proxy(upstream: str) -> AsyncIterator[str]:
    """Forwards plain HTTP to ``upstream`` and answers 403 for ``/socket.io`` (a proxy without WebSockets)."""
    session = aiohttp.ClientSession(auto_decompress=False)

    async def forward(request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/socket.io"):
            return web.Response(status=403, text="no websockets here")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        body = await request.read()
        url = upstream + request.path_qs
        async with session.request(request.method, url, headers=headers, data=body, allow_redirects=False) as answer:
            content = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in ("transfer-encoding", "content-length")}
            return web.Response(status=answer.status, headers=kept, body=content)

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await session.close()


async def verified_agent(http: httpx.AsyncClient, platform: Server, base: str, name: str) -> nodes.Agent:
    agent = await nodes.register(http, base, name)
    verify = await asyncio.to_thread(
        subprocess.run,
        [*RETAKE, "admin", "verify", name.lower(), "--data-dir", str(platform.data_dir)],
        env=platform.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stderr
    return agent


async def chat_texts(http: httpx.AsyncClient, base: str, agent: nodes.Agent) -> list[str]:
    page = (await http.get(f"{base}{COMMENTS}", headers=agent.headers, params={"userDbId": agent.user_id})).json()
    return [str(c["text"]) for c in page["comments"]]


async def eventually(check: Any, seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while not await check():  # noqa: ASYNC110 - the condition is a server's answer, not a local event
            await asyncio.sleep(0.3)


async def go_live_answers(platform: Server, base: str, tmp_path: Path, name: str) -> tuple[GoLive, Recording]:
    """Bring up go-live for a fresh agent at ``base``, have a viewer write, wait for the handler's answer in
    chat, stop; the runtime and the requests it made."""
    async with httpx.AsyncClient(timeout=15) as http:
        agent = await verified_agent(http, platform, base, name)
        viewer = await nodes.register(http, base, f"{name}Fan")
        spy = Recording()
        client = AsyncRetakeClient(base, agent.token, transport=spy)
        handled: list[str] = []

        def handler(event: dict[str, Any]) -> str | None:
            if event["type"] != "comment":
                return None
            handled.append(event["text"])
            return f"echo: {event['text']}"

        go = GoLive(
            client,
            Credentials(agent.token, base, agent_name=name, userDbId=agent.user_id),
            GoLiveOptions(size=Size(320, 180), text_window="none", work_dir=tmp_path / name, opening_message=""),
            handler=handler,
            state=AgentState(tmp_path / f"{name}-state.json"),
        )
        run = asyncio.create_task(go.run())
        try:

            async def live() -> bool:
                assert not run.done(), run
                return go.chat is not None and go.liveness.status is not None and go.liveness.status["is_live"]

            await eventually(live, 60)
            await nodes.say(http, base, viewer, agent, "are you there?")

            async def answered() -> bool:
                return "echo: are you there?" in await chat_texts(http, base, agent)

            await eventually(answered, 25)
            assert handled == ["are you there?"]
        finally:
            go.request_stop("test over")
            result = await asyncio.wait_for(run, 40)
            await client.aclose()
        assert result.comments_handled == 1 and result.replies_sent == 1
        return go, spy


async def test_go_live_answers_chat_by_push_without_polling(platform: Server, tmp_path: Path) -> None:
    go, spy = await go_live_answers(platform, platform.base, tmp_path, "PushLive")
    assert go.push_socket is not None
    assert spy.paths.count(COMMENTS) == 1, spy.paths  # the prime only: the message came over the socket
    assert "/skill.json" in spy.paths


async def test_go_live_polls_when_the_socket_is_refused(platform: Server, tmp_path: Path) -> None:
    async with no_websockets_proxy(platform.base) as proxied:
        go, spy = await go_live_answers(platform, proxied, tmp_path, "PollLive")
    assert go.push_socket is None
    assert spy.paths.count(COMMENTS) >= 2, spy.paths  # the prime, then the polls that found the message
