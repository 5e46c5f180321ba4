"""``retake serve --demo`` (RETAKE_DEMO=1): the demo agent goes live on its own, chats, ends its ffmpeg by PID
on shutdown (keeping the recording), and comes back as the same agent on the next start."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx

from tests.e2e.conftest import start_server, stop_server
from tests.e2e.media_support import codecs, ffprobe, wait_until
from tests.support import FakeOEmbed

DEMO = "RetakeDemo"


def _live_demo(base: str) -> dict[str, object] | None:
    live = httpx.get(f"{base}/api/v1/users/live/", timeout=5).json()
    return next((item for item in live if item["username"] == DEMO), None)


def _ffmpeg_pids(log: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"demo agent: ffmpeg started \(pid (\d+)\)", log)]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie until its parent (the server, now gone) is reaped; /proc tells them apart
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z"


def test_demo_mode_goes_live_chats_and_cleans_up(tmp_path: Path, oembed_server: FakeOEmbed) -> None:
    server = start_server(tmp_path, oembed_server.url, RETAKE_DEMO="1")
    try:
        wait_until(lambda: _live_demo(server.base) is not None, timeout=20)
        demo = _live_demo(server.base)
        assert demo is not None and demo["ticker"] == "DEMO"
        user_id = str(demo["user_id"])
        assert httpx.get(f"{server.base}/{DEMO}", headers={"Accept": "text/html"}).status_code == 200
        probe = ffprobe(f"{server.base}/live/{user_id}.flv", "-read_intervals", "%+1")
        assert codecs(probe) == {"h264", "aac"}
        chats = httpx.get(f"{server.base}/api/v1/chat/", params={"streamer_id": user_id}).json()["chats"]
        assert chats and chats[0]["sender_username"] == DEMO
        first_pids = _ffmpeg_pids(server.log())
        assert first_pids, server.log()
    finally:
        assert stop_server(server) == 0, server.log()
    assert all(_gone(pid) for pid in first_pids), "the demo's ffmpeg outlived the server"
    assert "demo agent: ffmpeg (pid" in server.log()

    # the next start is the same agent (its data folder kept it), and the first session left a recording
    again = start_server(tmp_path, oembed_server.url, RETAKE_DEMO="1")
    try:
        wait_until(lambda: _live_demo(again.base) is not None, timeout=20)
        demo_again = _live_demo(again.base)
        assert demo_again is not None and demo_again["user_id"] == user_id
        recorded = httpx.get(f"{again.base}/api/v1/sessions/recorded/{user_id}/").json()["sessions"]
        assert len(recorded) == 1 and recorded[0]["recording_url"]
    finally:
        assert stop_server(again) == 0, again.log()
