"""Issue 3 (preview images) against a real server and real ffmpeg publishers: a live session without an
uploaded thumbnail shows a JPEG made from its latest keyframe, refreshed as the stream goes on; an upload
replaces it and is never overwritten by a later preview."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageStat

from tests.e2e.conftest import start_server, stop_server
from tests.e2e.media_support import lavfi_publisher, registered, running, status, wait_until
from tests.support import FakeOEmbed

INTERVAL = 2.0  # RETAKE_PREVIEW_INTERVAL_SECONDS for this server (default 10 s), to keep the test short


def _thumbnail(http: httpx.Client, user_id: str) -> str | None:
    for item in http.get("/api/v1/users/live/").json():
        if item["user_id"] == user_id:
            url: str | None = item["thumbnail_url"]
            return url
    return None


def _jpeg(http: httpx.Client, url: str) -> Image.Image:
    response = http.get(url)
    assert response.status_code == 200, (url, response.status_code)
    image = Image.open(io.BytesIO(response.content))
    image.load()  # decodes every byte: a truncated or corrupt file fails here
    return image


def _go_live(http: httpx.Client, name: str) -> tuple[str, dict[str, str], str]:
    creds, auth = registered(http, name)
    rtmp = http.post("/api/v1/agent/rtmp", headers=auth).json()
    assert http.post("/api/v1/agent/stream/start", headers=auth).status_code == 200
    return creds["userDbId"], auth, f"{rtmp['url']}/{rtmp['key']}"


def test_keyframe_preview_until_an_upload_wins(tmp_path: Path, oembed_server: FakeOEmbed) -> None:
    server = start_server(tmp_path, oembed_server.url, RETAKE_PREVIEW_INTERVAL_SECONDS=str(INTERVAL))
    try:
        with httpx.Client(base_url=server.base, timeout=15) as http:
            wide, wide_auth, wide_target = _go_live(http, "PreviewWide")
            small, small_auth, small_target = _go_live(http, "PreviewSmall")
            publishers = (
                running(lavfi_publisher(wide_target, size="1280x720")),
                running(lavfi_publisher(small_target, size="480x360")),
            )
            with publishers[0] as wide_encoder, publishers[1]:
                wait_until(lambda: status(http, wide_auth)["is_live"] and status(http, small_auth)["is_live"], 15)
                live_at = time.monotonic()
                previews = f"{server.base}/media/previews/"
                wait_until(lambda: (_thumbnail(http, wide) or "").startswith(f"{previews}{wide}/"), timeout=8)
                took = time.monotonic() - live_at
                assert took < 5, f"first preview took {took:.1f} s"
                first = _thumbnail(http, wide)
                assert first is not None
                image = _jpeg(http, first)
                assert image.format == "JPEG" and image.size == (640, 360)  # 1280x720 scaled, 16:9 kept
                assert max(ImageStat.Stat(image).stddev) > 20, "preview is a flat picture, not the test pattern"

                # a source narrower than 640 px is not upscaled; its 4:3 shape is kept
                wait_until(lambda: (_thumbnail(http, small) or "").startswith(f"{previews}{small}/"), timeout=8)
                assert _jpeg(http, _thumbnail(http, small) or "").size == (480, 360)

                # later keyframes replace the preview, no more often than the interval
                wait_until(lambda: _thumbnail(http, wide) != first, timeout=INTERVAL + 6)
                second = _thumbnail(http, wide)
                assert second is not None and second.startswith(f"{previews}{wide}/")
                assert _jpeg(http, second).size == (640, 360)
                assert time.monotonic() - live_at >= INTERVAL - 0.5

                # an upload wins at once and stays, however many keyframes pass
                upload = _png((320, 180))
                files = {"image": ("thumb.png", upload, "image/png")}
                uploaded = http.post("/api/v1/agent/update-thumbnail", headers=wide_auth, files=files).json()
                uploaded_url = uploaded["thumbnail_url"]
                assert "/media/thumbnails/" in uploaded_url
                assert _thumbnail(http, wide) == uploaded_url
                deadline = time.monotonic() + 3 * INTERVAL + 1
                while time.monotonic() < deadline:
                    assert _thumbnail(http, wide) == uploaded_url
                    assert _active_thumbnail(http, wide) == uploaded_url
                    time.sleep(0.3)
                assert _jpeg(http, uploaded_url).size == (320, 180)
                # the other stream still gets previews
                assert (_thumbnail(http, small) or "").startswith(f"{previews}{small}/")
                assert wide_encoder.poll() is None
    finally:
        stop_server(server)
    assert "preview refresh failed" not in server.log(), server.log()


def _active_thumbnail(http: httpx.Client, user_id: str) -> str | None:
    sessions: list[dict[str, Any]] = http.get("/api/v1/sessions/active/").json()
    return next((s["thumbnail_url"] for s in sessions if s["user_id"] == user_id), None)


def _png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 90)).save(out, format="PNG")
    return out.getvalue()


def _preview_of(http: httpx.Client, user_id: str) -> str | None:
    """The session's thumbnail through a path that is not a look at previews (one streamer's session)."""
    response = http.get(f"/api/v1/sessions/active/{user_id}/")
    url: str | None = response.json().get("thumbnail_url") if response.status_code == 200 else None
    return url


def test_a_preview_is_made_when_somebody_looks_and_not_otherwise(tmp_path: Path, oembed_server: FakeOEmbed) -> None:
    server = start_server(
        tmp_path,
        oembed_server.url,
        RETAKE_PREVIEW_INTERVAL_SECONDS="1",
        RETAKE_PREVIEW_IDLE_INTERVAL_SECONDS="0",  # only when somebody looks
    )
    try:
        with httpx.Client(base_url=server.base, timeout=15) as http:
            user_id, auth, target = _go_live(http, "PreviewLooks")
            with running(lavfi_publisher(target, size="640x360")):
                wait_until(lambda: status(http, auth)["is_live"], 15)
                previews = f"{server.base}/media/previews/{user_id}/"
                wait_until(lambda: (_preview_of(http, user_id) or "").startswith(previews), timeout=8)
                first = _preview_of(http, user_id)
                time.sleep(4)  # four intervals, new keyframes every second, nobody looking
                assert _preview_of(http, user_id) == first, "a preview was made while nobody looked"

                assert http.get("/api/v1/users/live/").status_code == 200  # the home page's live grid looks
                wait_until(lambda: _preview_of(http, user_id) != first, timeout=4)
                second = _preview_of(http, user_id)
                assert second is not None and second.startswith(previews)
                time.sleep(3)
                assert _preview_of(http, user_id) == second

                assert http.get(second).status_code == 200  # a request of the preview image is a look too
                wait_until(lambda: _preview_of(http, user_id) != second, timeout=4)
    finally:
        stop_server(server)
    assert "preview refresh failed" not in server.log(), server.log()
