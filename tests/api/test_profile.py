"""/users/me…: own profile, edits, images and follows; every route on both databases."""

from __future__ import annotations

import io
from typing import Any

import httpx
from PIL import Image

from retake.server.realtime.wire import wire_payload
from tests.identity.support import guest, platform_of, row_counts

ME = "/api/v1/users/me"


def png(size: tuple[int, int] = (40, 20)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(out, format="PNG")
    return out.getvalue()


def media_files(client: httpx.AsyncClient) -> list[str]:
    root = platform_of(client).images.root
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


async def test_every_route_needs_a_token(client: httpx.AsyncClient) -> None:
    target = await guest(client)
    routes = [
        ("GET", ME),
        ("PATCH", f"{ME}/bio"),
        ("PATCH", f"{ME}/username"),
        ("PATCH", f"{ME}/pfp"),
        ("PATCH", f"{ME}/banner"),
        ("PATCH", f"{ME}/tokenName"),
        ("GET", f"{ME}/following"),
        ("GET", f"{ME}/following/{target.user['username']}"),
        ("PUT", f"{ME}/following/{target.id}"),
        ("DELETE", f"{ME}/following/{target.id}"),
    ]
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer not.a.jwt"}):
            response = await client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, response.text)
            assert set(response.json()) == {"error", "code"}


async def test_bio_and_token_name(client: httpx.AsyncClient) -> None:
    viewer = await guest(client)
    ok = await client.patch(f"{ME}/bio", json={"bio": "b" * 500}, headers=viewer.headers)
    assert ok.status_code == 200 and ok.json()["bio"] == "b" * 500
    named = await client.patch(f"{ME}/tokenName", json={"token_name": "  Moon Coin  "}, headers=viewer.headers)
    assert named.status_code == 200 and named.json()["token_name"] == "Moon Coin"
    bad = [
        ("bio", {"bio": "b" * 501}, "invalid_bio"),
        ("bio", {}, "missing_field"),
        ("bio", {"bio": 5}, "validation_error"),
        ("bio", {"bio": "nul\x00byte"}, "invalid_bio"),
        ("tokenName", {"token_name": "   "}, "invalid_token_name"),
        ("tokenName", {"token_name": "x" * 33}, "invalid_token_name"),
        ("tokenName", {"token_name": "bad\x00name"}, "invalid_token_name"),
        ("tokenName", {}, "missing_field"),
    ]
    for route, body, code in bad:
        response = await client.patch(f"{ME}/{route}", json=body, headers=viewer.headers)
        assert response.status_code == 400 and response.json()["code"] == code, (route, body, response.text)
    me = (await client.get(ME, headers=viewer.headers)).json()
    assert me["bio"] == "b" * 500 and me["token_name"] == "Moon Coin", "refused edits change nothing"


async def test_username_rules(client: httpx.AsyncClient, register: Any) -> None:
    viewer = await guest(client)
    other = await guest(client, "Taken_Name")
    agent = await register()
    renamed = await client.patch(f"{ME}/username", json={"username": "New_Name"}, headers=viewer.headers)
    assert renamed.status_code == 200 and renamed.json()["username"] == "New_Name"
    recased = await client.patch(f"{ME}/username", json={"username": "new_NAME"}, headers=viewer.headers)
    assert recased.status_code == 200 and recased.json()["username"] == "new_NAME"
    streamer = await client.get("/api/v1/users/streamer/NEW_name")
    assert streamer.status_code == 200 and streamer.json()["user_id"] == viewer.id
    before = await row_counts(client)
    for name, code in (
        ("taken_name", "name_taken"),
        (agent.name.upper(), "name_taken"),
        ("no", "invalid_username"),
        ("bad/slash", "invalid_username"),
        ("Socket.io", "invalid_username"),
        ("metrics", "reserved_name"),
    ):
        response = await client.patch(f"{ME}/username", json={"username": name}, headers=viewer.headers)
        assert response.status_code == 400 and response.json()["code"] == code, name
    assert await row_counts(client) == before
    assert (await client.get(ME, headers=viewer.headers)).json()["username"] == "new_NAME"
    assert (await client.get(ME, headers=other.headers)).json()["username"] == "Taken_Name"
    # An agent renames itself through the same route with its access token.
    agent_renamed = await client.patch(f"{ME}/username", json={"username": "agent_renamed"}, headers=agent.headers)
    assert agent_renamed.status_code == 200 and agent_renamed.json()["is_agent"] is True


