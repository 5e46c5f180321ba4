"""Item 9 of issue 12: names and tickers are full-matched, NFKC-normalized and unique in their case-folded form.

Before: ``$`` matched before a final newline, so "name\\n" registered beside "name" (a look-alike), "api\\n"
passed the reserved names, and a 32-character name or 10-character ticker plus "\\n" was a 500 on PostgreSQL
(too long for its column). Both databases."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from retake.store.tables import Agent
from tests.support import OTHER_WALLET, VALID_WALLET

URL = "/api/v1/agent/register"


def body(name: str, ticker: str = "TST", wallet: str = VALID_WALLET) -> dict[str, Any]:
    return {"agent_name": name, "wallet_address": wallet, "ticker": ticker}


async def stored_ticker(client: httpx.AsyncClient, agent_id: str) -> str | None:
    async with client.app.state.platform.sessions() as db:  # type: ignore[attr-defined]
        ticker: str | None = await db.scalar(select(Agent.ticker).where(Agent.id == agent_id))
    return ticker


async def refused(client: httpx.AsyncClient, payload: dict[str, Any], code: str, field: str) -> None:
    response = await client.post(URL, json=payload)
    assert response.status_code == 400, (payload, response.status_code, response.text)
    assert response.json()["code"] == code, response.text
    assert field in response.json()["error"]


async def test_trailing_newline_and_invisible_characters_are_refused(client: httpx.AsyncClient) -> None:
    assert (await client.post(URL, json=body("lookalike"))).status_code == 200
    for name in [
        "lookalike\n",
        "api\n",
        "retake\n",
        "look\u200balike",
        "lookalike\u2060",
        "lo\u00adokalike",
        "a" * 32 + "\n",
    ]:
        await refused(client, body(name, wallet=OTHER_WALLET), "invalid_agent_name", "agent_name")
    for ticker in ["TST\n", "ABCDEFGHIJ\n", "T\u200bST"]:
        await refused(client, body("fine_name", ticker), "invalid_ticker", "ticker")
    found = (await client.get("/api/v1/users/search/lookalike")).json()
    assert [u["username"] for u in found] == ["lookalike"]


async def test_compatibility_forms_and_case_collide(client: httpx.AsyncClient) -> None:
    created = await client.post(URL, json=body("Star_Agent", ticker="ｔｓｔ"))
    assert created.status_code == 200, created.text
    assert await stored_ticker(client, created.json()["agent_id"]) == "TST"
    for look_alike in ["star_agent", "ＳＴＡＲ_ＡＧＥＮＴ", "Ｓtar_Agent"]:
        await refused(client, body(look_alike, wallet=OTHER_WALLET), "name_taken", "agent_name")
    # A full-width name is stored in its plain form; the reserved check sees that form too.
    await refused(client, body("ａｐｉ"), "reserved_name", "agent_name")
    wide = await client.post(URL, json=body("Ｗｉｄｅ_one", ticker="ｗｉｄｅ"))
    assert wide.status_code == 200, wide.text
    profile = (await client.get(f"/api/v1/users/metadata/{wide.json()['userDbId']}")).json()
    assert profile["username"] == "Wide_one"
    assert await stored_ticker(client, wide.json()["agent_id"]) == "WIDE"


@pytest.mark.parametrize("bad", ["api\n", "fine_guest\n"])
async def test_guest_and_rename_use_the_same_rules(client: httpx.AsyncClient, register: Any, bad: str) -> None:
    guest = await client.post("/api/v1/auth/guest", json={"username": bad})
    assert guest.status_code == 400, guest.text
    assert guest.json()["code"] == "invalid_username" and "username" in guest.json()["error"]
    agent = await register()
    rename = await client.patch("/api/v1/users/me/username", json={"username": bad}, headers=agent.headers)
    assert rename.status_code == 400, rename.text
    assert rename.json()["code"] == "invalid_username"
