"""Clips over the API on both databases: real media (an ffmpeg-made FLV published into the node's playback, so
the recorder writes real segments), real ffmpeg remuxes; validation, 404s, the rate limit, pagination, and
deletion with the session."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from retake.events import PlatformEvent
from retake.server.realtime.wire import wire_payload
from tests.api.test_streams import platform_of
from tests.identity.support import guest
from tests.media.conftest import read_flv_messages, require_tool


@pytest.fixture(scope="session")
def twelve_seconds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s of 320x240 H.264 (a keyframe every second) + AAC, as an agent's encoder sends it."""
    out = tmp_path_factory.mktemp("clips") / "live.flv"
    argv = [require_tool("ffmpeg"), "-nostdin", "-v", "error", "-y"]
    argv += ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=f=440:r=44100"]
    argv += ["-t", "12", "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p"]
    argv += ["-g", "30", "-c:a", "aac", "-f", "flv", str(out)]
    subprocess.run(argv, check=True, timeout=60, capture_output=True)
    return out


async def go_live(client: httpx.AsyncClient, register: Any, flv: Path) -> tuple[Any, str]:
    """An agent whose session is live on this node with 12 s of media recorded."""
    platform = platform_of(client)
    agent = await register()
    key = (await client.post("/api/v1/agent/rtmp", headers=agent.headers)).json()["key"]
    session_id = (await client.post("/api/v1/agent/stream/start", headers=agent.headers)).json()["session_id"]
    target = await platform.streams.authorize_publish(key)
    assert target is not None
    platform.media.begin(target.stream_id, target.session_id)
    stream = platform.media.live_stream(target.stream_id)
    assert stream is not None
    for message in read_flv_messages(flv):
        stream.publish(message)
    await platform.streams.media_flowing(target)
    return agent, session_id


def probe(path: Path) -> dict[str, Any]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def local(client: httpx.AsyncClient, url: str) -> Path:
    """The file behind a /media/… URL of this node."""
    data_dir: Path = platform_of(client).settings.data_dir
    return data_dir / "media" / url.split("/media/", 1)[1]


async def test_an_agent_clip_is_an_mp4_with_a_thumbnail(
    client: httpx.AsyncClient, register: Any, twelve_seconds: Path
) -> None:
    agent, session_id = await go_live(client, register, twelve_seconds)
    heard: list[PlatformEvent] = []

    async def listen(event: PlatformEvent) -> None:
        heard.append(event)

    platform_of(client).events.subscribe(listen)
    response = await client.post("/api/v1/agent/clips", headers=agent.headers, json={"seconds": 5, "title": "wow"})
    assert response.status_code == 200, response.text
    clip = response.json()
    assert clip["session_id"] == session_id and clip["streamer_id"] == agent.user_id
    assert clip["title"] == "wow" and clip["created_by"] == agent.user_id and clip["username"] == agent.name
    assert clip["url"] == f"http://testserver/clip/{clip['clip_id']}"
    assert abs(clip["duration_seconds"] - 5) < 0.01
    video = probe(local(client, clip["video_url"]))
    assert {s["codec_name"] for s in video["streams"]} == {"h264", "aac"}
    assert abs(float(video["format"]["duration"]) - 5) < 1.1
    assert local(client, clip["thumbnail_url"]).read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG
    assert (await client.get(clip["video_url"].removeprefix("http://testserver"))).status_code == 200
    assert (await client.get(f"/api/v1/clips/{clip['clip_id']}")).json() == clip
    assert [(e.name, e.room) for e in heard if e.name == "clip_created"] == [("clip_created", f"live_{agent.user_id}")]
    assert any(e.name == "agent_event" and wire_payload(e).get("type") == "clip.created" for e in heard)

    # An empty body asks for 30 s: the clip is what is recorded so far (whole segments).
    empty = await client.post("/api/v1/agent/clips", headers=agent.headers, content=b"")
    assert empty.status_code == 200, empty.text
    assert 9.5 <= empty.json()["duration_seconds"] <= 12 and empty.json()["title"] == f"{agent.name} clip"


