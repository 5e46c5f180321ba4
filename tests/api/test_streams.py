"""RTMP keys, stream start/status/stop, and the ingest interface driven by a fake publisher."""

from __future__ import annotations

from typing import Any

import httpx

from retake.server.platform import Platform


def platform_of(client: httpx.AsyncClient) -> Platform:
    platform: Platform = client.app.state.platform  # type: ignore[attr-defined]
    return platform


class FakePublisher:
    """Stands in for the RTMP server: records which sessions were asked to close."""

    def __init__(self) -> None:
        self.closed: list[str] = []

    async def close_publisher(self, session_id: str) -> bool:
        self.closed.append(session_id)
        return True


async def test_rtmp_gives_a_new_key_each_call_and_revokes_idle_ones(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    first = (await client.post("/api/v1/agent/rtmp", headers=agent.headers)).json()
    second = (await client.post("/api/v1/agent/rtmp", headers=agent.headers)).json()
    assert first["url"] == "rtmp://testserver:1935/live"
    assert first["key"].startswith("sk_") and second["key"].startswith("sk_")
    assert first["key"] != second["key"]
    agents = platform_of(client).agents
    assert await agents.agent_for_stream_key(first["key"]) is None
    found = await agents.agent_for_stream_key(second["key"])
    assert found is not None and found[0].id == agent.body["agent_id"]


async def test_a_publishing_key_survives_a_new_rtmp_call(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    key = (await client.post("/api/v1/agent/rtmp", headers=agent.headers)).json()["key"]
    streams = platform_of(client).streams
    target = await streams.authorize_publish(key)
    assert target is not None
    await client.post("/api/v1/agent/rtmp", headers=agent.headers)
    assert await platform_of(client).agents.agent_for_stream_key(key) is not None


async def test_unknown_or_other_agents_keys_are_refused(client: httpx.AsyncClient, register: Any) -> None:
    streams = platform_of(client).streams
    assert await streams.authorize_publish("sk_doesnotexist") is None
    assert await streams.authorize_publish("") is None
    assert await streams.authorize_publish("rtk_" + "a" * 40) is None


async def test_full_lifecycle_with_fake_ingest(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    platform = platform_of(client)
    publisher = FakePublisher()
    platform.streams.publishers = publisher
    key = (await client.post("/api/v1/agent/rtmp", headers=agent.headers)).json()["key"]

    start = (await client.post("/api/v1/agent/stream/start", headers=agent.headers)).json()
    assert start["success"] is True
    assert set(start["token"]) == {"name", "ticker", "imageUrl", "tokenAddress", "tokenType", "poolAddress"}
    again = (await client.post("/api/v1/agent/stream/start", headers=agent.headers)).json()
    assert again["session_id"] == start["session_id"], "start is idempotent while a session is open"

    status = (await client.get("/api/v1/agent/stream/status", headers=agent.headers)).json()
    assert status == {
        "is_live": False,
        "viewers": 0,
        "uptime_seconds": 0,
        "token_address": "",
        "userDbId": agent.user_id,
        "session_id": start["session_id"],
        "health": None,  # measured only while the stream is live
        "warnings": [],  # operator notices (retake admin warn|shutdown); none here
        "restreams": [],  # pushes to other platforms on this node (restream); none here
    }
    assert (await client.get("/api/v1/users/live/")).json() == []
    assert (await client.get("/api/v1/sessions/active/")).json() == []

    target = await platform.streams.authorize_publish(key)
    assert target is not None and target.session_id == start["session_id"] and target.stream_id == agent.user_id
    assert (await client.get("/api/v1/agent/stream/status", headers=agent.headers)).json()["is_live"] is False

    events: list[Any] = []

    async def listen(event: Any) -> None:
        if event.name != "agent_event":  # push to agents re-publishes what concerns an agent
            events.append(event)

    platform.events.subscribe(listen)
    await platform.streams.media_flowing(target)
    status = (await client.get("/api/v1/agent/stream/status", headers=agent.headers)).json()
    assert status["is_live"] is True
    assert [e.name for e in events] == ["session_started"] and events[0].room == f"live_{agent.user_id}"

    platform.live.touch_viewer(agent.user_id, "viewer-a")
    platform.live.touch_viewer(agent.user_id, "viewer-b")
    platform.live.touch_viewer(agent.user_id, "viewer-a")
    assert (await client.get("/api/v1/agent/stream/status", headers=agent.headers)).json()["viewers"] == 2

    live = (await client.get("/api/v1/users/live/")).json()
    assert [u["user_id"] for u in live] == [agent.user_id]
    assert live[0]["viewer_count"] == 2 and live[0]["rank"] == 1 and live[0]["session_id"] == start["session_id"]
    active = (await client.get("/api/v1/sessions/active/")).json()
    assert active[0]["session_id"] == start["session_id"] and active[0]["status"] == "live"
    assert active[0]["playback"]["flv"] == f"http://testserver/live/{agent.user_id}.flv"
    one = await client.get(f"/api/v1/sessions/active/{agent.user_id}/")
    assert one.status_code == 200 and one.json()["streamer_id"] == agent.user_id

    stop = await client.post("/api/v1/agent/stream/stop", headers=agent.headers)
    assert stop.status_code == 200
    body = stop.json()
    assert body["status"] == "stopped" and body["viewers"] == 2 and body["duration_seconds"] >= 0
    assert publisher.closed == [start["session_id"]]
    assert await platform.agents.agent_for_stream_key(key) is None, "stop revokes the key"
    assert (await client.get("/api/v1/users/live/")).json() == []
    assert (await client.get(f"/api/v1/sessions/active/{agent.user_id}/")).status_code == 404
    status = (await client.get("/api/v1/agent/stream/status", headers=agent.headers)).json()
    assert status["is_live"] is False and status["session_id"] is None

    recorded = (await client.get(f"/api/v1/sessions/recorded/{agent.user_id}/")).json()
    assert [s["session_id"] for s in recorded["sessions"]] == [start["session_id"]]
    assert recorded["next_cursor"] is None and recorded["sessions"][0]["ended_at"].endswith("Z")

    next_start = (await client.post("/api/v1/agent/stream/start", headers=agent.headers)).json()
    assert next_start["session_id"] != start["session_id"]


async def test_stop_without_session_is_409(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    response = await client.post("/api/v1/agent/stream/stop", headers=agent.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "no_active_session"


async def test_publishing_before_start_opens_the_session(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    key = (await client.post("/api/v1/agent/rtmp", headers=agent.headers)).json()["key"]
    target = await platform_of(client).streams.authorize_publish(key)
    assert target is not None
    start = (await client.post("/api/v1/agent/stream/start", headers=agent.headers)).json()
    assert start["session_id"] == target.session_id


async def test_publisher_drop_keeps_session_for_grace_then_ends(settings_factory: Any) -> None:
    from asgi_lifespan import LifespanManager

    from retake.server.app import create_app

    # 1.5 s: the reconnect below must come within the grace even on a loaded machine (0.3 s was not always enough).
    app = create_app(settings_factory(reconnect_grace_seconds=1.5))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            http.app = app  # type: ignore[attr-defined]
            body = (
                await http.post(
                    "/api/v1/agent/register",
                    json={
                        "agent_name": "grace_bot",
                        "wallet_address": "11111111111111111111111111111111",
                        "ticker": "G",
                    },
                )
            ).json()
            headers = {"Authorization": f"Bearer {body['access_token']}"}
            key = (await http.post("/api/v1/agent/rtmp", headers=headers)).json()["key"]
            streams = platform_of(http).streams
            target = await streams.authorize_publish(key)
            assert target is not None
            await streams.media_flowing(target)
            await streams.publisher_left(target, "connection lost")
            status = (await http.get("/api/v1/agent/stream/status", headers=headers)).json()
            assert status["is_live"] is False and status["session_id"] == target.session_id
            # reconnect within grace: same key, same session
            again = await streams.authorize_publish(key)
            assert again is not None and again.session_id == target.session_id
            await streams.media_flowing(again)
            await streams.publisher_left(again, "connection lost")
            import asyncio

            await asyncio.sleep(3.0)
            status = (await http.get("/api/v1/agent/stream/status", headers=headers)).json()
            assert status["session_id"] is None, "session ended after the grace period"


async def test_status_shows_the_health_of_the_live_stream(client: httpx.AsyncClient, register: Any) -> None:
    from retake.av.message import MediaMessage
    from tests.media.conftest import ASC_LC_44100_STEREO, AVCC_320X240

    agent = await register()
    platform = platform_of(client)
    key = (await client.post("/api/v1/agent/rtmp", headers=agent.headers)).json()["key"]
    target = await platform.streams.authorize_publish(key)
    assert target is not None
    platform.media.begin(target.stream_id, target.session_id)  # what the ingest bridge does on a publish
    stream = platform.media.live_stream(target.stream_id)
    assert stream is not None
    stream.publish(MediaMessage("video", 0, bytes([0x17, 0, 0, 0, 0]) + AVCC_320X240))
    stream.publish(MediaMessage("audio", 0, bytes([0xAF, 0]) + ASC_LC_44100_STEREO))
    status = (await client.get("/api/v1/agent/stream/status", headers=agent.headers)).json()
    assert status["is_live"] is False and status["health"] is None, "not live yet: no health"

    await platform.streams.media_flowing(target)
    status = (await client.get("/api/v1/agent/stream/status", headers=agent.headers)).json()
    health = status["health"]
    assert health["video_codec"] == "h264" and health["audio_codec"] == "aac"
    assert (health["width"], health["height"]) == (320, 240)
    assert health["codecs"] == "avc1.64000d,mp4a.40.2"
    assert (health["publishes"], health["reconnects"]) == (1, 0)
    assert health["frame_rate"] is None, "under a second of media: rates are not known yet"
    assert not (health["frozen"] or health["black"] or health["silent"] or health["low_bitrate"])
    assert status["warnings"] == []
    metrics = (await client.get("/metrics")).text
    assert 'retake_stream_health_streams{condition="frozen"} 0.0' in metrics
    assert "retake_stream_reconnects 0.0" in metrics
