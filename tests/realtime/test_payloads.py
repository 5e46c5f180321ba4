"""What Socket.IO clients may send: pure checks, no server."""

from __future__ import annotations

from typing import Any

import pytest

from retake.errors import ValidationFailed
from retake.server.realtime.payloads import parse_message, parse_room

VALID = {"type": "message", "streamer_id": "s", "sender_token": "rtk_x", "text": "hi"}


def test_real_client_payload_with_server_decided_fields() -> None:
    message = parse_message({**VALID, "session_id": 5, "sender_username": None, "timestamp": 1795785178, "x": [1]})
    assert (message.type, message.streamer_id, message.text, message.tx_hash) == ("message", "s", "hi", None)


def test_tx_hash_comes_from_the_matching_data() -> None:
    tip = parse_message({**VALID, "type": "tip", "tip_data": {"tx_hash": "abc", "amount": "1.5"}})
    assert tip.tx_hash == "abc"
    trade = parse_message({**VALID, "type": "trade", "tip_data": {"tx_hash": "abc"}})
    assert trade.tx_hash is None, "a trade is confirmed by trade_data.tx_hash only"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (None, "invalid_payload"),
        ("text", "invalid_payload"),
        ({"sender_token": "t"}, "missing_field"),
        ({**VALID, "type": "delete"}, "validation_error"),
        ({**VALID, "text": ["x"]}, "validation_error"),
        ({**VALID, "streamer_id": ""}, "validation_error"),
        ({**VALID, "trade_data": {"type": "short"}}, "validation_error"),
        ({**VALID, "sender_token": "x" * 5000}, "validation_error"),
        ({**VALID, "streamer_id": "a\x00b"}, "validation_error"),
        ({**VALID, "sender_user_id": "\x00"}, "validation_error"),
    ],
)
def test_invalid_messages_name_the_problem(payload: Any, code: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_message(payload)
    assert caught.value.code == code


@pytest.mark.parametrize("data", [{"roomId": "abc"}, "abc", {"roomId": "abc", "extra": 1}])
def test_rooms(data: Any) -> None:
    assert parse_room(data) == "abc"


@pytest.mark.parametrize("data", [None, {}, {"roomId": ""}, {"roomId": 5}, {"roomId": "a\nb"}, "x" * 201, ["abc"]])
def test_bad_rooms(data: Any) -> None:
    with pytest.raises(ValidationFailed):
        parse_room(data)
