"""The edge encoder (server/realtime/wire.py): every event services publish has a wire form, and the forms are
API.md's, key for key and in order. Pure: no server, no database."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path
from typing import Any

import pytest

import retake
from retake.accounts.results import AgentVerified, NewFollower
from retake.chat.pages import render
from retake.chat.results import ChatCleared, Comment, JailState, MessageDeleted, OperatorNotice, PinState, Sender
from retake.events import INTERNAL_EVENTS, PlatformEvent
from retake.ledger.results import FeeSplit, TipRecord, TradeRecord
from retake.server.realtime.wire import ENCODERS, comment, comment_json, pseudo_fid, wire_payload
from retake.streams.records import EncoderDisconnected, SessionEnded, SessionStarted
from retake.webhooks.mapping import AgentPush

SOURCE = Path(retake.__file__).parent
AT = "2026-01-02T03:04:05.678Z"
SENDER = Sender("0b1c2d3e-0000-4000-8000-000000000001", "viewer", None, "0x" + "ab" * 20)
LINE = Comment("41", "streamer-1", "session-1", "message", "hello", AT, None, None, SENDER)


def published_names() -> set[str]:
    """The first argument of every ``PlatformEvent(...)`` in ``src/retake``, a literal or a module constant."""
    names: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "PlatformEvent" and node.args):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant):
                names.add(first.value)
            else:
                assert isinstance(first, ast.Name), f"{path}:{node.lineno}: event name must be a literal or a name"
                module = ".".join(path.relative_to(SOURCE.parent).with_suffix("").parts)
                names.add(vars(importlib.import_module(module))[first.id])
    return names


def test_every_published_event_has_exactly_one_wire_form() -> None:
    published = published_names()
    assert published == set(ENCODERS), "an event without a wire form, or an encoder for an event nobody publishes"
    assert set(INTERNAL_EVENTS) <= published


def test_a_comment_in_both_field_sets() -> None:
    payload = wire_payload(PlatformEvent("message", "streamer-1", LINE))
    assert payload == {
        "_id": "41",
        "chat_event_id": "41",
        "streamId": "streamer-1",
        "streamer_id": "streamer-1",
        "session_id": "session-1",
        "type": "message",
        "text": "hello",
        "timestamp": AT,
        "author": {
            "walletAddress": "0x" + "ab" * 20,
            "fusername": "viewer",
            "fid": pseudo_fid(SENDER.user_id),
            "favatar": "",
            "walletType": "EVM",
            "userDbId": SENDER.user_id,
            "_id": SENDER.user_id,
        },
        "sender_user_id": SENDER.user_id,
        "sender_username": "viewer",
        "sender_display_name": "viewer",
        "sender_pfp": "",
        "sender_wallet_address": "0x" + "ab" * 20,
        "sender_streamercoin_holdings": 0,
        "tip_data": None,
        "trade_data": None,
    }
    assert list(payload)[:3] == ["_id", "chat_event_id", "streamId"]
    assert type(payload["sender_streamercoin_holdings"]) is int, "the broadcast sends 0, the REST page 0.0"


def test_the_page_renderer_spells_a_comment_as_the_broadcast_does() -> None:
    row = (
        41,
        "streamer-1",
        "session-1",
        "message",
        "hello",
        AT,
        None,
        None,
        SENDER.user_id,
        "viewer",
        None,
        SENDER.wallet_address,
    )
    rendered = json.loads(render("comments", [row], 50, comment_json).body)["comments"][0]
    broadcast = dict(comment(LINE))
    assert list(rendered) == list(broadcast)
    assert rendered == broadcast | {"sender_streamercoin_holdings": 0.0}


WHERE = {"streamer_id": "s1", "streamId": "s1", "session_id": "x1", "timestamp": AT}
FEE = FeeSplit("10", "8", "1", "1", "0", "0")
TRADE = TradeRecord(
    id="7",
    tx_hash="sig",
    token_address="Tok",
    token_ticker="TKN",
    token_name="Token",
    pool_address="Pool",
    user_id="u1",
    trader_address="Trader",
    buyer_address="Trader",
    seller_address="Seller",
    is_buy=True,
    side="buy",
    mode="exact_in",
    amount_in="100",
    amount_out="2000",
    amount_left="0",
    sol_lamports="100",
    token_atoms="2000",
    amount_sol=0.0000001,
    amount_tokens=0.002,
    amount_in_usd=0.000015,
    fee=FEE,
    fee_token="quote",
    sqrt_price_after="123",
    price_sol=1e-10,
    price_usd=1.5e-8,
    market_cap_sol=10.0,
    market_cap_usd=1500.0,
    quote_reserve_after="1000",
    bonding_progress=0.1,
    completed=False,
    timestamp=AT,
)
TIP = TipRecord("3", "sig", "u1", "tipper", "u2", "5000", 0.000005, 0.00075, "44", AT)
# (event name, record, the payload as API.md and the code before records had it)
CASES: list[tuple[str, Any, dict[str, Any]]] = [
    ("message", MessageDeleted("41", "s1", "x1", AT), {"type": "delete", "_id": "41", "chat_event_id": "41", **WHERE}),
    ("message", ChatCleared(3, "s1", "x1", AT), {"type": "delete_all", "count": 3, **WHERE}),
    (
        "message",
        JailState("u9", "loud", True, "s1", "x1", AT),
        {"type": "jail", "user_id": "u9", "username": "loud", "muted": True, **WHERE},
    ),
    (
        "message",
        JailState("u9", "loud", False, "s1", "x1", AT),
        {"type": "unjail", "user_id": "u9", "username": "loud", "muted": False, **WHERE},
    ),
    (
        "pinned",
        PinState("streamer-1", "session-1", True, "41", LINE, AT),
        {
            "streamer_id": "streamer-1",
            "session_id": "session-1",
            "pinned": True,
            "chat_event_id": "41",
            "message": dict(comment(LINE)),
            "timestamp": AT,
        },
    ),
    (
        "newtrade",
        TRADE,
        {
            "address": "Tok",
            "action": "buy",
            "usdAmount": 0.000015,
            "tokenTicker": "TKN",
            "solAmount": 0.0000001,
            "tokenAmount": 0.002,
            "txHash": "sig",
            "trader": "Trader",
            "userId": "u1",
            "priceSol": 1e-10,
            "marketCapUsd": 1500.0,
            "timestamp": AT,
        },
    ),
    (
        "user_followed",
        NewFollower("s1", "f1", "fan", "https://x/a.png", 2, AT),
        {
            "streamer_id": "s1",
            "follower_id": "f1",
            "follower_username": "fan",
            "follower_avatar_url": "https://x/a.png",
            "followers_count": 2,
            "followed_at": AT,
        },
    ),
    ("session_started", SessionStarted("s1", "x1", AT), {"streamer_id": "s1", "session_id": "x1", "started_at": AT}),
    (
        "session_ended",
        SessionEnded("s1", "x1", AT, 61, 4),
        {"streamer_id": "s1", "session_id": "x1", "ended_at": AT, "duration_seconds": 61, "viewers": 4},
    ),
    (
        "encoder_disconnected",
        EncoderDisconnected("s1", "x1", "timeout", AT, 30.0),
        {
            "streamer_id": "s1",
            "session_id": "x1",
            "reason": "timeout",
            "disconnected_at": AT,
            "reconnect_grace_seconds": 30.0,
        },
    ),
    (
        "operator_action",
        OperatorNotice("5", "warn", "be nice", "x1", AT),
        {"id": "5", "kind": "warn", "reason": "be nice", "session_id": "x1", "created_at": AT},
    ),
    (
        "agent_verified",
        AgentVerified("u1", "agent_a", "tweet"),
        {"userDbId": "u1", "agent_id": "agent_a", "verified": True, "verified_via": "tweet"},
    ),
    (
        "agent_event",
        AgentPush({"id": "evt_1", "type": "ping", "data": {}}),
        {"id": "evt_1", "type": "ping", "data": {}},
    ),
]


@pytest.mark.parametrize(("name", "record", "expected"), CASES, ids=[f"{c[0]}-{type(c[1]).__name__}" for c in CASES])
def test_each_event_payload_key_for_key(name: str, record: Any, expected: dict[str, Any]) -> None:
    payload = wire_payload(PlatformEvent(name, "room", record))
    assert payload == expected
    assert list(payload) == list(expected), "key order is part of what clients see (and what push signs)"


def test_records_named_as_api_md_names_them_are_sent_field_for_field() -> None:
    raw = wire_payload(PlatformEvent("rawtrade", "trades", TRADE))
    assert raw["token_address"] == "Tok" and raw["fee"] == {
        "total": "10",
        "trading": "8",
        "protocol": "1",
        "creator": "1",
        "partner": "0",
        "referral": "0",
    }
    tip = wire_payload(PlatformEvent("tip_received", "live_u2", TIP))
    assert list(tip) == [
        *("id", "tx_hash", "sender_id", "sender_username", "receiver_id"),
        *("lamports", "amount_sol", "amount_usd", "chat_event_id", "timestamp"),
    ]


def test_a_wrong_record_or_an_unknown_event_is_a_bug_not_a_payload() -> None:
    with pytest.raises(TypeError):
        wire_payload(PlatformEvent("newtrade", "trades", TIP))
    with pytest.raises(TypeError):
        wire_payload(PlatformEvent("message", "s1", TIP))
    with pytest.raises(TypeError):
        wire_payload(PlatformEvent("not_an_event", "s1", LINE))
