"""Server-rendered pages in-process: escaping of user text, 404s, routing order, the helpers' rules."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from retake.server.web.pages import avatar_color, clock, http_url, recording_title, when

HTML = {"Accept": "text/html"}
HOSTILE_BIO = '</script><script>alert("bio")</script><img src=x onerror=alert(1)> & "quotes"'


async def test_watch_page_escapes_user_text(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register("Escaper", agent_description=HOSTILE_BIO, image_url='https://example.com/a.png?x="><b>')
    page = await client.get("/escaper", headers=HTML)  # any case
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<script>alert" not in html and "<img src=x" not in html and '"><b>' not in html
    assert "&lt;script&gt;alert(&#34;bio&#34;)&lt;/script&gt;" in html  # the bio, shown as text
    assert "Content-Security-Policy" in page.headers and "script-src 'self'" in page.headers["Content-Security-Policy"]
    # the page data for the scripts is JSON that cannot close its <script> element
    raw = re.search(r'<script id="page-data" type="application/json">(.*?)</script>', html, re.S)
    assert raw is not None and "<" not in raw.group(1)
    data = json.loads(raw.group(1))
    assert data["streamer"]["user_id"] == agent.user_id and data["live"] is None
    assert data["streamer"]["username"] == "Escaper"


async def test_pages_answer_404_and_never_shadow_the_api(client: httpx.AsyncClient, register: Any) -> None:
    await register("RealAgent")
    for path in ("/NoSuchAgent", "/NoSuchAgent/recordings", "/RealAgent/recordings/nope", "/x"):
        page = await client.get(path, headers=HTML)
        assert page.status_code == 404, path
        assert "Nothing to watch here" in page.text
    machine = await client.get("/NoSuchAgent")  # API clients get the platform's error body
    assert machine.status_code == 404 and machine.json()["code"] == "not_found"
    assert (await client.get("/RealAgent/recordings", headers=HTML)).status_code == 200
    assert (await client.get("/", headers=HTML)).status_code == 200
    for path in ("/api/v1/users/live/", "/health", "/skill.json", "/docs", "/openapi.json"):
        assert (await client.get(path, headers=HTML)).status_code == 200, path
    assert "/{name}" not in (await client.get("/openapi.json")).json()["paths"]  # pages stay out of the API schema


def test_helpers() -> None:
    assert http_url("https://example.com/a.png") == "https://example.com/a.png"
    assert http_url("/media/x.jpg") == "/media/x.jpg"
    for bad in ("javascript:alert(1)", "data:text/html,x", "//evil.example/x", "", None):
        assert http_url(bad) == ""
    assert (clock(65), clock(3725), clock(None), clock(-3)) == ("1:05", "1:02:05", "0:00", "0:00")
    assert when("2026-11-27T14:20:00.000Z") == "Nov 27, 2026 · 14:20 UTC" and when("nonsense") == ""
    assert avatar_color("NovaBot") == avatar_color("NovaBot") and avatar_color("a") != avatar_color("b")
    assert recording_title({"title": "Building a robot", "ended_at": None}, "Nova") == "Building a robot"
    assert (
        recording_title({"title": "Nova is live", "ended_at": "2026-11-27T14:20:00Z"}, "Nova")
        == "Stream of Fri, Nov 27"
    )
    assert recording_title({"title": "", "ended_at": None}, "Nova") == "Nova's stream"


async def test_every_page_has_the_sign_in_and_says_whether_airdrops_are_on(
    client: httpx.AsyncClient, register: Any
) -> None:
    await register("HeaderAgent")
    for path in ("/", "/HeaderAgent", "/HeaderAgent/recordings", "/NoSuchAgent"):
        html = (await client.get(path, headers=HTML)).text
        assert 'id="account-button"' in html and 'data-airdrop="false"' in html, path
    # an unverified agent has no token: its page offers tips only
    watch = (await client.get("/HeaderAgent", headers=HTML)).text
    assert 'id="tip-form"' in watch and 'id="trade-form"' not in watch and 'id="token-panel"' not in watch
