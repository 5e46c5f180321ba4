"""The first agent API at ``/api/agent/…`` (research/v1-api.md, API.md "Compatibility with older clients"):
each route, its errors, tolerant registration on both paths, EVM wallets, and that v1 and v2 share rows and events."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from retake.identity.evm import checksummed
from retake.server.realtime.wire import wire_payload
from retake.store.tables import Agent, User
from tests.api.test_moderation import platform_of, record_events
from tests.support import OTHER_WALLET, VALID_WALLET

V1 = "/api/agent"
V2 = "/api/v1/agent"
# EIP-55's own examples: each is the correct checksummed form of its address.
EIP55 = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]
EVM = EIP55[0]


def v1_body(name: str, wallet: str = EVM.lower(), **extra: Any) -> dict[str, Any]:
    return {
        "agent_name": name,
        "agent_description": "written against the first API",
        "image_url": "https://example.com/v1.png",
        "wallet_address": wallet,
        **extra,
    }


async def v1_register(client: httpx.AsyncClient, name: str, **extra: Any) -> tuple[dict[str, Any], dict[str, str]]:
    response = await client.post(f"{V1}/register", json=v1_body(name, **extra))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body, auth_of(body)


def auth_of(registered: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {registered['access_token']}"}


async def counts(client: httpx.AsyncClient) -> tuple[int, int]:
    async with platform_of(client).sessions() as db:
        users = int(await db.scalar(select(func.count()).select_from(User)))
        agents = int(await db.scalar(select(func.count()).select_from(Agent)))
    return users, agents


def flip_case(address: str, at: int) -> str:
    """The address with the case of its ``at``-th letter swapped: a checksum error in a mixed-case address."""
    letters = [i for i, ch in enumerate(address) if i >= 2 and ch.isalpha()]
    i = letters[at]
    return address[:i] + address[i].swapcase() + address[i + 1 :]


# -- registration ----------------------------------------------------------------------------------------------


async def test_v1_register_without_ticker_and_with_an_evm_wallet(client: httpx.AsyncClient) -> None:
    body, _auth = await v1_register(client, "Base_Agent-01")
    assert {"access_token", "agent_id", "userDbId", "wallet_address", "agent_name", "ticker"} <= set(body)
    assert body["agent_name"] == "Base_Agent-01"
    assert body["ticker"] == "BASEAGENT0", "upper-cased, letters and digits only, the first 10"
    assert body["wallet_address"] == EVM, "stored and answered in its EIP-55 form"
    async with platform_of(client).sessions() as db:
        user = await db.get(User, body["userDbId"])
        agent = await db.get(Agent, body["agent_id"])
    assert user is not None and agent is not None
    assert user.wallet_address == EVM and agent.ticker == "BASEAGENT0"


@pytest.mark.parametrize("address", EIP55, ids=range(len(EIP55)))
async def test_valid_checksums_all_lower_and_all_upper_are_accepted(client: httpx.AsyncClient, address: str) -> None:
    forms = [address, address.lower(), "0x" + address[2:].upper()]
    for n, form in enumerate(forms):
        response = await client.post(f"{V1}/register", json=v1_body(f"evm_{n}_{address[2:8]}", wallet=form))
        assert response.status_code == 200, (form, response.text)
        assert response.json()["wallet_address"] == address


@pytest.mark.parametrize("at", [0, 3, -1])
async def test_a_wrong_checksum_is_400_and_stores_nothing(client: httpx.AsyncClient, at: int) -> None:
    before = await counts(client)
    wrong = flip_case(EIP55[1], at)
    assert wrong != EIP55[1] and checksummed(wrong) == EIP55[1]
    response = await client.post(f"{V1}/register", json=v1_body("bad_checksum", wallet=wrong))
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_wallet_checksum"
    assert "wallet_address" in response.json()["error"] and "EIP-55" in response.json()["error"]
    assert await counts(client) == before


@pytest.mark.parametrize(
    "wallet",
    ["0x" + "a" * 39, "0x" + "a" * 41, "0x" + "g" * 40, "0X" + "a" * 40, "0x", "0x" + "a" * 40 + "\n", ""],
    ids=["39-hex", "41-hex", "not-hex", "capital-X", "bare-prefix", "newline", "empty"],
)
async def test_malformed_evm_addresses_are_400(client: httpx.AsyncClient, wallet: str) -> None:
    response = await client.post(f"{V1}/register", json=v1_body("bad_evm", wallet=wallet))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_wallet"


async def test_v1_path_also_takes_a_solana_key_and_an_explicit_ticker(client: httpx.AsyncClient) -> None:
    body, _auth = await v1_register(client, "SolOnV1", wallet=VALID_WALLET, ticker="sol1")
    assert body["wallet_address"] == VALID_WALLET and body["ticker"] == "SOL1"


async def test_api_v1_refuses_an_evm_wallet(client: httpx.AsyncClient) -> None:
    before = await counts(client)
    for wallet in (EVM, EVM.lower()):
        response = await client.post(f"{V2}/register", json=v1_body("evm_on_v2", wallet=wallet, ticker="EVM"))
        assert response.status_code == 400
        assert response.json() == {
            "error": "wallet_address must be a Solana base58 public key (32 bytes)",
            "code": "invalid_wallet",
        }
    assert await counts(client) == before


@pytest.mark.parametrize("path", [V1, V2])
async def test_registration_without_ticker_derives_it_on_both_paths(client: httpx.AsyncClient, path: str) -> None:
    wallet = EVM if path == V1 else VALID_WALLET
    response = await client.post(f"{path}/register", json=v1_body("QuietBot7", wallet=wallet))
    assert response.status_code == 200, response.text
    assert response.json()["ticker"] == "QUIETBOT7" and response.json()["agent_name"] == "QuietBot7"
    explicit = await client.post(f"{path}/register", json=v1_body("LoudBot", wallet=wallet, ticker="loud"))
    assert explicit.json()["ticker"] == "LOUD"
    null = await client.post(f"{path}/register", json=v1_body("NullTicker", wallet=wallet, ticker=None))
    assert null.status_code == 200 and null.json()["ticker"] == "NULLTICKER"


# Pairs of names that are different names (both register) but derive one ticker: the second is refused with a
# 400 asking for an explicit ticker. Names differing only in case are one name (name_taken, below).
LOOK_ALIKES = [
    pytest.param("Nova_Bot", "nova-bot", "NOVABOT", id="punctuation"),
    pytest.param("NovaBot", "Nova_bot", "NOVABOT", id="case-and-underscore"),
    pytest.param("streamerbot_one", "StreamerBot-Two", "STREAMERBO", id="same-first-10"),
    pytest.param("a-b-c-1", "ABC1", "ABC1", id="dashes"),
]


@pytest.mark.parametrize(("first", "second", "ticker"), LOOK_ALIKES)
@pytest.mark.parametrize("path", [V1, V2])
async def test_derived_ticker_collision_is_400_asking_for_one(
    client: httpx.AsyncClient, path: str, first: str, second: str, ticker: str
) -> None:
    wallet = EVM if path == V1 else VALID_WALLET
    created = await client.post(f"{path}/register", json=v1_body(first, wallet=wallet))
    assert created.status_code == 200 and created.json()["ticker"] == ticker
    before = await counts(client)
    refused = await client.post(f"{path}/register", json=v1_body(second, wallet=wallet))
    assert refused.status_code == 400
    error = refused.json()
    assert error["code"] == "ticker_taken" and f"'{ticker}'" in error["error"]
    assert "send a ticker" in error["error"], "names the field to send"
    assert await counts(client) == before, "nothing stored"
    chosen = await client.post(f"{path}/register", json=v1_body(second, wallet=wallet, ticker="OTHER1"))
    assert chosen.status_code == 200 and chosen.json()["ticker"] == "OTHER1"


async def test_collision_is_with_any_agent_and_chosen_tickers_may_repeat(client: httpx.AsyncClient) -> None:
    """Tickers are not unique (none of the stored ones are); only a derived one must not copy another's."""
    assert (await client.post(f"{V2}/register", json=v1_body("Chooser", wallet=OTHER_WALLET, ticker="ZED"))).is_success
    again = await client.post(f"{V2}/register", json=v1_body("Chooser2", wallet=OTHER_WALLET, ticker="zed"))
    assert again.status_code == 200 and again.json()["ticker"] == "ZED"
    derived = await client.post(f"{V1}/register", json=v1_body("Zed"))
    assert derived.status_code == 400 and derived.json()["code"] == "ticker_taken"


