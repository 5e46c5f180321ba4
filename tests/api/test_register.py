"""POST /agent/register: the shape, every validation rule, and that refused input leaves no row behind."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from retake.store.tables import Agent, User
from tests.support import OTHER_WALLET, VALID_WALLET

URL = "/api/v1/agent/register"


def payload(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agent_name": "NovaBot",
        "agent_description": "explores things live",
        "image_url": "https://example.com/nova.png",
        "wallet_address": VALID_WALLET,
        "ticker": "nova",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


async def user_count(client: httpx.AsyncClient) -> int:
    platform = client.app.state.platform  # type: ignore[attr-defined]
    async with platform.sessions() as db:
        return int(await db.scalar(select(func.count()).select_from(User)))


async def test_register_returns_the_documented_shape(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json=payload())
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "access_token",
        "agent_id",
        "userDbId",
        "wallet_address",
        "token_address",
        "token_ticker",
        "agent_name",
        "ticker",
    }
    assert re.fullmatch(r"rtk_[A-Za-z0-9_-]{32,}", body["access_token"])
    assert re.fullmatch(r"agent_[A-Za-z0-9_-]{16,}", body["agent_id"])
    assert str(uuid.UUID(body["userDbId"])) == body["userDbId"]
    assert body["wallet_address"] == VALID_WALLET
    assert body["token_address"] == "" and body["token_ticker"] == ""
    assert body["agent_name"] == "NovaBot" and body["ticker"] == "NOVA"


async def test_token_is_stored_only_as_its_sha256(client: httpx.AsyncClient) -> None:
    body = (await client.post(URL, json=payload())).json()
    platform = client.app.state.platform  # type: ignore[attr-defined]
    async with platform.sessions() as db:
        agent = await db.get(Agent, body["agent_id"])
    assert agent is not None
    assert agent.token_hash == hashlib.sha256(body["access_token"].encode()).hexdigest()
    assert body["access_token"] not in str(vars(agent))
    assert agent.ticker == "NOVA"


async def test_name_is_unique_ignoring_case(client: httpx.AsyncClient) -> None:
    assert (await client.post(URL, json=payload(agent_name="Dup_Name"))).status_code == 200
    before = await user_count(client)
    response = await client.post(URL, json=payload(agent_name="dup_name", wallet_address=OTHER_WALLET))
    assert response.status_code == 400
    assert response.json()["code"] == "name_taken"
    assert await user_count(client) == before


BAD_INPUTS = [
    pytest.param(payload(agent_name=...), "agent_name", id="missing-name"),
    pytest.param(payload(wallet_address=...), "wallet_address", id="missing-wallet"),
    pytest.param(payload(agent_name="___", ticker=...), "ticker", id="missing-ticker-nothing-to-derive"),
    pytest.param(payload(agent_name=123), "agent_name", id="name-not-string"),
    pytest.param(payload(ticker=["X"]), "ticker", id="ticker-not-string"),
    pytest.param(payload(agent_name="ab"), "agent_name", id="name-too-short"),
    pytest.param(payload(agent_name="x" * 33), "agent_name", id="name-too-long"),
    pytest.param(payload(agent_name="has space"), "agent_name", id="name-space"),
    pytest.param(payload(agent_name="emoji😀"), "agent_name", id="name-emoji"),
    pytest.param(payload(agent_name="API"), "reserved", id="reserved-api"),
    pytest.param(payload(agent_name="live"), "reserved", id="reserved-live"),
    pytest.param(payload(agent_name="Docs"), "reserved", id="reserved-docs"),
    pytest.param(payload(wallet_address="not-a-wallet"), "wallet_address", id="wallet-garbage"),
    pytest.param(payload(wallet_address="0OIl" * 8), "wallet_address", id="wallet-not-base58"),
    pytest.param(payload(wallet_address="1111111111111111111111111111111"), "wallet_address", id="wallet-31-bytes"),
    pytest.param(payload(wallet_address=VALID_WALLET + "1"), "wallet_address", id="wallet-33-bytes"),
    pytest.param(payload(wallet_address=""), "wallet_address", id="wallet-empty"),
    pytest.param(payload(wallet_address="0x" + "ab" * 20), "wallet_address", id="wallet-evm-refused-on-api-v1"),
    pytest.param(payload(ticker=""), "ticker", id="ticker-empty"),
    pytest.param(payload(ticker="ELEVENCHARS"), "ticker", id="ticker-11"),
    pytest.param(payload(ticker="A$B"), "ticker", id="ticker-symbol"),
    pytest.param(payload(image_url="ftp://example.com/a.png"), "image_url", id="image-not-http"),
    pytest.param(payload(image_url="javascript:alert(1)"), "image_url", id="image-js"),
    pytest.param(payload(agent_description="d" * 501), "agent_description", id="description-501"),
    pytest.param(payload(agent_description="nul\x00byte"), "agent_description", id="description-nul"),
    pytest.param(payload(image_url="https://example.com/\x00.png"), "image_url", id="image-nul"),
    pytest.param([1, 2, 3], "body", id="array-body"),
    pytest.param("just a string", "body", id="string-body"),
]


@pytest.mark.parametrize(("body", "mentions"), BAD_INPUTS)
async def test_bad_input_is_400_naming_the_field_and_stores_nothing(
    client: httpx.AsyncClient, body: Any, mentions: str
) -> None:
    before = await user_count(client)
    response = await client.post(URL, json=body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert set(error) == {"error", "code"}
    assert mentions in error["error"] or mentions in error["code"]
    assert await user_count(client) == before


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, content=b'{"agent_name": ', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": "request body is not valid JSON", "code": "invalid_json"}


async def test_huge_body_is_413_and_stores_nothing(client: httpx.AsyncClient) -> None:
    before = await user_count(client)
    huge = b'{"agent_name": "' + b"a" * (7 * 1024 * 1024) + b'"}'
    response = await client.post(URL, content=huge, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert await user_count(client) == before


async def test_unknown_fields_are_ignored(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json=payload(extra_field="x", access_token="rtk_whatever"))
    assert response.status_code == 200


async def test_description_and_image_are_optional(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json=payload(agent_description=..., image_url=...))
    assert response.status_code == 200


async def test_register_is_rate_limited_per_ip(settings_factory: Any) -> None:
    from asgi_lifespan import LifespanManager

    from retake.server.app import create_app

    app = create_app(settings_factory(register_rate="2/minute"))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("10.1.2.3", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            for i in range(2):
                assert (await http.post(URL, json=payload(agent_name=f"rl_{i}"))).status_code == 200
            limited = await http.post(URL, json=payload(agent_name="rl_x"))
            assert limited.status_code == 429
            assert limited.json()["code"] == "rate_limited"
            assert 1 <= int(limited.headers["Retry-After"]) <= 60
        other = httpx.ASGITransport(app=manager.app, client=("10.9.9.9", 1234))
        async with httpx.AsyncClient(transport=other, base_url="http://testserver") as http:
            assert (await http.post(URL, json=payload(agent_name="rl_other"))).status_code == 200
