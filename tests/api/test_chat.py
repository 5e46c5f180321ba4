"""Chat send and comments: numeric growing ids, both field sets, newest first, paging, limits, rate limit."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from retake.server.realtime.wire import wire_payload

SEND = "/api/v1/agent/stream/chat/send"
COMMENTS = "/api/v1/agent/stream/comments"

COMMENT_FIELDS = {
    "_id", "chat_event_id", "streamId", "streamer_id", "session_id", "type", "text", "timestamp", "author",
    "sender_user_id", "sender_username", "sender_display_name", "sender_pfp", "sender_wallet_address",
    "sender_streamercoin_holdings", "tip_data", "trade_data",
}  # fmt: skip


async def test_send_then_read_back_with_both_field_sets(client: httpx.AsyncClient, register: Any) -> None:
    streamer = await register()
    viewer = await register()
    events: list[Any] = []

    async def listen(event: Any) -> None:
        if event.name != "agent_event":  # push to agents re-publishes what concerns an agent
            events.append(event)

    client.app.state.platform.events.subscribe(listen)  # type: ignore[attr-defined]
    sent = await client.post(
        SEND,
        json={"message": "Great stream!", "destination_user_id": streamer.user_id},
        headers=viewer.headers,
    )
    assert sent.status_code == 200
    body = sent.json()
    assert set(body) == {"message_id", "chat_event_id", "sent_at"}
    assert body["message_id"] == body["chat_event_id"] and body["message_id"].isdigit()
    assert body["sent_at"].endswith("Z")

    comments = (await client.get(COMMENTS, params={"userDbId": streamer.user_id}, headers=viewer.headers)).json()
    assert comments["next_cursor"] is None
    [item] = comments["comments"]
    assert set(item) == COMMENT_FIELDS
    assert item["_id"] == body["message_id"] and item["text"] == "Great stream!"
    assert item["streamId"] == item["streamer_id"] == streamer.user_id
    assert item["author"]["fusername"] == viewer.name and item["sender_username"] == viewer.name
    assert item["author"]["walletAddress"] == item["sender_wallet_address"]
    assert isinstance(item["author"]["fid"], int)
    assert item["timestamp"] == body["sent_at"]
    assert [e.name for e in events] == ["message"] and events[0].room == streamer.user_id
    assert wire_payload(events[0]) == item, "the broadcast and the REST read are the same object"


async def test_ids_grow_newest_first_and_before_id_pages(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    ids = []
    for i in range(7):
        r = await client.post(
            SEND, json={"message": f"m{i}", "destination_user_id": agent.user_id}, headers=agent.headers
        )
        ids.append(int(r.json()["chat_event_id"]))
    assert ids == sorted(ids) and len(set(ids)) == 7
    page1 = (await client.get(COMMENTS, params={"userDbId": agent.user_id, "limit": 3}, headers=agent.headers)).json()
    assert [c["text"] for c in page1["comments"]] == ["m6", "m5", "m4"]
    assert page1["next_cursor"] == page1["comments"][-1]["_id"]
    page2 = (
        await client.get(
            COMMENTS,
            params={"userDbId": agent.user_id, "limit": 3, "beforeId": page1["next_cursor"]},
            headers=agent.headers,
        )
    ).json()
    assert [c["text"] for c in page2["comments"]] == ["m3", "m2", "m1"]
    page3 = (
        await client.get(
            COMMENTS,
            params={"userDbId": agent.user_id, "limit": 3, "beforeId": page2["next_cursor"]},
            headers=agent.headers,
        )
    ).json()
    assert [c["text"] for c in page3["comments"]] == ["m0"] and page3["next_cursor"] is None
    own = (await client.get(COMMENTS, headers=agent.headers)).json()
    assert len(own["comments"]) == 7, "userDbId defaults to the caller's own stream"


async def test_chat_into_another_agents_stream_and_access_token_in_body(
    client: httpx.AsyncClient, register: Any
) -> None:
    a = await register()
    b = await register()
    r = await client.post(SEND, json={"message": "hi b", "destination_user_id": b.user_id, "access_token": a.token})
    assert r.status_code == 200
    public = (await client.get("/api/v1/chat/", params={"streamer_id": b.user_id})).json()
    assert [c["text"] for c in public["chats"]] == ["hi b"]
    assert public["chats"][0]["sender_username"] == a.name
    assert public["chats"][0]["chat_event_id"] == r.json()["chat_event_id"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"message": "", "destination_user_id": "X"}, 400),
        ({"message": "   ", "destination_user_id": "X"}, 400),
        ({"message": "x" * 501, "destination_user_id": "X"}, 400),
        ({"message": "a\x00b", "destination_user_id": "X"}, 400),
        ({"destination_user_id": "X"}, 400),
        ({"message": "hi"}, 400),
        ({"message": 5, "destination_user_id": "X"}, 400),
        ({"message": "hi", "destination_user_id": "00000000-0000-0000-0000-000000000000"}, 404),
    ],
)
async def test_bad_sends(client: httpx.AsyncClient, register: Any, body: dict[str, Any], status: int) -> None:
    agent = await register()
    body = {k: (agent.user_id if v == "X" else v) for k, v in body.items()}
    response = await client.post(SEND, json=body, headers=agent.headers)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error", "code"}
    comments = (await client.get(COMMENTS, headers=agent.headers)).json()["comments"]
    assert comments == []


@pytest.mark.parametrize(
    "params",
    [{"limit": 101}, {"limit": 0}, {"limit": "many"}, {"beforeId": "abc"}, {"beforeId": "-5"}],
)
async def test_bad_comment_queries(client: httpx.AsyncClient, register: Any, params: dict[str, Any]) -> None:
    agent = await register()
    response = await client.get(COMMENTS, params=params, headers=agent.headers)
    assert response.status_code == 400


async def test_comments_of_unknown_streamer_is_404(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    response = await client.get(COMMENTS, params={"userDbId": "nope"}, headers=agent.headers)
    assert response.status_code == 404


async def test_public_chat_needs_exactly_one_id(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    assert (await client.get("/api/v1/chat/")).status_code == 400
    both = await client.get("/api/v1/chat/", params={"streamer_id": agent.user_id, "session_id": "x"})
    assert both.status_code == 400


async def test_public_chat_by_session(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    await client.post(SEND, json={"message": "before", "destination_user_id": agent.user_id}, headers=agent.headers)
    session_id = (await client.post("/api/v1/agent/stream/start", headers=agent.headers)).json()["session_id"]
    await client.post(SEND, json={"message": "during", "destination_user_id": agent.user_id}, headers=agent.headers)
    chats = (await client.get("/api/v1/chat/", params={"session_id": session_id})).json()["chats"]
    assert [c["text"] for c in chats] == ["during"]


async def test_top_tippers_empty_and_404(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    assert (await client.get("/api/v1/chat/top-tippers", params={"streamer_id": agent.user_id})).json() == {
        "tippers": []
    }
    assert (await client.get("/api/v1/chat/top-tippers", params={"streamer_id": "nope"})).status_code == 404
    assert (await client.get("/api/v1/chat/top-tippers")).status_code == 400


async def test_chat_send_is_rate_limited_per_sender(settings_factory: Any) -> None:
    from asgi_lifespan import LifespanManager

    from retake.server.app import create_app

    app = create_app(settings_factory(chat_rate="3/10seconds"))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            tokens = []
            for name in ("rate_a", "rate_b"):
                body = {
                    "agent_name": name,
                    "wallet_address": "11111111111111111111111111111111",
                    "ticker": "R",
                }
                reg = (await http.post("/api/v1/agent/register", json=body)).json()
                tokens.append((reg["access_token"], reg["userDbId"]))
            (token_a, user_a), (token_b, _) = tokens
            msg = {"message": "spam", "destination_user_id": user_a}
            for _ in range(3):
                assert (
                    await http.post(SEND, json=msg, headers={"Authorization": f"Bearer {token_a}"})
                ).status_code == 200
            limited = await http.post(SEND, json=msg, headers={"Authorization": f"Bearer {token_a}"})
            assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
            assert (await http.post(SEND, json=msg, headers={"Authorization": f"Bearer {token_b}"})).status_code == 200
            comments = (await http.get(COMMENTS, headers={"Authorization": f"Bearer {token_a}"})).json()["comments"]
            assert len(comments) == 4