async def test_pfp_upload(client: httpx.AsyncClient) -> None:
    viewer = await guest(client)
    response = await client.patch(f"{ME}/pfp", files={"image": ("a.png", png(), "image/png")}, headers=viewer.headers)
    assert response.status_code == 200, response.text
    url = response.json()["avatar_url"]
    assert url.startswith(f"http://testserver/media/avatars/{viewer.id}/")
    served = await client.get(url.removeprefix("http://testserver"))
    assert served.status_code == 200 and Image.open(io.BytesIO(served.content)).size == (40, 20)
    files = media_files(client)
    big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (5 * 1024 * 1024)
    for kwargs, status, code in (
        ({"files": {"image": ("a.txt", b"not an image", "text/plain")}}, 415, "unsupported_image"),
        ({"files": {"image": ("a.png", big, "image/png")}}, 413, "image_too_large"),
        ({"files": {"other": ("a.png", png(), "image/png")}}, 400, "missing_image"),
        ({"json": {"image": "x"}}, 400, "missing_image"),
    ):
        bad = await client.patch(f"{ME}/pfp", headers=viewer.headers, **kwargs)
        assert (bad.status_code, bad.json()["code"]) == (status, code), bad.text
    assert media_files(client) == files, "refused uploads store no file"
    assert (await client.get(ME, headers=viewer.headers)).json()["avatar_url"] == url


async def test_banner_image_and_link(client: httpx.AsyncClient) -> None:
    viewer = await guest(client)
    both = await client.patch(
        f"{ME}/banner",
        files={"image": ("b.png", png((120, 30)), "image/png")},
        data={"url": "https://example.com/me"},
        headers=viewer.headers,
    )
    assert both.status_code == 200, both.text
    body = both.json()
    assert body["banner_url"].startswith(f"http://testserver/media/banners/{viewer.id}/")
    assert body["banner_link"] == "https://example.com/me"
    link_only = await client.patch(f"{ME}/banner", files={"url": (None, "")}, headers=viewer.headers)
    assert link_only.status_code == 200, link_only.text
    assert link_only.json()["banner_link"] is None and link_only.json()["banner_url"] == body["banner_url"]
    files = media_files(client)
    for kwargs, status, code in (
        (
            {"files": {"image": ("b.png", png(), "image/png")}, "data": {"url": "javascript:alert(1)"}},
            400,
            "invalid_url",
        ),
        ({"files": {"image": ("b.gif", b"GIF89a", "image/gif")}}, 415, "unsupported_image"),
        ({"files": {"nothing": (None, "x")}}, 400, "missing_image"),
        ({"files": {"url": (None, "https://x.example/\x00")}}, 400, "invalid_url"),
    ):
        bad = await client.patch(f"{ME}/banner", headers=viewer.headers, **kwargs)
        assert (bad.status_code, bad.json()["code"]) == (status, code), bad.text
    assert media_files(client) == files
    metadata = (await client.get(f"/api/v1/users/metadata/{viewer.id}")).json()
    assert metadata["banner_url"] == body["banner_url"]


