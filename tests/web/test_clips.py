"""Issue 16, clips and share cards, whole system: a real ``retake serve``, a real ffmpeg publisher pushing a solid
colour, the CLI, ffprobe and the Debian Chromium.

- a 30 s clip of the live stream (``retake agent clip 30``) is an MP4 of 30 ± 2 s, H.264 + AAC, moov before mdat;
  its page carries the share meta and plays in Chromium; the watch page's Clip button makes one too;
- the watch page's card image shows the current preview (mean colour of the picture area = the preview's).
"""

from __future__ import annotations

import html
import io
import json
import re
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageStat
from typer.testing import CliRunner

from retake.cli import app
from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.media_support import ffprobe, registered, status, wait_until
from tests.support import FakeOEmbed
from tests.web.conftest import Visitor, end_process, wait_playing

COLOUR = (32, 80, 208)  # the publisher's picture: 0x2050d0
CLIP_SECONDS = 30


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory, oembed_module: FakeOEmbed) -> Iterator[Server]:
    """This module's server: previews every 2 s, so the card follows the stream quickly."""
    server = start_server(tmp_path_factory.mktemp("clips"), oembed_module.url, RETAKE_PREVIEW_INTERVAL_SECONDS="2")
    yield server
    stop_server(server)


def solid_publisher(target: str) -> list[str]:
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", "color=c=0x2050d0:size=640x360:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-b:v", "400k",
        "-pix_fmt", "yuv420p", "-g", "30", "-c:a", "aac", "-b:a", "96k", "-f", "flv", target,
    ]  # fmt: skip


def meta(page: str) -> dict[str, str]:
    found = re.findall(r'<meta (?:property|name)="((?:og|twitter):[a-z:]+)" content="([^"]*)"', page)
    return {key: html.unescape(value) for key, value in found}


def top_level_boxes(data: bytes) -> list[str]:
    """The MP4's top-level box types in file order (ISO/IEC 14496-12 §4.2: 32-bit size, type; size 1 = 64-bit)."""
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        offset += size
    return boxes


def image(http: httpx.Client, url: str) -> Image.Image:
    response = http.get(url)
    assert response.status_code == 200, (url, response.status_code)
    picture = Image.open(io.BytesIO(response.content))
    picture.load()
    return picture.convert("RGB")


def mean(picture: Image.Image, box: tuple[int, int, int, int]) -> tuple[float, ...]:
    return tuple(ImageStat.Stat(picture.crop(box)).mean)


def cli(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"RETAKE_CREDENTIALS": "/nonexistent", **env})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_clip_of_a_live_stream_and_its_card(
    web_server: Server, visitor_factory: Callable[..., Visitor], tmp_path: Path
) -> None:
    with httpx.Client(base_url=web_server.base, timeout=30) as http:
        creds, auth = registered(http, "ClipStar")
        user_id = creds["userDbId"]
        rtmp = http.post("/api/v1/agent/rtmp", headers=auth).json()
        assert http.post("/api/v1/agent/stream/start", headers=auth).status_code == 200
        publisher = subprocess.Popen(
            solid_publisher(f"{rtmp['url']}/{rtmp['key']}"), stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_until(lambda: status(http, auth)["is_live"], timeout=20)
            live_at = time.monotonic()
            env = {"RETAKE_ACCESS_TOKEN": creds["access_token"], "RETAKE_BASE_URL": web_server.base}

            # -- the share card shows what is on stream now
            def preview() -> str:
                item = next((u for u in http.get("/api/v1/users/live/").json() if u["user_id"] == user_id), {})
                return str(item.get("thumbnail_url") or "")

            wait_until(lambda: "/media/previews/" in preview(), timeout=15)
            shown = image(http, preview())
            watch = meta(http.get("/ClipStar", headers={"Accept": "text/html"}).text)
            assert watch["og:url"] == f"{web_server.base}/ClipStar"
            assert watch["og:image"].startswith(f"{web_server.base}/api/v1/cards/{user_id}.jpg")
            card = image(http, watch["og:image"])
            assert card.size == (1200, 630)
            picture_area = mean(card, (300, 130, 900, 440))  # between the badges and the name band
            assert all(abs(a - b) < 12 for a, b in zip(picture_area, mean(shown, (0, 0, *shown.size)), strict=True))
            assert all(abs(a - b) < 20 for a, b in zip(picture_area, COLOUR, strict=True)), picture_area
            badge = mean(card, (45, 40, 160, 85))
            assert badge[0] > 150 and badge[2] < 120, f"no red LIVE badge: {badge}"
            share = json.loads(cli(env, "agent", "share", "--json"))
            assert share["card_url"] == f"{web_server.base}/api/v1/cards/{user_id}.jpg" and share["is_live"]

            # -- a 30 s clip, once 30 s (and a segment) are recorded
            time.sleep(max(0.0, live_at + CLIP_SECONDS + 3 - time.monotonic()))
            made = json.loads(cli(env, "agent", "clip", str(CLIP_SECONDS), "--title", "Thirty seconds", "--json"))
            assert made["title"] == "Thirty seconds" and made["url"] == f"{web_server.base}/clip/{made['clip_id']}"
            video = tmp_path / "clip.mp4"
            video.write_bytes(http.get(made["video_url"]).content)
            probe = ffprobe(str(video))
            assert {s["codec_name"] for s in probe["streams"]} == {"h264", "aac"}
            assert abs(float(probe["format"]["duration"]) - CLIP_SECONDS) <= 2, probe["format"]["duration"]
            boxes = top_level_boxes(video.read_bytes())
            assert "moov" in boxes and boxes.index("moov") < boxes.index("mdat"), boxes  # +faststart
            thumbnail = image(http, made["thumbnail_url"])
            assert all(abs(a - b) < 20 for a, b in zip(mean(thumbnail, (0, 0, *thumbnail.size)), COLOUR, strict=True))

            page_html = http.get(f"/clip/{made['clip_id']}", headers={"Accept": "text/html"}).text
            tags = meta(page_html)
            assert tags["og:image"] == made["thumbnail_url"] and tags["og:video"] == made["video_url"]
            assert tags["twitter:card"] == "summary_large_image" and tags["og:title"].startswith("Thirty seconds")

            # -- the page plays in Chromium
            visitor = visitor_factory()
            page = visitor.page()
            page.goto(f"/clip/{made['clip_id']}")
            page.wait_for_function("() => document.querySelector('video').readyState >= 3")
            wait_playing(page, advance=1.0)
            assert abs(float(page.evaluate("document.querySelector('video').duration")) - CLIP_SECONDS) <= 2

            # -- the watch page's Clip button, as a signed-in viewer
            watch_page = visitor.page()
            watch_page.goto("/ClipStar")
            watch_page.click("#clip-button")
            watch_page.wait_for_selector("#clip-link", timeout=30_000)
            watch_page.click("#clip-link")
            watch_page.wait_for_url(re.compile(r"/clip/[0-9a-f-]{36}$"))
            watch_page.wait_for_function("() => document.querySelector('video').readyState >= 3")
            clips = http.get(f"/api/v1/users/{user_id}/clips").json()["clips"]
            assert len(clips) == 2 and clips[0]["created_by"] != user_id  # the viewer's, newest first
        finally:
            end_process(publisher)
