"""The stream services called directly (no HTTP): an agent's start/status/stop, the ingest's view
(authorize, media, publisher gone), and sessions driven by their owner, with the typed results they answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from retake.accounts.agents import AuthedAgent
from retake.errors import Conflict, Forbidden, NotFound
from retake.streams.lifecycle import Started, Stopped, StreamStatus
from retake.streams.owner import OwnSession, SessionEdit
from tests.support import FakeOEmbed
from tests.unit.services import Services, services


@pytest.fixture
async def svc(database_url: str, oembed: FakeOEmbed, tmp_path: Path) -> AsyncIterator[Services]:
    async with services(database_url, oembed.url, tmp_path / "recordings") as built:
        yield built


async def agent(svc: Services, name: str, *, verified: bool = False) -> AuthedAgent:
    who = await svc.agents.authenticate(await svc.register(name, image_url="https://example.com/p.png"))
    if verified:
        await svc.agents.operator_verify(name)
    return who


async def test_start_is_idempotent_and_status_follows_the_session(svc: Services) -> None:
    who = await agent(svc, "alpha")
    idle = await svc.streams.status(who)
    assert idle == StreamStatus(
        is_live=False, viewers=0, uptime_seconds=0, token_address="", user_id=who.user_id, session_id=None
    )
    first = await svc.streams.start(who)
    assert isinstance(first, Started) and first.token is None, "no token before verification"
    assert (await svc.streams.start(who)).session_id == first.session_id
    opened = await svc.streams.status(who)
    assert opened.session_id == first.session_id and not opened.is_live, "open, but no media yet"


async def test_concurrent_starts_open_one_session(svc: Services) -> None:
    who = await agent(svc, "bravo")
    results = await asyncio.gather(*(svc.streams.start(who) for _ in range(5)))
    assert len({result.session_id for result in results}) == 1


async def test_a_verified_agent_gets_its_token_on_the_first_start(svc: Services) -> None:
    who = await agent(svc, "charlie", verified=True)
    started = await svc.streams.start(who)
    assert started.token is not None
    assert (started.token.name, started.token.ticker, started.token.image_url) == (
        "charlie",
        "TST",
        "https://example.com/p.png",
    )
    assert (await svc.streams.status(who)).token_address == started.token.token_address
    assert (await svc.streams.start(who)).token == started.token, "launched once"


async def test_without_a_session_stop_and_thumbnail_are_conflicts_naming_no_path(svc: Services) -> None:
    who = await agent(svc, "delta")
    for attempt in (
        svc.streams.stop(who),
        svc.streams.require_open_session(who),
        svc.streams.set_thumbnail(who, "https://example.com/t.png"),
    ):
        with pytest.raises(Conflict) as refused:
            await attempt
        assert refused.value.code == "no_active_session"
        assert refused.value.message == "no active session", "the HTTP edge adds which call to make"


async def test_publish_media_and_stop(svc: Services) -> None:
    who = await agent(svc, "echo")
    key = await svc.agents.new_stream_key(who.agent_id)
    assert await svc.streams.authorize_publish("sk_unknown") is None
    target = await svc.streams.authorize_publish(key)  # an encoder may connect before stream/start
    assert target is not None and (target.stream_id, target.agent_id) == (who.user_id, who.agent_id)
    assert (await svc.streams.start(who)).session_id == target.session_id
    await svc.streams.media_flowing(target)
    live = await svc.streams.status(who)
    assert live.is_live and live.session_id == target.session_id
    assert await svc.streams.media_node_of(who.user_id) == "http://node.test"
    started_events = [event for event in svc.heard if event.name == "session_started"]
    assert [event.record.session_id for event in started_events] == [target.session_id]
    svc.live.touch_viewer(who.user_id, "viewer-1")
    stopped = await svc.streams.stop(who)
    assert isinstance(stopped, Stopped) and stopped.peak_viewers == 1 and stopped.duration_seconds >= 0
    assert (await svc.streams.status(who)).session_id is None
    assert await svc.agents.agent_for_stream_key(key) is None, "stop revokes the stream key"
    assert await svc.streams.media_node_of(who.user_id) is None


async def test_a_publisher_that_does_not_come_back_ends_the_session(svc: Services) -> None:
    who = await agent(svc, "foxtrot")
    target = await svc.streams.authorize_publish(await svc.agents.new_stream_key(who.agent_id))
    assert target is not None
    await svc.streams.media_flowing(target)
    await svc.streams.publisher_left(target, "disconnected")
    assert (await svc.streams.status(who)).session_id == target.session_id, "kept open for the grace period"
    for _ in range(100):  # grace is 0.05 s here
        if (await svc.streams.status(who)).session_id is None:
            break
        await asyncio.sleep(0.02)
    assert (await svc.streams.status(who)).session_id is None


async def test_owner_sessions_answer_own_sessions(svc: Services) -> None:
    host = await svc.viewer("golf_host")
    other = await svc.viewer("golf_other")
    opened = await svc.owned.start(host, "  My show ", "music", ["a", "A", "b"])
    assert isinstance(opened, OwnSession)
    assert (opened.streamer_id, opened.title, opened.category, opened.tags, opened.status) == (
        host.id,
        "My show",
        "music",
        ("a", "b"),
        "open",
    )
    assert opened.started_at is not None and opened.ended_at is None
    assert (await svc.owned.start(host, "Renamed", None, None)).session_id == opened.session_id
    edited = await svc.owned.update(host, opened.session_id, SessionEdit(tags=["c"], thumbnail_url=""))
    assert (edited.title, edited.tags, edited.thumbnail_url) == ("Renamed", ("c",), None)
    with pytest.raises(Forbidden):
        await svc.owned.update(other, opened.session_id, SessionEdit(title="mine"))
    ended = await svc.owned.end(host, opened.session_id)
    assert ended.status == "ended" and ended.ended_at is not None
    assert (await svc.owned.end(host, opened.session_id)) == ended, "ending twice is not an error"
    await svc.owned.delete(host, opened.session_id)
    with pytest.raises(NotFound):
        await svc.owned.get(opened.session_id)


async def test_an_agents_owner_session_is_its_stream_session(svc: Services) -> None:
    who = await agent(svc, "hotel")
    opened = await svc.owned.start(who.user, "Hotel live", None, None)
    assert (await svc.streams.status(who)).session_id == opened.session_id
    ended = await svc.owned.end(who.user, opened.session_id)
    assert ended.status == "ended"
    assert (await svc.streams.status(who)).session_id is None
