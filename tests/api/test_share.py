"""Share cards and links on both databases: the card JPEG, /agent/share, and the OpenGraph / Twitter meta of the
watch, recordings, recording and clip pages."""

from __future__ import annotations

import html
import io
import re
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.api.test_clips import go_live, twelve_seconds  # noqa: F401  (the fixture)

BASE = "http://testserver"


def meta(page: str) -> dict[str, str]:
    found = re.findall(r'<meta (?:property|name)="((?:og|twitter):[a-z:]+)" content="([^"]*)"', page)
    return {key: html.unescape(value) for key, value in found}


async def test_share_links_and_the_card(client: httpx.AsyncClient, register: Any, twelve_seconds: Path) -> None:  # noqa: F811
    agent, _ = await go_live(client, register, twelve_seconds)
    share = (await client.get("/api/v1/agent/share", headers=agent.headers)).json()
    assert share["stream_url"] == f"{BASE}/{agent.name}" and share["is_live"] is True
    assert share["card_url"] == f"{BASE}/api/v1/cards/{agent.user_id}.jpg"
    assert share["stream_url"] in share["post_text"] and "live" in share["post_text"]
    assert (await client.get("/api/v1/agent/share")).status_code == 401

    card = await client.get(share["card_url"].removeprefix(BASE))
    assert card.status_code == 200 and card.headers["content-type"] == "image/jpeg"
    assert "max-age=15" in card.headers["cache-control"]
    image = Image.open(io.BytesIO(card.content))
    assert image.format == "JPEG" and image.size == (1200, 630)
    assert (await client.get("/api/v1/cards/nobody.jpg")).status_code == 404

    idle = await register()
    offline = (await client.get("/api/v1/agent/share", headers=idle.headers)).json()
    assert offline["is_live"] is False and offline["stream_url"] in offline["post_text"]
    assert (await client.get(offline["card_url"].removeprefix(BASE))).status_code == 200


async def test_pages_carry_share_meta(client: httpx.AsyncClient, register: Any, twelve_seconds: Path) -> None:  # noqa: F811
    agent, session_id = await go_live(client, register, twelve_seconds)
    html_accept = {"Accept": "text/html"}
    watch = meta((await client.get(f"/{agent.name}", headers=html_accept)).text)
    assert watch["og:url"] == f"{BASE}/{agent.name}" and watch["og:title"].startswith(f"{agent.name} is live")
    assert watch["og:image"].startswith(f"{BASE}/api/v1/cards/{agent.user_id}.jpg?v=")
    assert watch["twitter:card"] == "summary_large_image" and watch["twitter:image"] == watch["og:image"]
    assert watch["og:image:width"] == "1200" and watch["og:image:height"] == "630"
    listing = meta((await client.get(f"/{agent.name}/recordings", headers=html_accept)).text)
    assert listing["og:url"] == f"{BASE}/{agent.name}/recordings" and listing["og:image"] == watch["og:image"]

    clip = (
        await client.post("/api/v1/agent/clips", headers=agent.headers, json={"seconds": 5, "title": "A <b>"})
    ).json()
    page = await client.get(f"/clip/{clip['clip_id']}", headers=html_accept)
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<b>" not in page.text and "<script>" not in page.text  # autoescaped; no inline script
    assert f'src="/media/clips/{clip["clip_id"]}.mp4"' in page.text
    tags = meta(page.text)
    assert tags["og:url"] == clip["url"] and tags["og:image"] == clip["thumbnail_url"]
    assert tags["og:video"] == clip["video_url"] and tags["og:video:type"] == "video/mp4"
    assert tags["og:title"].startswith("A <b>") and tags["twitter:card"] == "summary_large_image"
    assert (await client.get("/clip/nope", headers=html_accept)).status_code == 404
    assert (await client.get("/clip/%00", headers=html_accept)).status_code in (400, 404)  # never a 500

    await client.post("/api/v1/agent/stream/stop", headers=agent.headers)
    recording = meta((await client.get(f"/{agent.name}/recordings/{session_id}", headers=html_accept)).text)
    assert recording["og:url"] == f"{BASE}/{agent.name}/recordings/{session_id}"
    assert recording["og:image"].startswith(("http://", "https://")) and recording["og:type"] == "video.other"
