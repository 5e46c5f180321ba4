"""Raids over the API on both databases (issue 16): ``POST /api/v1/agent/raid {target}`` between two live agents
(the ingest interface driven as the RTMP server drives it), the chat lines in both rooms, the ``raid`` event and
the two push events, every refusal, the rate limit, and a target whose media flows on another node."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import update

from retake.config import Settings
from retake.events import PlatformEvent
from retake.server.app import create_app
from retake.server.realtime.wire import wire_payload
from retake.store.tables import StreamSession
from tests.api.test_streams import platform_of
from tests.conftest import AgentHandle
from tests.identity.support import guest
from tests.support import VALID_WALLET


async def live_agent(client: httpx.AsyncClient, register: Any, name: str | None = None) -> tuple[Any, str]:
    """An agent whose session is open and whose media flows on this node."""
    platform = platform_of(client)
    agent = await register(name)
    key = (await client.post("/api/v1/agent/rtmp", headers=agent.headers)).json()["key"]
    session_id = (await client.post("/api/v1/agent/stream/start", headers=agent.headers)).json()["session_id"]
    target = await platform.streams.authorize_publish(key)
    assert target is not None
    await platform.streams.media_flowing(target)
    return agent, session_id


async def raid(client: httpx.AsyncClient, agent: Any, body: Any) -> httpx.Response:
    return await client.post("/api/v1/agent/raid", headers=agent.headers, json=body)


async def chat_lines(client: httpx.AsyncClient, reader: Any, streamer_id: str) -> list[dict[str, Any]]:
    """The streamer's chat as the public page and the agents' comments endpoint read it (both must show it)."""
    public = await client.get(f"/api/v1/chat/?streamer_id={streamer_id}&limit=50")
    assert public.status_code == 200, public.text
    agents = await client.get(f"/api/v1/agent/stream/comments?userDbId={streamer_id}&limit=50", headers=reader.headers)
    assert agents.status_code == 200, agents.text
    comments: list[dict[str, Any]] = agents.json()["comments"]
    assert [c["chat_event_id"] for c in comments] == [c["chat_event_id"] for c in public.json()["chats"]]
    return comments


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json().get("code", "")


async def test_a_raid_announces_itself_in_both_chats_and_to_both_agents(
    client: httpx.AsyncClient, register: Any
) -> None:
    platform = platform_of(client)
    raider, raider_session = await live_agent(client, register, "RaidLeader")
    target, target_session = await live_agent(client, register, "RaidTarget")
    for viewer in ("v1", "v2", "v3"):  # three distinct viewers on the raider's stream
        platform.live.touch_viewer(raider.user_id, viewer)
    heard: list[PlatformEvent] = []

    async def listen(event: PlatformEvent) -> None:
        heard.append(event)

    platform.events.subscribe(listen)
    response = await raid(client, raider, {"target": "raidtarget"})  # any case
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["raid_id"].startswith("raid_") and body["viewers"] == 3 and body["seconds"] == 10
    assert body["raider"] == {
        "userDbId": raider.user_id,
        "agent_name": "RaidLeader",
        "url": "http://testserver/RaidLeader",
    }
    assert body["target"] == {
        "userDbId": target.user_id,
        "agent_name": "RaidTarget",
        "url": "http://testserver/RaidTarget",
    }
    assert body["url"] == "http://testserver/RaidTarget" and body["moves_at"]

    [ours] = [c for c in await chat_lines(client, raider, raider.user_id) if c["type"] == "system"]
    assert ours["text"] == "Raiding RaidTarget with 3 viewers" and ours["sender_username"] == "retake"
    assert ours["session_id"] == raider_session
    [theirs] = [c for c in await chat_lines(client, raider, target.user_id) if c["type"] == "system"]
    assert theirs["text"] == "RaidLeader is raiding with 3 viewers!" and theirs["session_id"] == target_session

    [event] = [e for e in heard if e.name == "raid"]
    assert event.room == f"live_{raider.user_id}" and wire_payload(event) == body  # the page gets the REST body
    assert sorted((e.room, e.record.sender.username) for e in heard if e.name == "message") == sorted(  # type: ignore[attr-defined]
        [(raider.user_id, "retake"), (target.user_id, "retake")]
    )
    pushed = [wire_payload(e) for e in heard if e.name == "agent_event"]
    by_type = {p["type"]: p for p in pushed if p["type"].startswith("raid.")}
    assert set(by_type) == {"raid.outgoing", "raid.incoming"}
    assert by_type["raid.outgoing"]["data"] == body and by_type["raid.incoming"]["data"] == body
    rooms = {e.room for e in heard if e.name == "agent_event" and wire_payload(e)["type"].startswith("raid.")}
    assert rooms == {f"agent_{raider.user_id}", f"agent_{target.user_id}"}


async def test_target_by_user_id_and_the_rate_limit(client: httpx.AsyncClient, register: Any) -> None:
    raider, _ = await live_agent(client, register)
    target, _ = await live_agent(client, register)
    first = await raid(client, raider, {"target": target.user_id})
    assert first.status_code == 200, first.text
    assert first.json()["target"]["agent_name"] == target.name and first.json()["viewers"] == 0
    again = await raid(client, raider, {"target": target.name})
    assert error(again) == (429, "rate_limited") and int(again.headers["Retry-After"]) >= 1
    # Another raider has its own budget.
    other, _ = await live_agent(client, register)
    assert (await raid(client, other, {"target": target.name})).status_code == 200
    lines = [c["text"] for c in await chat_lines(client, raider, raider.user_id) if c["type"] == "system"]
    assert lines == [f"Raiding {target.name} with 0 viewers"]  # the refused raid posted nothing


async def test_every_refusal_changes_nothing(client: httpx.AsyncClient, register: Any) -> None:
    raider, _ = await live_agent(client, register)
    target, _ = await live_agent(client, register)
    idle = await register()  # registered, never live
    opened = await register()  # a session open, no media yet
    assert (await client.post("/api/v1/agent/stream/start", headers=opened.headers)).status_code == 200
    viewer = await guest(client)

    for bad in ({}, {"target": ""}, {"target": "   "}, {"target": 42}, {"target": ["x"]}, {"target": "x" * 65}):
        assert error(await raid(client, raider, bad)) == (400, "invalid_target"), bad
    empty = await client.post("/api/v1/agent/raid", headers=raider.headers, content=b"")
    assert error(empty) == (400, "invalid_target")
    assert error(await raid(client, raider, {"target": "NoSuchAgent"})) == (404, "target_not_found")
    # A viewer is a user but not an agent: nobody to raid.
    assert error(await raid(client, raider, {"target": viewer.user["user_id"]})) == (404, "target_not_found")
    assert error(await raid(client, raider, {"target": raider.name.upper()})) == (400, "self_raid")
    assert error(await raid(client, idle, {"target": target.name})) == (409, "not_live")
    assert error(await raid(client, opened, {"target": target.name})) == (409, "not_live")
    assert error(await raid(client, raider, {"target": idle.name})) == (409, "target_not_live")
    assert error(await raid(client, raider, {"target": opened.name})) == (409, "target_not_live")
    no_token = await client.post("/api/v1/agent/raid", json={"target": target.name})
    assert no_token.status_code == 401

    for streamer in (raider, target, idle, opened):
        assert not [c for c in await chat_lines(client, raider, streamer.user_id) if c["type"] == "system"]
    # None of the refusals used the raider's one raid a minute up.
    assert (await raid(client, raider, {"target": target.name})).status_code == 200


async def test_a_target_live_on_another_node_can_be_raided(client: httpx.AsyncClient, register: Any) -> None:
    """Live means what every node reads: an open session whose media flows here or on the node in ``media_node``."""
    platform = platform_of(client)
    raider, _ = await live_agent(client, register)
    elsewhere = await register()
    session_id = (await client.post("/api/v1/agent/stream/start", headers=elsewhere.headers)).json()["session_id"]
    assert error(await raid(client, raider, {"target": elsewhere.name})) == (409, "target_not_live")
    async with platform.sessions() as db:  # what the node holding its publisher writes (streams.media_flowing)
        await db.execute(
            update(StreamSession).where(StreamSession.id == session_id).values(media_node="http://10.0.0.2:8000")
        )
        await db.commit()
    assert not platform.live.is_live(session_id)
    response = await raid(client, raider, {"target": elsewhere.name})
    assert response.status_code == 200, response.text
    [line] = [c for c in await chat_lines(client, raider, elsewhere.user_id) if c["type"] == "system"]
    assert line["session_id"] == session_id and line["text"].endswith("is raiding with 0 viewers!")


async def test_the_skill_tells_agents_about_raids(client: httpx.AsyncClient) -> None:
    md = (await client.get("/skill.md")).text
    assert "## Raids" in md and "`POST http://testserver/api/v1/agent/raid" in md and "`raid.incoming`" in md
    skill = (await client.get("/skill.json")).json()
    assert skill["version"] == "1.2.0" and skill["endpoints"]["raid"] == "POST /api/v1/agent/raid"


async def test_the_delay_and_the_rate_are_settings(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETAKE_RAID_DELAY_SECONDS", "2.5")
    monkeypatch.setenv("RETAKE_RAID_RATE", "2/minute")
    app = create_app(settings_factory())
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            http.app = app  # type: ignore[attr-defined]
            counter = iter(range(100))

            async def register(name: str | None = None) -> Any:
                name = name or f"delay_agent_{next(counter)}"
                body = {"agent_name": name, "wallet_address": VALID_WALLET, "ticker": "DLY"}
                answer = await http.post("/api/v1/agent/register", json=body)
                assert answer.status_code == 200, answer.text
                return AgentHandle(answer.json(), name)

            raider, _ = await live_agent(http, register)
            target, _ = await live_agent(http, register)
            first = await raid(http, raider, {"target": target.name})
            assert first.status_code == 200 and first.json()["seconds"] == 2.5, first.text
            assert (await raid(http, raider, {"target": target.name})).status_code == 200
            assert error(await raid(http, raider, {"target": target.name})) == (429, "rate_limited")
    with pytest.raises(ValueError, match="raid_rate"):
        settings_factory(raid_rate="often")
