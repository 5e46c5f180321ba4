"""Issue 3's "done when" against a real server: the skill's exact ffmpeg command on Xvfb goes live fast,
ffprobe reads FLV and LL-HLS as H.264 + AAC, a viewer is counted, stop disconnects the encoder, and the
recording plays after the end."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.media_support import (
    codecs,
    decode_errors,
    ffprobe,
    lavfi_publisher,
    registered,
    running,
    skill_ffmpeg,
    status,
    wait_until,
    xvfb,
)
from tests.support import FakeOEmbed


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module: each test uses its own agent, and surviving the others' garbage and takeovers is
    part of what is shown (the first test, which lists who is live, runs first)."""
    with FakeOEmbed().running() as fake:
        srv = start_server(tmp_path_factory.mktemp("live_media"), fake.url)
        yield srv
        stop_server(srv)
        print("---- retake serve log (tail) ----")
        print(srv.log()[-6000:])


def test_skill_command_goes_live_and_plays_everywhere(server: Server, tmp_path: Path) -> None:
    with httpx.Client(base_url=server.base, timeout=15) as http:
        creds, auth = registered(http, "SkillStreamer")
        rtmp = http.post("/api/v1/agent/rtmp", headers=auth).json()
        start = http.post("/api/v1/agent/stream/start", headers=auth).json()
        user = creds["userDbId"]
        with xvfb() as display, running(skill_ffmpeg(display, f"{rtmp['url']}/{rtmp['key']}")) as encoder:
            took = wait_until(lambda: status(http, auth)["is_live"], timeout=15)
            assert took < 10, f"is_live took {took:.1f} s"
            assert [u["user_id"] for u in http.get("/api/v1/users/live/").json()] == [user]
            assert http.get("/api/v1/sessions/active/").json()[0]["session_id"] == start["session_id"]

            flv = ffprobe(f"{server.base}/live/{user}.flv", "-read_intervals", "%+2")
            assert codecs(flv) == {"h264", "aac"}
            video = next(s for s in flv["streams"] if s["codec_type"] == "video")
            assert (video["width"], video["height"]) == (1280, 720)
            assert decode_errors(f"{server.base}/live/{user}.flv", seconds=2) == ""

            # a viewer holding the FLV connection open is counted
            viewer = threading.Thread(target=_watch_flv, args=(f"{server.base}/live/{user}.flv", 4.0), daemon=True)
            viewer.start()
            wait_until(lambda: status(http, auth)["viewers"] >= 1, timeout=10)

            playlist = http.get(f"/live/{user}/index.m3u8", timeout=20)
            assert playlist.status_code == 200, playlist.text
            text = playlist.text
            for tag in (
                "#EXT-X-PART-INF",
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES",
                "#EXT-X-PRELOAD-HINT",
                "#EXT-X-MAP",
            ):
                assert tag in text, tag
            hls = ffprobe(f"{server.base}/live/{user}/index.m3u8", timeout=40)
            assert codecs(hls) == {"h264", "aac"}
            time.sleep(2.5)  # let the recording hold a couple of segments

            stop = http.post("/api/v1/agent/stream/stop", headers=auth).json()
            assert stop["status"] == "stopped" and stop["viewers"] >= 1 and stop["duration_seconds"] >= 2
            encoder.wait(timeout=10)  # stop disconnected the encoder: ffmpeg exits on its own
            assert encoder.returncode is not None
            viewer.join(timeout=10)

        assert http.get(f"/live/{user}.flv").status_code == 404
        recorded = http.get(f"/api/v1/sessions/recorded/{user}/").json()["sessions"]
        assert recorded[0]["session_id"] == start["session_id"]
        recording_url = recorded[0]["recording_url"]
        assert recording_url == f"{server.base}/recordings/{start['session_id']}/index.m3u8"
        vod = ffprobe(recording_url)
        assert codecs(vod) == {"h264", "aac"} and float(vod["format"]["duration"]) >= 2
        assert decode_errors(recording_url, seconds=60) == ""
        # the key was revoked by stop: a new publish with it is refused
        with running(lavfi_publisher(f"{rtmp['url']}/{rtmp['key']}", seconds=3)) as again:
            again.wait(timeout=20)
            assert again.returncode != 0
        assert status(http, auth)["is_live"] is False


def test_wrong_key_is_refused_and_server_survives_garbage(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.rtmp_port), timeout=5) as raw:
        raw.sendall(b"\x03" + b"\xff" * 4000)  # a C0 and nonsense: this connection alone is closed
    with running(lavfi_publisher(f"rtmp://127.0.0.1:{server.rtmp_port}/live/sk_not_a_real_key", seconds=3)) as bad:
        bad.wait(timeout=20)
        assert bad.returncode != 0
    assert httpx.get(f"{server.base}/health", timeout=5).status_code == 200


def test_reconnect_resumes_and_takeover(server: Server) -> None:
    with httpx.Client(base_url=server.base, timeout=15) as http:
        _creds, auth = registered(http, "Reconnector")
        rtmp = http.post("/api/v1/agent/rtmp", headers=auth).json()
        target = f"{rtmp['url']}/{rtmp['key']}"
        with running(lavfi_publisher(target)) as first:
            wait_until(lambda: status(http, auth)["is_live"], timeout=15)
            session = status(http, auth)["session_id"]
            with running(lavfi_publisher(target)):
                first.wait(timeout=10)  # taken over: the old encoder is disconnected
                time.sleep(1.0)
                now = status(http, auth)
                assert now["is_live"] and now["session_id"] == session
        # both encoders gone: within the grace period the session stays open and a reconnect resumes it
        time.sleep(0.5)
        assert status(http, auth)["session_id"] == session
        with running(lavfi_publisher(target)):
            wait_until(lambda: status(http, auth)["is_live"], timeout=15)
            assert status(http, auth)["session_id"] == session


def _watch_flv(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    try:
        with httpx.stream("GET", url, timeout=10) as response:
            for _ in response.iter_bytes():
                if time.monotonic() > deadline:
                    break
    except httpx.HTTPError:
        pass
