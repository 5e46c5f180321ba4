"""POST /agent/update-thumbnail: 409 / 413 / 415, re-encoding that strips metadata, and serving."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image

URL = "/api/v1/agent/update-thumbnail"


def image_bytes(fmt: str, size: tuple[int, int] = (64, 36), exif: bool = False) -> bytes:
    img = Image.new("RGB", size, (200, 30, 90))
    out = io.BytesIO()
    if exif:
        data = Image.Exif()
        data[0x010E] = "secret description"  # ImageDescription
        data[0x0131] = "secret-camera-software"  # Software
        img.save(out, format=fmt, exif=data.tobytes())
    else:
        img.save(out, format=fmt)
    return out.getvalue()


async def live_agent(client: httpx.AsyncClient, register: Any) -> Any:
    agent = await register()
    assert (await client.post("/api/v1/agent/stream/start", headers=agent.headers)).status_code == 200
    return agent


async def test_409_without_an_open_session(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    files = {"image": ("t.png", image_bytes("PNG"), "image/png")}
    response = await client.post(URL, files=files, headers=agent.headers)
    assert response.status_code == 409 and response.json()["code"] == "no_active_session"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
async def test_png_and_jpeg_are_reencoded_and_served(client: httpx.AsyncClient, register: Any, fmt: str) -> None:
    agent = await live_agent(client, register)
    original = image_bytes(fmt, exif=True)
    assert b"secret description" in original
    response = await client.post(
        URL, files={"image": ("shot", original, "application/octet-stream")}, headers=agent.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] and body["thumbnail_url"].startswith(f"http://testserver/media/thumbnails/{agent.user_id}/")
    served = await client.get(body["thumbnail_url"].removeprefix("http://testserver"))
    assert served.status_code == 200
    assert b"secret description" not in served.content
    with Image.open(io.BytesIO(served.content)) as img:
        assert img.size == (64, 36)
        assert img.format == fmt
        assert not img.getexif()
    live = (await client.get(f"/api/v1/users/metadata/{agent.user_id}")).status_code
    assert live == 200


@pytest.mark.parametrize(
    "data",
    [b"not an image at all", b"GIF89a" + b"\x00" * 50, b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, b""],
    ids=["text", "gif-header", "truncated-png", "empty"],
)
async def test_415_for_anything_but_jpeg_or_png(client: httpx.AsyncClient, register: Any, data: bytes) -> None:
    agent = await live_agent(client, register)
    response = await client.post(URL, files={"image": ("x.png", data, "image/png")}, headers=agent.headers)
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_image"


async def test_gif_is_415(client: httpx.AsyncClient, register: Any) -> None:
    agent = await live_agent(client, register)
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="GIF")
    response = await client.post(URL, files={"image": ("x.gif", out.getvalue(), "image/gif")}, headers=agent.headers)
    assert response.status_code == 415


async def test_413_over_five_megabytes(client: httpx.AsyncClient, register: Any) -> None:
    agent = await live_agent(client, register)
    big = image_bytes("PNG") + b"\x00" * (5 * 1024 * 1024 + 10)
    response = await client.post(URL, files={"image": ("big.png", big, "image/png")}, headers=agent.headers)
    assert response.status_code == 413


async def test_missing_field_and_wrong_content_type_are_400(client: httpx.AsyncClient, register: Any) -> None:
    agent = await live_agent(client, register)
    wrong_field = await client.post(
        URL, files={"file": ("t.png", image_bytes("PNG"), "image/png")}, headers=agent.headers
    )
    assert wrong_field.status_code == 400 and wrong_field.json()["code"] == "missing_image"
    as_json = await client.post(URL, json={"image": "abc"}, headers=agent.headers)
    assert as_json.status_code == 400
    broken = await client.post(
        URL,
        content=b'--xyz\r\nContent-Disposition: form-data; name="image"\r\n\r\nabc',
        headers={**agent.headers, "Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert broken.status_code in {400, 415}


async def test_thumbnail_shows_in_live_listing(client: httpx.AsyncClient, register: Any) -> None:
    agent = await live_agent(client, register)
    url = (
        await client.post(URL, files={"image": ("t.png", image_bytes("PNG"), "image/png")}, headers=agent.headers)
    ).json()["thumbnail_url"]
    platform = client.app.state.platform  # type: ignore[attr-defined]
    key = (await client.post("/api/v1/agent/rtmp", headers=agent.headers)).json()["key"]
    target = await platform.streams.authorize_publish(key)
    await platform.streams.media_flowing(target)
    live = (await client.get("/api/v1/users/live/")).json()
    assert live[0]["thumbnail_url"] == url
