"""Owner session controls (/sessions/start, PUT, /end, DELETE) and the LiveKit join token, on both databases."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from asgi_lifespan import LifespanManager
from livekit.api import TokenVerifier

from retake.config import Settings
from retake.server.app import create_app
from tests.api.test_streams import FakePublisher
from tests.identity.support import guest, platform_of, row_counts

S = "/api/v1/sessions"


def in_future(hours: float = 2) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


async def test_start_opens_then_updates_one_session(client: httpx.AsyncClient) -> None:
    owner = await guest(client)
    first = await client.post(
        f"{S}/start", json={"title": "Hello", "category": "Games", "tags": ["a", "b", "A"]}, headers=owner.headers
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["status"] == "open" and body["streamer_id"] == owner.id and body["tags"] == ["a", "b"]
    assert body["title"] == "Hello" and body["category"] == "Games" and body["started_at"].endswith("Z")
    second = await client.post(
        f"{S}/start", json={"title": "Renamed", "category": "", "tags": []}, headers=owner.headers
    )
    assert second.json()["session_id"] == body["session_id"] and second.json()["title"] == "Renamed"
    assert (await row_counts(client))["stream_sessions"] == 1


async def test_schedule_then_start_promotes_it(client: httpx.AsyncClient) -> None:
    owner = await guest(client)
    sid = (await client.post(f"{S}/start", json={"title": "Later"}, headers=owner.headers)).json()["session_id"]
    when = in_future()
    scheduled = await client.put(f"{S}/{sid}", json={"scheduled_for": when, "title": "Tomorrow"}, headers=owner.headers)
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["status"] == "scheduled" and scheduled.json()["title"] == "Tomorrow"
    listed = (await client.get(f"{S}/scheduled/")).json()["sessions"]
    assert [s["session_id"] for s in listed] == [sid] and listed[0]["scheduled_for"].endswith("Z")
    assert [s["session_id"] for s in (await client.get(f"{S}/scheduled/{owner.id}/")).json()["sessions"]] == [sid]
    started = await client.post(f"{S}/start", json={"title": "Now"}, headers=owner.headers)
    assert started.json()["session_id"] == sid and started.json()["status"] == "open"
    assert (await client.get(f"{S}/scheduled/")).json()["sessions"] == []


async def test_edit_rules(client: httpx.AsyncClient) -> None:
    owner, stranger = await guest(client), await guest(client)
    sid = (await client.post(f"{S}/start", json={"title": "T"}, headers=owner.headers)).json()["session_id"]
    edit = await client.put(
        f"{S}/{sid}",
        json={"category": "Art", "tags": ["x"], "thumbnail_url": "https://example.com/t.png"},
        headers=owner.headers,
    )
    assert edit.status_code == 200 and edit.json()["title"] == "T" and edit.json()["category"] == "Art"
    assert edit.json()["thumbnail_url"] == "https://example.com/t.png"
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    bad = [
        ({"title": ""}, 400, "invalid_title"),
        ({"title": "t" * 201}, 400, "invalid_title"),
        ({"category": "c" * 65}, 400, "invalid_category"),
        ({"tags": ["ok", ""]}, 400, "invalid_tags"),
        ({"tags": [f"t{i}" for i in range(11)]}, 400, "invalid_tags"),
        ({"tags": "notalist"}, 400, "validation_error"),
        ({"thumbnail_url": "ftp://x"}, 400, "invalid_thumbnail_url"),
        ({"scheduled_for": past}, 400, "invalid_scheduled_for"),
        ({"scheduled_for": "tomorrow"}, 400, "validation_error"),
        ({"scheduled_for": "0001-01-01T00:00:00+05:00"}, 400, "invalid_scheduled_for"),
        ({"title": "nul\x00byte"}, 400, "invalid_title"),
        ({"tags": ["nul\x00"]}, 400, "invalid_tags"),
    ]
    for payload, status, code in bad:
        response = await client.put(f"{S}/{sid}", json=payload, headers=owner.headers)
        assert (response.status_code, response.json()["code"]) == (status, code), (payload, response.text)
    for payload in ({"title": ""}, {"tags": [""]}):
        response = await client.post(f"{S}/start", json=payload, headers=owner.headers)
        assert response.status_code == 400, payload
    foreign = await client.put(f"{S}/{sid}", json={"title": "mine now"}, headers=stranger.headers)
    assert foreign.status_code == 403 and foreign.json()["code"] == "not_owner"
    assert (await client.put(f"{S}/nul%00byte", json={"title": "x"}, headers=owner.headers)).status_code == 400
    assert (await client.options(f"{S}/{sid}")).headers["allow"] == "DELETE, PUT"
    assert (await client.get(f"{S}/start")).headers["allow"] == "POST", "the literal path wins over {session_id}"
    missing = await client.put(f"{S}/nope", json={"title": "x"}, headers=owner.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "session_not_found"
    assert (await client.put(f"{S}/{sid}", json={"title": "x"})).status_code == 401
    current = (await client.post(f"{S}/start", json={"title": "T"}, headers=owner.headers)).json()
    assert current["category"] == "Art" and current["tags"] == ["x"], "refused edits change nothing"


async def test_end_and_delete(client: httpx.AsyncClient) -> None:
    owner, stranger = await guest(client), await guest(client)
    sid = (await client.post(f"{S}/start", json={"title": "T"}, headers=owner.headers)).json()["session_id"]
    assert (await client.post(f"{S}/{sid}/end", headers=stranger.headers)).status_code == 403
    assert (await client.post(f"{S}/unknown/end", headers=owner.headers)).status_code == 404
    ended = await client.post(f"{S}/{sid}/end", headers=owner.headers)
    assert ended.status_code == 200 and ended.json()["status"] == "ended" and ended.json()["ended_at"]
    again = await client.post(f"{S}/{sid}/end", headers=owner.headers)
    assert again.status_code == 200 and again.json()["ended_at"] == ended.json()["ended_at"]
    recorded = (await client.get(f"{S}/recorded/{owner.id}/")).json()["sessions"]
    assert [s["session_id"] for s in recorded] == [sid]
    late = await client.put(f"{S}/{sid}", json={"scheduled_for": in_future()}, headers=owner.headers)
    assert late.status_code == 409 and late.json()["code"] == "session_ended"

    planned = (await client.post(f"{S}/start", json={"title": "Next"}, headers=owner.headers)).json()["session_id"]
    assert planned != sid
    await client.put(f"{S}/{planned}", json={"scheduled_for": in_future()}, headers=owner.headers)
    not_started = await client.post(f"{S}/{planned}/end", headers=owner.headers)
    assert not_started.status_code == 409 and not_started.json()["code"] == "session_not_started"

    assert (await client.delete(f"{S}/{planned}", headers=stranger.headers)).status_code == 403
    assert (await client.delete(f"{S}/nope", headers=owner.headers)).status_code == 404
    before = await row_counts(client)
    gone = await client.delete(f"{S}/{planned}", headers=owner.headers)
    assert gone.status_code == 200 and gone.json() == {"deleted": True, "session_id": planned}
    assert (await row_counts(client))["stream_sessions"] == before["stream_sessions"] - 1
    assert (await client.delete(f"{S}/{planned}", headers=owner.headers)).status_code == 404
    assert (await client.get(f"{S}/scheduled/")).json()["sessions"] == []


async def test_agent_sessions_share_the_stream_lifecycle(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    platform = platform_of(client)
    publisher = FakePublisher()
    platform.streams.publishers = publisher
    key = (await client.post("/api/v1/agent/rtmp", headers=agent.headers)).json()["key"]
    started = await client.post(f"{S}/start", json={"title": "Agent show", "tags": ["ai"]}, headers=agent.headers)
    assert started.status_code == 200, started.text
    sid = started.json()["session_id"]
    via_agent_api = (await client.post("/api/v1/agent/stream/start", headers=agent.headers)).json()
    assert via_agent_api["session_id"] == sid
    target = await platform.streams.authorize_publish(key)
    assert target is not None and target.session_id == sid
    await platform.streams.media_flowing(target)
    live = (await client.get(f"{S}/active/{agent.user_id}/")).json()
    assert live["title"] == "Agent show" and live["tags"] == ["ai"]
    started_live = await client.put(f"{S}/{sid}", json={"scheduled_for": in_future()}, headers=agent.headers)
    assert started_live.status_code == 409 and started_live.json()["code"] == "session_started"

    ended = await client.post(f"{S}/{sid}/end", headers=agent.headers)
    assert ended.status_code == 200 and ended.json()["status"] == "ended"
    assert publisher.closed == [sid], "the publisher is disconnected"
    assert await platform.agents.agent_for_stream_key(key) is None, "and its key revoked"
    status = (await client.get("/api/v1/agent/stream/status", headers=agent.headers)).json()
    assert status["session_id"] is None and status["is_live"] is False


async def test_join_token_for_anonymous_and_signed_in_viewers(client: httpx.AsyncClient) -> None:
    owner, viewer = await guest(client), await guest(client)
    sid = (await client.post(f"{S}/start", json={"title": "T"}, headers=owner.headers)).json()["session_id"]
    pair = json.loads((platform_of(client).settings.data_dir / "keys" / "livekit.json").read_text())
    verifier = TokenVerifier(pair["api_key"], pair["api_secret"])

    anonymous = await client.get(f"{S}/{sid}/join/")
    assert anonymous.status_code == 200, anonymous.text
    body = anonymous.json()
    assert body["room"] == sid and body["url"] == "" and body["identity"].startswith("anon_")
    assert body["playback"] == {
        "flv": f"http://testserver/live/{owner.id}.flv",
        "hls": f"http://testserver/live/{owner.id}/index.m3u8",
    }
    claims = verifier.verify(body["token"])
    assert claims.identity == body["identity"]
    grants = claims.video
    assert grants is not None and grants.room_join is True and grants.room == sid
    assert grants.can_subscribe is True and grants.can_publish is False and grants.can_publish_data is False
    raw = jwt.decode(body["token"], pair["api_secret"], algorithms=["HS256"], issuer=pair["api_key"])
    assert raw["video"] == {
        "roomJoin": True,
        "room": sid,
        "canPublish": False,
        "canSubscribe": True,
        "canPublishData": False,
    }
    assert raw["exp"] > raw["nbf"]

    named = (await client.get(f"{S}/{sid}/join/", headers=viewer.headers)).json()
    named_claims = verifier.verify(named["token"])
    assert named["identity"] == viewer.id and named_claims.identity == viewer.id
    assert named_claims.name == viewer.user["username"]

    assert (await client.get(f"{S}/{sid}/join/", headers={"Authorization": "Bearer bad"})).status_code == 401
    assert (await client.get(f"{S}/unknown/join/")).status_code == 404
    await client.post(f"{S}/{sid}/end", headers=owner.headers)
    ended = await client.get(f"{S}/{sid}/join/")
    assert ended.status_code == 409 and ended.json()["code"] == "session_ended"


async def test_join_with_configured_livekit(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(
        livekit_api_key="APIconfigured", livekit_api_secret="s" * 40, livekit_url="wss://lk.example.com"
    )
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            owner = await guest(http)
            sid = (await http.post(f"{S}/start", json={"title": "T"}, headers=owner.headers)).json()["session_id"]
            body = (await http.get(f"{S}/{sid}/join/")).json()
    assert body["url"] == "wss://lk.example.com"
    claims = TokenVerifier("APIconfigured", "s" * 40).verify(body["token"])
    assert claims.video is not None and claims.video.room == sid and claims.video.can_publish is False
    assert not (settings.data_dir / "keys" / "livekit.json").exists(), "no platform pair when one is configured"