async def test_names_differing_only_in_case_are_one_name(client: httpx.AsyncClient) -> None:
    await v1_register(client, "CaseBot")
    response = await client.post(f"{V1}/register", json=v1_body("casebot"))
    assert response.status_code == 400 and response.json()["code"] == "name_taken"


@pytest.mark.parametrize("path", [V1, V2])
@pytest.mark.parametrize("name", ["___", "-_-", "_-__-_"])
async def test_nothing_to_derive_is_400_ticker_required(client: httpx.AsyncClient, path: str, name: str) -> None:
    wallet = EVM if path == V1 else VALID_WALLET
    response = await client.post(f"{path}/register", json=v1_body(name, wallet=wallet))
    assert response.status_code == 400
    assert response.json()["code"] == "ticker_required" and response.json()["error"].startswith("ticker is required")
    assert (await client.post(f"{path}/register", json=v1_body(name, wallet=wallet, ticker="X"))).status_code == 200


# -- the other six calls --------------------------------------------------------------------------------------


async def test_rtmp_is_a_get_with_both_field_names(client: httpx.AsyncClient) -> None:
    _body, auth = await v1_register(client, "RtmpBot")
    first = await client.get(f"{V1}/rtmp", headers=auth)
    assert first.status_code == 200
    creds = first.json()
    assert set(creds) == {"url", "key", "rtmp_url", "stream_key"}
    assert creds["rtmp_url"] == creds["url"] == platform_of(client).settings.rtmp_url
    assert creds["stream_key"] == creds["key"] and creds["key"].startswith("sk_")
    assert (await client.get(f"{V1}/rtmp", headers=auth)).json()["key"] != creds["key"], "a fresh key per call"
    assert await platform_of(client).agents.agent_for_stream_key(creds["key"]) is None, "the older idle key revoked"
    wrong_method = await client.post(f"{V1}/rtmp", headers=auth)
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == "method_not_allowed"
    assert wrong_method.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/rtmp"),
        ("POST", "/stream/start"),
        ("POST", "/stream/stop"),
        ("GET", "/stream/status"),
        ("GET", "/stream/comments"),
        ("POST", "/chat/send"),
    ],
)
async def test_every_authed_call_is_401_without_a_token(client: httpx.AsyncClient, method: str, path: str) -> None:
    missing = await client.request(method, f"{V1}{path}")
    assert missing.status_code == 401 and missing.json()["code"] == "missing_token"
    bad = await client.request(method, f"{V1}{path}", headers={"Authorization": "Bearer rtk_" + "x" * 40})
    assert bad.status_code == 401 and bad.json() == {"error": "invalid access token", "code": "invalid_token"}