async def test_validation_and_not_found(client: httpx.AsyncClient, register: Any, twelve_seconds: Path) -> None:
    agent, session_id = await go_live(client, register, twelve_seconds)
    viewer = await guest(client)
    auth = {"Authorization": f"Bearer {viewer.token}"}
    for seconds in (4, 4.99, 121, -1):
        response = await client.post("/api/v1/agent/clips", headers=agent.headers, json={"seconds": seconds})
        assert response.status_code == 400 and "seconds" in response.json()["error"], response.text
        assert response.json()["code"] == "invalid_seconds"
    response = await client.post(f"/api/v1/sessions/{session_id}/clips", headers=auth, json={"seconds": "many"})
    assert response.status_code == 400 and "seconds" in response.json()["error"]
    response = await client.post(f"/api/v1/sessions/{session_id}/clips", headers=auth, json={"title": "x" * 101})
    assert response.status_code == 400 and response.json()["code"] == "invalid_title"
    assert (await client.post(f"/api/v1/sessions/{session_id}/clips", json={})).status_code == 401

    missing = await client.post("/api/v1/sessions/00000000-0000-0000-0000-000000000000/clips", headers=auth)
    assert missing.status_code == 404 and missing.json()["code"] == "session_not_found"
    assert (await client.get("/api/v1/clips/nope")).json()["code"] == "clip_not_found"
    assert (await client.get("/api/v1/clips/nope")).status_code == 404
    assert (await client.get("/api/v1/users/nobody/clips")).status_code == 404
    assert (await client.get(f"/api/v1/users/{agent.user_id}/clips?cursor=%%%")).status_code == 400
    assert (await client.get(f"/api/v1/users/{agent.user_id}/clips?limit=101")).status_code == 400

    offline = await register()  # an open session without media is not live
    await client.post("/api/v1/agent/stream/start", headers=offline.headers)
    response = await client.post("/api/v1/agent/clips", headers=offline.headers, json={"seconds": 5})
    assert response.status_code == 409 and response.json()["code"] == "not_live"
    idle = await register()
    response = await client.post("/api/v1/agent/clips", headers=idle.headers, json={"seconds": 5})
    assert response.status_code == 409 and response.json()["code"] == "no_active_session"


async def test_viewer_clips_are_rate_limited_paginated_and_deleted_with_the_session(
    client: httpx.AsyncClient, register: Any, twelve_seconds: Path
) -> None:
    agent, session_id = await go_live(client, register, twelve_seconds)
    viewer = await guest(client)
    auth = {"Authorization": f"Bearer {viewer.token}"}
    made = []
    for _ in range(3):  # RETAKE_CLIP_RATE defaults to 3/minute
        response = await client.post(f"/api/v1/sessions/{session_id}/clips", headers=auth, json={"seconds": 5})
        assert response.status_code == 200, response.text
        assert response.json()["created_by"] == viewer.user["user_id"]
        made.append(response.json()["clip_id"])
    limited = await client.post(f"/api/v1/sessions/{session_id}/clips", headers=auth, json={"seconds": 5})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert (await client.post("/api/v1/agent/clips", headers=agent.headers, json={"seconds": 6})).status_code == 200

    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
        page = (await client.get(f"/api/v1/users/{agent.user_id}/clips{query}")).json()
        assert len(page["clips"]) <= 2
        seen += [item["clip_id"] for item in page["clips"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 4 and set(made) <= set(seen) and len(set(seen)) == 4
    assert seen[1:] == list(reversed(made)), "newest first"
    files = [local(client, f"/media/clips/{clip_id}{ext}") for clip_id in seen for ext in (".mp4", ".jpg")]
    assert all(path.is_file() for path in files)

    stranger = await client.delete(f"/api/v1/sessions/{session_id}", headers=auth)
    assert stranger.status_code == 403
    assert (await client.delete(f"/api/v1/sessions/{session_id}", headers=agent.headers)).status_code == 200
    assert not any(path.exists() for path in files)
    assert (await client.get(f"/api/v1/users/{agent.user_id}/clips")).json() == {"clips": [], "next_cursor": None}
    assert (await client.get(f"/api/v1/clips/{seen[0]}")).status_code == 404
