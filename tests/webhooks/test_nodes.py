"""Push across processes: a node killed with SIGKILL mid-delivery loses nothing (the event is delivered again
after a restart, with the same Retake-Event-Id), and two nodes on one PostgreSQL deliver each event once."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server, stop_server
from tests.support import FakeOEmbed
from tests.webhooks import nodes
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_sigkill_mid_delivery_loses_nothing(tmp_path: Path, backend: str, receiver: Receiver) -> None:
    oembed = FakeOEmbed()
    with oembed.running(), nodes.database(backend, tmp_path) as url:
        first = await nodes.start(tmp_path / "a", oembed.url, url)
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                agent = await nodes.register(http, first.base, "KillMe")
                fan = await nodes.register(http, first.base, "KillFan")
                put = await http.put(
                    f"{first.base}/api/v1/agent/webhook", json={"url": receiver.url}, headers=agent.headers
                )
                assert put.status_code == 200
                receiver.hold = asyncio.Event()  # the first delivery is received but never answered …
                sent = [await nodes.say(http, first.base, fan, agent, f"line {i}") for i in range(5)]
                await receiver.wait_for(lambda got: len(got) == 1)
                in_flight = receiver.received[0].event_id
        finally:
            assert stop_server(first, signal.SIGKILL) == -signal.SIGKILL  # … because the node dies mid-delivery
        receiver.hold.set()
        receiver.hold = None
        second = await nodes.start(tmp_path / "b", oembed.url, url)
        try:
            await receiver.wait_for(lambda got: len(got) >= 6, seconds=30)  # lease (6 s) expires, then all five
            await asyncio.sleep(1.0)
        finally:
            stop_server(second)
        assert "Traceback" not in second.log(), second.log()[-3000:]
    delivered = receiver.received[1:]
    assert delivered[0].event_id == in_flight  # the same event, the same id
    assert [r.body["data"]["_id"] for r in delivered] == sent
    assert len({r.event_id for r in delivered}) == 5 == len(delivered)


async def test_two_nodes_on_postgres_deliver_each_event_once(tmp_path: Path, receiver: Receiver) -> None:
    oembed = FakeOEmbed()
    agents_count, per_agent = 3, 20
    with oembed.running(), nodes.database("postgres", tmp_path) as url:
        started = await asyncio.gather(
            *(nodes.start(tmp_path / name, oembed.url, url) for name in ("a", "b")), return_exceptions=True
        )  # both boot at once
        a, b = (node if isinstance(node, Server) else None for node in started)
        if a is None or b is None:
            for node in (a, b):
                if node is not None:
                    stop_server(node)
            raise next(error for error in started if isinstance(error, BaseException))
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                fan = await nodes.register(http, a.base, "TwoNodeFan")
                agents = [await nodes.register(http, a.base, f"TwoNode{i}") for i in range(agents_count)]
                for agent in agents:
                    put = await http.put(
                        f"{b.base}/api/v1/agent/webhook", json={"url": receiver.url}, headers=agent.headers
                    )
                    assert put.status_code == 200

                async def talk(agent: nodes.Agent) -> list[str]:
                    # Alternate nodes, so both write outbox rows for the same agent and both workers compete.
                    return [await nodes.say(http, (a, b)[i % 2].base, fan, agent, f"n{i}") for i in range(per_agent)]

                sent = await asyncio.gather(*(talk(agent) for agent in agents))
                total = agents_count * per_agent
                await receiver.wait_for(lambda got: len(got) >= total, seconds=60)
                await asyncio.sleep(2.0)  # duplicates, if any, would arrive now
        finally:
            stop_server(a)
            stop_server(b)
    assert len(receiver.received) == total
    assert len({r.event_id for r in receiver.received}) == total
    for agent, ids in zip(agents, sent, strict=True):
        got = [r.body["data"]["_id"] for r in receiver.received if r.body["data"]["streamer_id"] == agent.user_id]
        assert got == ids  # in order per agent