async def test_follow_unfollow_and_listing(client: httpx.AsyncClient, register: Any) -> None:
    viewer = await guest(client)
    agent = await register()
    other = await guest(client)
    events: list[Any] = []

    async def listen(event: Any) -> None:
        if event.name != "agent_event":  # push to agents re-publishes what concerns an agent
            events.append(event)

    platform_of(client).events.subscribe(listen)
    first = await client.put(f"{ME}/following/{agent.user_id}", headers=viewer.headers)
    assert first.status_code == 200 and first.json() == {
        "following": True,
        "target_id": agent.user_id,
        "followers_count": 1,
    }
    again = await client.put(f"{ME}/following/{agent.user_id}", headers=viewer.headers)
    assert again.status_code == 200 and again.json()["followers_count"] == 1, "follow is idempotent"
    assert [(e.name, e.room) for e in events] == [("user_followed", f"live_{agent.user_id}")]
    assert wire_payload(events[0])["follower_id"] == viewer.id and wire_payload(events[0])["followers_count"] == 1
    assert (await client.put(f"{ME}/following/{other.id}", headers=viewer.headers)).status_code == 200

    status = await client.get(f"{ME}/following/{agent.name.upper()}", headers=viewer.headers)
    assert status.status_code == 200 and status.json() == {"following": True}
    reverse = await client.get(f"{ME}/following/{viewer.user['username']}", headers=agent.headers)
    assert reverse.json() == {"following": False}
    page1 = (await client.get(f"{ME}/following?limit=1", headers=viewer.headers)).json()
    assert [u["user_id"] for u in page1["following"]] == [other.id] and page1["next_cursor"]
    page2 = (await client.get(f"{ME}/following?limit=1&cursor={page1['next_cursor']}", headers=viewer.headers)).json()
    assert [u["user_id"] for u in page2["following"]] == [agent.user_id] and page2["next_cursor"] is None
    assert page2["following"][0]["username"] == agent.name and page2["following"][0]["is_live"] is False
    me = (await client.get(ME, headers=viewer.headers)).json()
    assert me["following_count"] == 2
    assert (await client.get(f"/api/v1/users/metadata/{agent.user_id}")).json()["followers_count"] == 1

    # One URL for the three routes: either form of the target works, and a 405 lists every method.
    assert (await client.get(f"{ME}/following/{agent.user_id}", headers=viewer.headers)).json() == {"following": True}
    options = await client.options(f"{ME}/following/{agent.user_id}", headers=viewer.headers)
    assert options.status_code == 405 and options.headers["allow"] == "DELETE, GET, HEAD, PUT"
    for target in (agent.name.lower(), agent.user_id):
        gone = await client.delete(f"{ME}/following/{target}", headers=viewer.headers)
        assert gone.status_code == 200 and gone.json()["following"] is False and gone.json()["followers_count"] == 0
    assert (await client.get(f"{ME}/following/{agent.name}", headers=viewer.headers)).json() == {"following": False}


async def test_follow_bad_input_stores_nothing(client: httpx.AsyncClient) -> None:
    viewer = await guest(client)
    before = await row_counts(client)
    cases = [
        ("PUT", f"{ME}/following/{viewer.id}", 400, "cannot_follow_self"),
        ("PUT", f"{ME}/following/00000000-0000-0000-0000-000000000000", 404, "user_not_found"),
        ("DELETE", f"{ME}/following/{viewer.id}", 400, "cannot_follow_self"),
        ("DELETE", f"{ME}/following/nobody", 404, "user_not_found"),
        ("GET", f"{ME}/following/nobody_here", 404, "user_not_found"),
        ("GET", f"{ME}/following?cursor=abc", 400, "invalid_cursor"),
        ("GET", f"{ME}/following?limit=0", 400, "validation_error"),
        ("PUT", f"{ME}/following/{'x' * 65}", 400, "validation_error"),
        ("PUT", f"{ME}/following/nul%00byte", 400, "invalid_characters"),
        ("GET", f"{ME}/following/nul%00byte", 400, "invalid_characters"),
        ("GET", f"{ME}/following/{'9' * 36}", 404, "user_not_found"),
        ("PUT", f"{ME}/following/{viewer.user['username'].upper()}", 400, "cannot_follow_self"),
    ]
    for method, path, status, code in cases:
        response = await client.request(method, path, headers=viewer.headers)
        assert (response.status_code, response.json()["code"]) == (status, code), (method, path, response.text)
    assert await row_counts(client) == before
