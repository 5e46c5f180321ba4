"""Public users/sessions reads, site routes, skill files, health, metrics, docs, unknown routes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from retake.skill import SKILL_VERSION


async def test_search_newest_metadata_streamer(client: httpx.AsyncClient, register: Any) -> None:
    alpha = await register("AlphaWolf")
    beta = await register("BetaWolf", ticker="bw")
    await register("Gamma")

    found = (await client.get("/api/v1/users/search/wolf")).json()
    assert {u["username"] for u in found} == {"AlphaWolf", "BetaWolf"}
    assert set(found[0]) >= {
        "user_id",
        "username",
        "avatar_url",
        "ticker",
        "token_address",
        "verified",
        "is_live",
    }
    assert (await client.get("/api/v1/users/search/zzz")).json() == []
    assert (await client.get("/api/v1/users/search/100%")).json() == []

    newest = (await client.get("/api/v1/users/newest/")).json()
    assert [u["username"] for u in newest] == ["Gamma", "BetaWolf", "AlphaWolf"]

    meta = (await client.get(f"/api/v1/users/metadata/{beta.user_id}")).json()
    assert meta["username"] == "BetaWolf" and meta["ticker"] == "BW" and meta["followers_count"] == 0
    assert meta["bio"] == "a test agent" and meta["social"] == {"twitter": None}
    assert meta["created_at"].endswith("Z")

    streamer = (await client.get("/api/v1/users/streamer/alphawolf")).json()
    assert streamer["streamer_id"] == alpha.user_id and streamer["username"] == "AlphaWolf"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/users/metadata/nope",
        "/api/v1/users/streamer/nobody_here",
        "/api/v1/sessions/active/nope/",
        "/api/v1/nothing",
        "/definitely/not/here",
    ],
)
async def test_not_found_in_the_error_shape(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert set(response.json()) == {"error", "code"}


async def test_wrong_method_is_405_in_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/agent/register")
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"


async def test_recorded_and_scheduled_pages_are_empty_and_paged(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    for _ in range(3):
        await client.post("/api/v1/agent/stream/start", headers=agent.headers)
        await client.post("/api/v1/agent/stream/stop", headers=agent.headers)
    page = (await client.get("/api/v1/sessions/recorded/", params={"limit": 2})).json()
    assert len(page["sessions"]) == 2 and page["next_cursor"]
    rest = (await client.get("/api/v1/sessions/recorded/", params={"limit": 2, "cursor": page["next_cursor"]})).json()
    assert len(rest["sessions"]) == 1 and rest["next_cursor"] is None
    seen = [s["session_id"] for s in page["sessions"] + rest["sessions"]]
    assert len(set(seen)) == 3
    assert (await client.get("/api/v1/sessions/recorded/", params={"cursor": "!!"})).status_code == 400
    assert (await client.get("/api/v1/sessions/scheduled/")).json() == {"sessions": [], "next_cursor": None}
    assert (await client.get(f"/api/v1/sessions/scheduled/{agent.user_id}/")).json()["sessions"] == []


async def test_skill_files_carry_this_servers_base_url(client: httpx.AsyncClient) -> None:
    md = await client.get("/skill.md")
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert "http://testserver/api/v1/agent/register" in md.text
    assert "retake.tv" not in md.text
    assert f"version: {SKILL_VERSION}" in md.text
    assert "rtmp://testserver:1935/live" in md.text
    steps = [f"\n{n}. **" for n in range(1, 11)]
    assert all(step in md.text for step in steps), "the ten go-live steps are numbered"
    data = (await client.get("/skill.json")).json()
    assert data["version"] == SKILL_VERSION
    assert data["metadata"]["api_base"] == "http://testserver/api/v1"
    assert data["endpoints"]["register"] == "POST /api/v1/agent/register"
    assert {
        "name",
        "version",
        "description",
        "homepage",
        "metadata",
        "skills",
        "endpoints",
        "keywords",
    } <= set(data)


async def test_health_metrics_docs(client: httpx.AsyncClient) -> None:
    health = (await client.get("/health")).json()
    assert health["status"] == "ok" and health["database"] == "ok"
    await client.get("/api/v1/users/newest/")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert 'retake_http_requests_total{method="GET",route="/api/v1/users/newest/",status="200"}' in metrics.text
    assert "retake_live_streams 0.0" in metrics.text
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    assert "/api/v1/agent/register" in spec["paths"]


@pytest.mark.parametrize(
    "path", ["/api/v1/users/metadata/a%00b", "/api/v1/users/search/x%00", "/api/v1/chat/?streamer_id=%00"]
)
async def test_nul_in_urls_is_400_not_500(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_characters"
