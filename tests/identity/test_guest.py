"""Guest accounts: generated or chosen names, the agent_name rules, and the JWT they get."""

from __future__ import annotations

from typing import Any

import httpx
import jwt

from tests.identity.support import guest, row_counts

GUEST = "/api/v1/auth/guest"


async def test_generated_name_and_working_token(client: httpx.AsyncClient) -> None:
    viewer = await guest(client)
    assert viewer.user["username"].startswith("guest-") and viewer.user["kind"] == "guest"
    claims = jwt.decode(viewer.token, options={"verify_signature": False})
    assert claims["sub"] == viewer.id and claims["aud"] == "retake" and claims["iss"] == "http://testserver"
    assert claims["exp"] - claims["iat"] == 7 * 24 * 3600
    assert jwt.get_unverified_header(viewer.token)["alg"] == "EdDSA"
    me = await client.get("/api/v1/users/me", headers=viewer.headers)
    assert me.status_code == 200 and me.json() == viewer.user
    # Clients post with an empty body and a JSON content type; that is a guest without a chosen name.
    empty = await client.post(GUEST, content=b"", headers={"Content-Type": "application/json"})
    assert empty.status_code == 200 and empty.json()["user"]["username"].startswith("guest-")


async def test_chosen_name_is_unique_ignoring_case(client: httpx.AsyncClient, register: Any) -> None:
    viewer = await guest(client, "Watcher_1")
    assert viewer.user["username"] == "Watcher_1"
    agent = await register()
    before = await row_counts(client)
    for name in ("watcher_1", "WATCHER_1", agent.name.upper()):
        response = await client.post(GUEST, json={"username": name})
        assert response.status_code == 400 and response.json()["code"] == "name_taken", name
    assert await row_counts(client) == before


async def test_bad_names_store_nothing(client: httpx.AsyncClient) -> None:
    before = await row_counts(client)
    cases = {
        "ab": "invalid_username",
        "has space": "invalid_username",
        "x" * 33: "invalid_username",
        "naïve": "invalid_username",
        "api": "reserved_name",
        "Skill.md": "invalid_username",
        "LIVE": "reserved_name",
    }
    for name, code in cases.items():
        response = await client.post(GUEST, json={"username": name})
        assert response.status_code == 400 and response.json()["code"] == code, (name, response.text)
    for body in ({"username": 5}, [1, 2], "x"):
        response = await client.post(GUEST, json=body)
        assert response.status_code == 400 and set(response.json()) == {"error", "code"}
    assert await row_counts(client) == before


async def test_agent_tokens_and_bad_tokens_on_jwt_routes(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    me = await client.get("/api/v1/users/me", headers=agent.headers)
    assert me.status_code == 200 and me.json()["user_id"] == agent.user_id and me.json()["is_agent"] is True
    for headers, code in (
        ({}, "missing_token"),
        ({"Authorization": "Bearer nonsense"}, "invalid_token"),
        ({"Authorization": "Bearer a.b.c"}, "invalid_token"),
        ({"Authorization": "Bearer rtk_" + "x" * 40}, "invalid_token"),
    ):
        response = await client.get("/api/v1/users/me", headers=headers)
        assert response.status_code == 401 and response.json()["code"] == code, headers
