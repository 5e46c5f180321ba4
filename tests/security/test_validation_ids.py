"""Item 9 of issue 12: ids and cursors are ASCII digits only, on every endpoint that takes one.

Before: ``str.isdigit()`` accepted "²" and "①", which ``int()`` then refused, so these answered 500 (two of the
endpoints are public); "٣" (an Arabic-Indic digit) was silently read as 3. Both databases."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support import VALID_WALLET

NOT_ASCII_DIGITS = ["²", "①", "٣", "１２"]


@pytest.mark.parametrize("value", NOT_ASCII_DIGITS)
async def test_public_cursors_refuse_non_ascii_digits(client: httpx.AsyncClient, register: Any, value: str) -> None:
    streamer = await register()
    for path, params, code in [
        ("/api/v1/chat/", {"streamer_id": streamer.user_id, "before_chat_event_id": value}, "invalid_cursor"),
        ("/api/v1/trades/recent/", {"cursor": value}, "invalid_cursor"),
        (f"/api/v1/trades/recent/{VALID_WALLET}/", {"cursor": value}, "invalid_cursor"),
    ]:
        response = await client.get(path, params=params)
        assert response.status_code == 400, (path, value, response.status_code, response.text)
        assert response.json()["code"] == code
    # ASCII digits still page
    page = await client.get("/api/v1/chat/", params={"streamer_id": streamer.user_id, "before_chat_event_id": "5"})
    assert page.status_code == 200, page.text
    assert (await client.get("/api/v1/trades/recent/", params={"cursor": "123"})).status_code == 200


@pytest.mark.parametrize("value", NOT_ASCII_DIGITS)
async def test_authenticated_ids_refuse_non_ascii_digits(client: httpx.AsyncClient, register: Any, value: str) -> None:
    agent = await register()
    segment = quote(value, safe="")  # percent-encoded in the path, as a browser would send it
    checks = [
        ("GET", "/api/v1/agent/stream/comments", {"beforeId": value}, "invalid_cursor"),
        ("GET", "/api/v1/users/me/following", {"cursor": value}, "invalid_cursor"),
        ("POST", f"/api/v1/chat/{segment}/pin", None, "invalid_chat_event_id"),
        ("DELETE", f"/api/v1/chat/{segment}/pin", None, "invalid_chat_event_id"),
        ("DELETE", f"/api/v1/chat/{segment}", None, "invalid_chat_event_id"),
    ]
    for method, path, params, code in checks:
        response = await client.request(method, path, params=params, headers=agent.headers)
        assert response.status_code == 400, (method, path, value, response.status_code, response.text)
        assert response.json()["code"] == code
