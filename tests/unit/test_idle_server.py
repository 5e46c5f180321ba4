"""The HTTP server does not tick while idle (server/runner.py): uvicorn's main loop woke every 0.1 s to look at
``should_exit`` and refresh the ``date`` header. Here a real server on a free port still dates every response
with the current second and still stops when ``should_exit`` is set, from the loop or from another thread."""

from __future__ import annotations

import asyncio
import threading
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import uvicorn

from retake.server.runner import _Server


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hi"})


async def serving(**config: Any) -> tuple[_Server, asyncio.Task[None], list[int], str]:
    server = _Server(uvicorn.Config(hello, host="127.0.0.1", port=0, lifespan="off", log_level="warning", **config))
    ticks: list[int] = []
    tick = server.on_tick

    async def counted(counter: int) -> bool:
        ticks.append(counter)
        return await tick(counter)

    server.on_tick = counted  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, ticks, f"http://127.0.0.1:{port}/"


async def test_an_idle_server_does_not_tick_yet_dates_responses_and_stops_from_another_thread() -> None:
    server, task, ticks, url = await serving(headers=[("x-node", "a")])
    async with httpx.AsyncClient() as http:
        first = await http.get(url)
        await asyncio.sleep(1.1)
        second = await http.get(url)
    assert first.text == "hi" and first.headers["x-node"] == "a" and second.headers["x-node"] == "a"
    dates = [parsedate_to_datetime(r.headers["date"]) for r in (first, second)]
    assert (dates[1] - dates[0]).total_seconds() >= 1, "each response carries the second it was sent in"
    assert ticks == [], "the main loop waited for the exit flag instead of ticking"
    threading.Thread(target=setattr, args=(server, "should_exit", True)).start()
    await asyncio.wait_for(task, 5)


async def test_should_exit_set_on_the_loop_stops_it_and_the_date_header_can_be_off() -> None:
    server, task, _ticks, url = await serving(date_header=False)
    async with httpx.AsyncClient() as http:
        answer = await http.get(url)
    assert "date" not in answer.headers
    server.should_exit = True
    await asyncio.wait_for(task, 5)
