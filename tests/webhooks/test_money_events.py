"""``tip.received`` and ``trade.own_token`` reach a real local receiver with the documented data shapes (API.md
"Push to agents": the matching REST/Socket.IO payload): the tip record ``POST /tips`` answers and the trade
record of a swap of the agent's own token (``rawtrade``); a trade of someone else's token is not the agent's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from retake.config import Settings
from retake.server.realtime.wire import wire_payload
from retake.webhooks.envelope import signature
from tests.ledger.support import SOL, funded_viewer, launch, record_events, swap
from tests.webhooks.receiver import Receiver

HOOK = "/api/v1/agent/webhook"


@pytest.fixture
def settings_factory(settings_factory: Callable[..., Settings], database_url: str) -> Callable[..., Settings]:
    """The faucet is on here (viewers need SOL to tip and trade)."""
    return lambda **overrides: settings_factory(**{"enable_airdrop": True, **overrides})


async def _hook(client: httpx.AsyncClient, agent: Any, receiver: Receiver, events: list[str]) -> str:
    put = await client.put(HOOK, json={"url": receiver.url, "events": events}, headers=agent.headers)
    assert put.status_code == 200, put.text
    secret: str = put.json()["secret"]
    return secret


def _signed(received: Any, secret: str) -> bool:
    stamp, mac = (part.split("=", 1)[1] for part in received.signature.split(","))
    return bool(mac == signature(secret, int(stamp), received.raw))


async def test_tips_and_own_token_trades_are_pushed_with_their_payloads(
    client: httpx.AsyncClient, register: Any, receiver: Receiver
) -> None:
    events = record_events(client)
    agent, address = await launch(client, register)
    _other, other_address = await launch(client, register)
    secret = await _hook(client, agent, receiver, ["tip.received", "trade.own_token"])
    viewer = await funded_viewer(client, register)

    tipped = await client.post(
        "/api/v1/tips", json={"receiver_id": agent.user_id, "lamports": str(SOL // 10)}, headers=viewer.headers
    )
    assert tipped.status_code == 200, tipped.text
    bought = await swap(client, viewer, address, side="buy", amount=str(SOL // 2), mode="exact_in")
    assert bought.status_code == 200, bought.text
    elsewhere = await swap(client, viewer, other_address, side="buy", amount=str(SOL // 2), mode="exact_in")
    assert elsewhere.status_code == 200, elsewhere.text
    await receiver.wait_for(lambda got: len(got) >= 2)

    [tip] = receiver.of_type("tip.received")
    assert tip.body["data"] == tipped.json()  # the REST tip record, field for field
    [tip_event] = events.named("tip_received")
    assert tip.body["data"] == wire_payload(tip_event)  # ... and the Socket.IO tip_received payload
    assert tip.body["data"]["receiver_id"] == agent.user_id and tip.body["data"]["lamports"] == str(SOL // 10)

    [trade] = receiver.of_type("trade.own_token")
    assert trade.body["data"] == bought.json()  # the REST trade record (the full one rawtrade carries)
    own = [e for e in events.named("rawtrade") if wire_payload(e)["token_address"] == address]
    assert [trade.body["data"]] == [wire_payload(e) for e in own]
    assert trade.body["data"]["token_address"] == address and trade.body["data"]["is_buy"] is True
    assert trade.body["data"]["tx_hash"] == bought.json()["tx_hash"]

    for received in (tip, trade):
        assert received.event_id == received.body["id"] and _signed(received, secret)
        assert set(received.body) == {"id", "type", "created_at", "data"}
    assert len(receiver.received) == 2, [r.body["type"] for r in receiver.received]  # not the other token's