async def test_start_status_stop_are_the_v2_session(client: httpx.AsyncClient) -> None:
    body, auth = await v1_register(client, "LifeBot")
    start = await client.post(f"{V1}/stream/start", headers=auth)
    assert start.status_code == 200
    started = start.json()
    # API.md, not the first API's 400: an unverified agent starts, its token fields are empty until verified.
    assert started["success"] is True and started["token"]["tokenAddress"] == ""
    assert set(started["token"]) >= {"name", "ticker", "imageUrl", "tokenAddress", "tokenType"}
    v1_status = (await client.get(f"{V1}/stream/status", headers=auth)).json()
    v2_status = (await client.get(f"{V2}/stream/status", headers=auth)).json()
    assert v1_status == v2_status
    assert {"is_live", "viewers", "uptime_seconds", "token_address"} <= set(v1_status)
    assert v1_status["session_id"] == started["session_id"] and v1_status["userDbId"] == body["userDbId"]
    again = (await client.post(f"{V2}/stream/start", headers=auth)).json()
    assert again["session_id"] == started["session_id"], "the same session on both paths"
    stop = await client.post(f"{V1}/stream/stop", headers=auth)
    assert stop.status_code == 200 and stop.json()["status"] == "stopped"
    assert set(stop.json()) == {"status", "duration_seconds", "viewers"}
    twice = await client.post(f"{V1}/stream/stop", headers=auth)
    assert twice.status_code == 409 and twice.json()["code"] == "no_active_session"


