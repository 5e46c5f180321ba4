"""Wallet sign-in with a real ed25519 keypair: nonce → signed message → JWT, on both databases."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import base58
import httpx

from retake.ratelimit import RateLimiter
from retake.store.types import utcnow
from tests.identity.support import Wallet, platform_of, row_counts

NONCE = "/api/v1/auth/nonce"
WALLET = "/api/v1/auth/wallet"


async def nonce_for(client: httpx.AsyncClient, wallet: Wallet) -> dict[str, str]:
    response = await client.post(NONCE, json={"wallet_address": wallet.address})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_sign_in_creates_the_wallet_user_once(client: httpx.AsyncClient) -> None:
    wallet = Wallet()
    challenge = await nonce_for(client, wallet)
    assert wallet.address in challenge["message"] and challenge["nonce"] in challenge["message"]
    assert challenge["expires_at"].endswith("Z")
    first = await client.post(
        WALLET, json={"wallet_address": wallet.address, "signature": wallet.sign(challenge["message"])}
    )
    assert first.status_code == 200, first.text
    user = first.json()["user"]
    assert user["kind"] == "wallet" and user["wallet_address"] == wallet.address
    assert user["username"] == f"{wallet.address[:4]}-{wallet.address[-4:]}"
    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {first.json()['token']}"})
    assert me.status_code == 200 and me.json()["user_id"] == user["user_id"]

    # Second sign-in (naming the nonce explicitly this time): same account, no new user row.
    users_before = (await row_counts(client))["users"]
    again = await nonce_for(client, wallet)
    second = await client.post(
        WALLET,
        json={"wallet_address": wallet.address, "signature": wallet.sign(again["message"]), "nonce": again["nonce"]},
    )
    assert second.status_code == 200 and second.json()["user"]["user_id"] == user["user_id"]
    assert (await row_counts(client))["users"] == users_before


async def test_bad_signature_and_reused_nonce_are_refused(client: httpx.AsyncClient) -> None:
    wallet, thief = Wallet(), Wallet()
    challenge = await nonce_for(client, wallet)
    before = await row_counts(client)
    forged = await client.post(
        WALLET, json={"wallet_address": wallet.address, "signature": thief.sign(challenge["message"])}
    )
    assert forged.status_code == 401 and forged.json()["code"] == "invalid_signature"
    tampered = await client.post(
        WALLET, json={"wallet_address": wallet.address, "signature": wallet.sign(challenge["message"] + " ")}
    )
    assert tampered.status_code == 401 and tampered.json()["code"] == "invalid_signature"
    assert await row_counts(client) == before, "a refused sign-in stores nothing"

    good = wallet.sign(challenge["message"])
    assert (await client.post(WALLET, json={"wallet_address": wallet.address, "signature": good})).status_code == 200
    replay = await client.post(WALLET, json={"wallet_address": wallet.address, "signature": good})
    assert replay.status_code == 401 and replay.json() == {
        "error": "this sign-in message was already used: request a new nonce",
        "code": "nonce_used",
    }


async def test_concurrent_sign_ins(client: httpx.AsyncClient) -> None:
    """Two first sign-ins of one wallet create one user; one signature used twice at once wins once."""
    wallet = Wallet()
    first, second = await nonce_for(client, wallet), await nonce_for(client, wallet)
    answers = await asyncio.gather(
        *(
            client.post(WALLET, json={"wallet_address": wallet.address, "signature": wallet.sign(c["message"])})
            for c in (first, second)
        )
    )
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json()["user"]["user_id"] == answers[1].json()["user"]["user_id"]
    assert (await row_counts(client))["identity_links"] == 1

    third = await nonce_for(client, wallet)
    body = {"wallet_address": wallet.address, "signature": wallet.sign(third["message"])}
    replayed = await asyncio.gather(*(client.post(WALLET, json=body) for _ in range(2)))
    assert sorted(a.status_code for a in replayed) == [200, 401]


async def test_expired_nonce_is_refused(client: httpx.AsyncClient) -> None:
    wallet = Wallet()
    identity = platform_of(client).identity
    challenge = await nonce_for(client, wallet)
    identity.clock = lambda: utcnow() + timedelta(minutes=5, seconds=1)
    late = await client.post(
        WALLET, json={"wallet_address": wallet.address, "signature": wallet.sign(challenge["message"])}
    )
    assert late.status_code == 401 and late.json()["code"] == "nonce_expired"
    identity.clock = lambda: utcnow() + timedelta(minutes=4, seconds=50)
    challenge = await nonce_for(client, wallet)  # issued "now" by the same clock: still fresh
    ok = await client.post(
        WALLET, json={"wallet_address": wallet.address, "signature": wallet.sign(challenge["message"])}
    )
    assert ok.status_code == 200


async def test_bad_input_stores_nothing(client: httpx.AsyncClient) -> None:
    wallet = Wallet()
    before = await row_counts(client)
    cases = [
        (NONCE, {"wallet_address": "not-base58!"}, 400, "invalid_wallet"),
        (NONCE, {"wallet_address": base58.b58encode(b"x" * 31).decode()}, 400, "invalid_wallet"),
        (NONCE, {}, 400, "missing_field"),
        (WALLET, {"wallet_address": wallet.address, "signature": "abc"}, 400, "invalid_signature"),
        (WALLET, {"wallet_address": wallet.address, "signature": "0OIl" * 22}, 400, "invalid_signature"),
        (WALLET, {"wallet_address": "bad", "signature": wallet.sign("x")}, 400, "invalid_wallet"),
        (WALLET, {"wallet_address": wallet.address}, 400, "missing_field"),
        (
            WALLET,
            {"wallet_address": wallet.address, "signature": wallet.sign("x"), "nonce": "a\x00"},
            400,
            "invalid_nonce",
        ),
        (WALLET, {"wallet_address": wallet.address, "signature": wallet.sign("x")}, 401, "no_nonce"),
    ]
    for path, body, status, code in cases:
        response = await client.post(path, json=body)
        assert (response.status_code, response.json()["code"]) == (status, code), (path, body, response.text)
    assert await row_counts(client) == before
    # Every nonce is a row: an address asking too often is told to wait.
    platform_of(client).identity.nonce_limiter = RateLimiter("2/minute")
    codes = [(await client.post(NONCE, json={"wallet_address": wallet.address})).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
