"""Wallets, the development faucet and tips over the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from retake.config import Settings
from retake.server.app import create_app
from retake.server.realtime.wire import wire_payload
from tests.ledger.support import SOL, funded_viewer, is_base58_key, launch, record_events, snapshot, swap
from tests.support import VALID_WALLET


@pytest.fixture
def settings_factory(settings_factory: Callable[..., Settings], database_url: str) -> Callable[..., Settings]:
    """The faucet is on in this module (``database_url`` keeps the backend parameter visible to pytest)."""
    return lambda **overrides: settings_factory(**{"enable_airdrop": True, **overrides})


async def test_airdrop_is_refused_unless_enabled(settings_factory: Callable[..., Settings]) -> None:
    app = create_app(settings_factory(enable_airdrop=False))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            body = {"agent_name": "faucet_user", "wallet_address": VALID_WALLET, "ticker": "F"}
            token = (await http.post("/api/v1/agent/register", json=body)).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            refused = await http.post("/api/v1/wallet/airdrop", json={"lamports": "1000"}, headers=headers)
            assert (refused.status_code, refused.json()["code"]) == (403, "airdrop_disabled")
            assert (await http.get("/api/v1/wallet", headers=headers)).json()["sol"] == "0"


async def test_wallet_and_airdrop(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    assert (await client.get("/api/v1/wallet")).status_code == 401
    wallet = (await client.get("/api/v1/wallet", headers=agent.headers)).json()
    assert wallet == {
        "user_id": agent.user_id, "wallet_address": VALID_WALLET, "custodial": False, "sol": "0",
        "sol_amount": 0.0, "sol_usd": 0.0, "tokens": [],
    }  # fmt: skip
    for lamports in ("0", "-1", "x", str(1000 * SOL + 1)):
        response = await client.post("/api/v1/wallet/airdrop", json={"lamports": lamports}, headers=agent.headers)
        assert (response.status_code, response.json()["code"]) == (400, "invalid_amount")
    funded = await client.post("/api/v1/wallet/airdrop", json={"lamports": 2 * SOL}, headers=agent.headers)
    assert funded.json()["sol"] == str(2 * SOL) and funded.json()["sol_amount"] == 2.0
    assert funded.json()["sol_usd"] == 300.0


async def test_guests_get_a_custodial_wallet(client: httpx.AsyncClient, register: Any) -> None:
    guest = await client.post("/api/v1/auth/guest", json={})
    assert guest.status_code == 200, guest.text
    headers = {"Authorization": f"Bearer {guest.json()['token']}"}
    first = (await client.get("/api/v1/wallet", headers=headers)).json()
    assert first["custodial"] is True and is_base58_key(first["wallet_address"])
    assert (await client.get("/api/v1/wallet", headers=headers)).json()["wallet_address"] == first["wallet_address"]
    _streamer, address = await launch(client, register)
    await client.post("/api/v1/wallet/airdrop", json={"lamports": SOL}, headers=headers)
    bought = await client.post(f"/api/v1/tokens/{address}/swap", json={"side": "buy", "amount": SOL}, headers=headers)
    assert bought.status_code == 200, bought.text
    assert bought.json()["trader_address"] == first["wallet_address"]


async def test_tips_move_sol_and_show_in_chat(client: httpx.AsyncClient, register: Any) -> None:
    streamer = await register()
    tipper = await funded_viewer(client, register, 2 * SOL)
    events = record_events(client)
    response = await client.post(
        "/api/v1/tips", json={"receiver_id": streamer.user_id, "lamports": str(SOL // 2)}, headers=tipper.headers
    )
    assert response.status_code == 200, response.text
    tip = response.json()
    assert tip["lamports"] == str(SOL // 2) and tip["amount_sol"] == 0.5 and is_base58_key(tip["tx_hash"], 64)
    assert tip["sender_id"] == tipper.user_id and tip["receiver_id"] == streamer.user_id
    second = await client.post(
        "/api/v1/tips",
        json={"receiver_id": streamer.user_id, "lamports": SOL // 4, "message": "gg"},
        headers=tipper.headers,
    )
    assert second.status_code == 200

    assert (await client.get("/api/v1/wallet", headers=tipper.headers)).json()["sol"] == str(SOL * 5 // 4)
    assert (await client.get("/api/v1/wallet", headers=streamer.headers)).json()["sol"] == str(SOL * 3 // 4)
    tippers = (await client.get("/api/v1/chat/top-tippers", params={"streamer_id": streamer.user_id})).json()
    assert tippers == {
        "tippers": [
            {"user_id": tipper.user_id, "username": tipper.name, "total_amount": 0.75, "tip_count": 2, "rank": 1}
        ]
    }
    chats = (await client.get("/api/v1/chat/", params={"streamer_id": streamer.user_id})).json()["chats"]
    assert [(c["type"], c["text"]) for c in chats] == [("tip", "gg"), ("tip", "tipped 0.5 SOL")]
    assert chats[1]["tip_data"]["tx_hash"] == tip["tx_hash"] and chats[1]["tip_data"]["amount"] == 0.5
    assert chats[1]["chat_event_id"] == tip["chat_event_id"]

    messages = events.named("message")
    assert [m.room for m in messages] == [streamer.user_id] * 2
    assert wire_payload(messages[0])["_id"] == tip["chat_event_id"]
    received = events.named("tip_received")
    assert [r.room for r in received] == [f"live_{streamer.user_id}"] * 2 and wire_payload(received[0]) == tip


async def test_refused_tips_change_nothing(client: httpx.AsyncClient, register: Any) -> None:
    streamer, address = await launch(client, register)
    tipper = await funded_viewer(client, register, SOL)
    assert (await swap(client, tipper, address, side="buy", amount=str(SOL // 2))).status_code == 200
    before = await snapshot(client)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"receiver_id": streamer.user_id, "lamports": str(SOL)}, 400, "insufficient_balance"),
        ({"receiver_id": streamer.user_id, "lamports": "0"}, 400, "invalid_amount"),
        ({"receiver_id": streamer.user_id, "lamports": "-5"}, 400, "invalid_amount"),
        ({"receiver_id": streamer.user_id, "lamports": "ten"}, 400, "invalid_amount"),
        ({"receiver_id": tipper.user_id, "lamports": "5"}, 400, "self_tip"),
        ({"receiver_id": "no-such-user", "lamports": "5"}, 404, "receiver_not_found"),
        ({"receiver_id": "nul\x00byte", "lamports": "5"}, 400, "invalid_receiver_id"),
        ({"receiver_id": streamer.user_id, "lamports": "5", "message": "x" * 501}, 400, "invalid_message"),
        ({"lamports": "5"}, 400, "missing_field"),
    ]
    for body, status, code in cases:
        response = await client.post("/api/v1/tips", json=body, headers=tipper.headers)
        assert (response.status_code, response.json()["code"]) == (status, code), (body, response.text)
    assert (
        await client.post("/api/v1/tips", json={"receiver_id": streamer.user_id, "lamports": "5"})
    ).status_code == 401
    assert await snapshot(client) == before