async def test_verified_agent_gets_its_token_on_v1_start(client: httpx.AsyncClient) -> None:
    body, auth = await v1_register(client, "TokenBot")
    await platform_of(client).agents.operator_verify("TokenBot")
    token = (await client.post(f"{V1}/stream/start", headers=auth)).json()["token"]
    assert token["ticker"] == body["ticker"] == "TOKENBOT" and token["tokenAddress"]
    status = (await client.get(f"{V1}/stream/status", headers=auth)).json()
    assert status["token_address"] == token["tokenAddress"]


async def test_chat_send_is_the_same_event_on_every_path(client: httpx.AsyncClient) -> None:
    streamer, streamer_auth = await v1_register(client, "RoomBot")
    viewer, viewer_auth = await v1_register(client, "ChatterBot", wallet=EIP55[2])
    events = record_events(client)
    sent = await client.post(
        f"{V1}/chat/send", json={"userDbId": streamer["userDbId"], "message": "hello, v1"}, headers=viewer_auth
    )
    assert sent.status_code == 200, sent.text
    answer = sent.json()
    assert set(answer) >= {"message_id", "sent_at"} and answer["message_id"] == answer["chat_event_id"]
    [event] = [e for e in events if e.name == "message"]
    assert event.room == streamer["userDbId"]
    broadcast = wire_payload(event)
    assert broadcast["_id"] == answer["message_id"] and broadcast["text"] == "hello, v1"
    author = {"userDbId": viewer["userDbId"], "_id": viewer["userDbId"], "walletType": "EVM"}
    assert broadcast["author"] | author == broadcast["author"], "Socket.IO's payload names the sender as v1 does"
    assert broadcast["author"]["walletAddress"] == EIP55[2]

    params = {"userDbId": streamer["userDbId"]}
    v2 = (await client.get(f"{V2}/stream/comments", params=params, headers=streamer_auth)).json()["comments"]
    v1 = (await client.get(f"{V1}/stream/comments", params=params, headers=streamer_auth)).json()["comments"]
    assert v2 == [broadcast], "the REST page holds the comment that was broadcast"
    [comment] = v1
    assert comment == {**broadcast, "id": answer["message_id"], "username": "ChatterBot", "message": "hello, v1"}


