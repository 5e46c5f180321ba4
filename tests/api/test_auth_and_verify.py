"""Access tokens (header, body, rotation) and the tweet verification flow against a local oEmbed server."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.support import FakeOEmbed

AUTHED_GETS = [
    "/api/v1/agent/verification-status",
    "/api/v1/agent/stream/status",
    "/api/v1/agent/stream/comments",
]
AUTHED_POSTS = [
    "/api/v1/agent/prepare-verify",
    "/api/v1/agent/verify",
    "/api/v1/agent/rtmp",
    "/api/v1/agent/stream/start",
    "/api/v1/agent/stream/stop",
    "/api/v1/agent/update-thumbnail",
    "/api/v1/agent/stream/chat/send",
    "/api/v1/agent/rotate-token",
]


@pytest.mark.parametrize("path", AUTHED_GETS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer rtk_" + "x" * 40},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Basic a"},
    ],
    ids=["none", "unknown-token", "malformed", "wrong-scheme"],
)
async def test_gets_need_a_valid_token(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> None:
    response = await client.get(path, headers=headers)
    assert response.status_code == 401
    assert set(response.json()) == {"error", "code"}


@pytest.mark.parametrize("path", AUTHED_POSTS)
async def test_posts_need_a_valid_token(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(path, json={"message": "hi", "destination_user_id": "x", "tweet_url": "x"})
    assert response.status_code == 401
    assert response.json()["code"] in {"missing_token", "invalid_token"}


async def test_access_token_in_json_body_is_accepted(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    response = await client.post("/api/v1/agent/prepare-verify", json={"access_token": agent.token})
    assert response.status_code == 200


async def test_empty_body_with_json_content_type_is_fine(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    headers = {**agent.headers, "Content-Type": "application/json"}
    for path in ("/api/v1/agent/prepare-verify", "/api/v1/agent/rtmp", "/api/v1/agent/stream/start"):
        assert (await client.post(path, content=b"", headers=headers)).status_code == 200, path


async def test_rotate_token_invalidates_the_old_one_at_once(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    rotated = await client.post("/api/v1/agent/rotate-token", headers=agent.headers)
    assert rotated.status_code == 200
    new_token = rotated.json()["access_token"]
    assert new_token.startswith("rtk_") and new_token != agent.token
    assert (await client.get("/api/v1/agent/verification-status", headers=agent.headers)).status_code == 401
    fresh = {"Authorization": f"Bearer {new_token}"}
    assert (await client.get("/api/v1/agent/verification-status", headers=fresh)).status_code == 200


async def test_verify_without_prepare_is_no_verification_message(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    response = await client.post(
        "/api/v1/agent/verify", json={"tweet_url": "https://x.com/human/status/123"}, headers=agent.headers
    )
    assert response.status_code == 400
    assert response.json()["code"] == "no_verification_message"


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/human/status/123",
        "http://x.com/human/status/123",
        "https://x.com/human/status/abc",
        "https://x.com/human",
        "https://x.com.evil.io/human/status/1",
        "not a url",
        "",
    ],
)
async def test_invalid_tweet_urls(client: httpx.AsyncClient, register: Any, url: str) -> None:
    agent = await register()
    await client.post("/api/v1/agent/prepare-verify", headers=agent.headers)
    response = await client.post("/api/v1/agent/verify", json={"tweet_url": url}, headers=agent.headers)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_tweet_url"


async def test_full_verification_flow(client: httpx.AsyncClient, register: Any, oembed: FakeOEmbed) -> None:
    agent = await register()
    status = await client.get("/api/v1/agent/verification-status", headers=agent.headers)
    assert status.json() == {"verified": False}
    message = (await client.post("/api/v1/agent/prepare-verify", headers=agent.headers)).json()["verification_message"]
    assert re.fullmatch(r"Claiming my Livestreaming Agent on @retakedottv\. Code: [A-Z2-9]{8}", message)

    oembed.tweets["111"] = "hello world, nothing to see"
    wrong = await client.post(
        "/api/v1/agent/verify", json={"tweet_url": "https://x.com/human/status/111"}, headers=agent.headers
    )
    assert wrong.status_code == 400 and wrong.json()["code"] == "code_not_found"

    missing = await client.post(
        "/api/v1/agent/verify", json={"tweet_url": "https://x.com/human/status/404404"}, headers=agent.headers
    )
    assert missing.status_code == 400 and missing.json()["code"] == "code_not_found"

    oembed.tweets["222"] = f"Look at this & that: {message} #ai"
    ok = await client.post(
        "/api/v1/agent/verify",
        json={"tweet_url": "https://twitter.com/human/status/222"},
        headers=agent.headers,
    )
    assert ok.status_code == 200 and ok.json() == {"verified": True}
    assert oembed.requests[-1]["url"] == ["https://twitter.com/human/status/222"]
    status = await client.get("/api/v1/agent/verification-status", headers=agent.headers)
    assert status.json() == {"verified": True}
    profile = (await client.get(f"/api/v1/users/metadata/{agent.user_id}")).json()
    assert profile["verified"] is True and profile["social"]["twitter"] == "https://x.com/human"


async def test_a_later_prepare_replaces_the_code(client: httpx.AsyncClient, register: Any, oembed: FakeOEmbed) -> None:
    agent = await register()
    first = (await client.post("/api/v1/agent/prepare-verify", headers=agent.headers)).json()["verification_message"]
    second = (await client.post("/api/v1/agent/prepare-verify", headers=agent.headers)).json()["verification_message"]
    assert first != second
    oembed.tweets["333"] = first
    response = await client.post(
        "/api/v1/agent/verify", json={"tweet_url": "https://x.com/human/status/333"}, headers=agent.headers
    )
    assert response.json()["code"] == "code_not_found"


async def test_oembed_outage_is_502_not_500(client: httpx.AsyncClient, register: Any, oembed: FakeOEmbed) -> None:
    agent = await register()
    await client.post("/api/v1/agent/prepare-verify", headers=agent.headers)
    oembed.fail_with = 503
    response = await client.post(
        "/api/v1/agent/verify", json={"tweet_url": "https://x.com/human/status/5"}, headers=agent.headers
    )
    assert response.status_code == 502
    assert response.json()["code"] == "upstream_unavailable"
    status = await client.get("/api/v1/agent/verification-status", headers=agent.headers)
    assert status.json() == {"verified": False}