async def test_chat_send_accepts_the_token_in_the_body_and_names_errors(client: httpx.AsyncClient) -> None:
    streamer, _ = await v1_register(client, "BodyRoom")
    viewer, _ = await v1_register(client, "BodyTokenBot", wallet=VALID_WALLET)
    body = {"userDbId": streamer["userDbId"], "message": "token in body", "access_token": viewer["access_token"]}
    assert (await client.post(f"{V1}/chat/send", json=body)).status_code == 200
    page = await client.get(f"{V1}/stream/comments", params={"userDbId": streamer["userDbId"]}, headers=auth_of(viewer))
    [comment] = page.json()["comments"]
    assert comment["author"]["walletType"] == "SOL" and comment["author"]["walletAddress"] == VALID_WALLET
    auth = auth_of(viewer)
    unknown = await client.post(f"{V1}/chat/send", json={"userDbId": "nobody", "message": "hi"}, headers=auth)
    assert unknown.status_code == 404 and unknown.json()["code"] == "streamer_not_found"
    missing = await client.post(f"{V1}/chat/send", json={"message": "hi"}, headers=auth)
    assert missing.status_code == 400 and missing.json() == {"error": "userDbId is required", "code": "missing_field"}
    v2_name = await client.post(
        f"{V1}/chat/send", json={"destination_user_id": streamer["userDbId"], "message": "hi"}, headers=auth
    )
    assert v2_name.status_code == 400 and v2_name.json()["code"] == "missing_field"
    empty = await client.post(f"{V1}/chat/send", json={"userDbId": streamer["userDbId"], "message": " "}, headers=auth)
    assert empty.status_code == 400 and empty.json()["code"] == "invalid_message"


async def test_comments_pages_errors_and_etag(client: httpx.AsyncClient) -> None:
    streamer, auth = await v1_register(client, "PagesBot")
    params = {"userDbId": streamer["userDbId"]}
    never_live = await client.get(f"{V1}/stream/comments", params=params, headers=auth)
    # API.md over the first API's 404: a known streamer without chat is an empty page.
    assert never_live.status_code == 200 and never_live.json() == {"comments": [], "next_cursor": None}
    unknown = await client.get(f"{V1}/stream/comments", params={"userDbId": "nobody"}, headers=auth)
    assert unknown.status_code == 404 and unknown.json()["code"] == "streamer_not_found"
    for bad in ({"limit": 0}, {"limit": 101}, {"beforeId": "x1"}):
        response = await client.get(f"{V1}/stream/comments", params=bad, headers=auth)
        assert response.status_code == 400 and set(response.json()) == {"error", "code"}, bad

    ids = []
    for n in range(5):
        sent = await client.post(f"{V1}/chat/send", json={**params, "message": f"line {n}"}, headers=auth)
        ids.append(sent.json()["message_id"])
    first = await client.get(f"{V1}/stream/comments", params={**params, "limit": 2}, headers=auth)
    page = first.json()
    assert [c["id"] for c in page["comments"]] == [ids[4], ids[3]] and page["next_cursor"] == ids[3]
    assert [c["message"] for c in page["comments"]] == ["line 4", "line 3"]
    older = await client.get(f"{V1}/stream/comments", params={"limit": 2, "beforeId": ids[3]}, headers=auth)
    assert [c["_id"] for c in older.json()["comments"]] == [ids[2], ids[1]], "userDbId defaults to your own"

    etag = first.headers["etag"]
    again = await client.get(
        f"{V1}/stream/comments", params={**params, "limit": 2}, headers={**auth, "If-None-Match": etag}
    )
    assert again.status_code == 304 and again.headers["etag"] == etag
    await client.post(f"{V2}/stream/chat/send", json={"destination_user_id": streamer["userDbId"], "message": "new"},
                      headers=auth)  # fmt: skip
    changed = await client.get(
        f"{V1}/stream/comments", params={**params, "limit": 2}, headers={**auth, "If-None-Match": etag}
    )
    assert changed.status_code == 200 and changed.json()["comments"][0]["message"] == "new"


async def test_openapi_lists_the_v1_paths_under_their_tag(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    expected = {
        "/api/agent/register": "post",
        "/api/agent/rtmp": "get",
        "/api/agent/stream/start": "post",
        "/api/agent/stream/stop": "post",
        "/api/agent/stream/status": "get",
        "/api/agent/stream/comments": "get",
        "/api/agent/chat/send": "post",
    }
    listed = {path: set(ops) for path, ops in paths.items() if path.startswith("/api/agent/")}
    assert listed == {path: {method} for path, method in expected.items()}
    for path, method in expected.items():
        assert paths[path][method]["tags"] == ["v1 compatibility"]
