"""Viewer sign-in: guest accounts and wallet signatures, both answered with a platform JWT."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from retake.identity.jwt_keys import JwkSet
from retake.identity.viewers import SignIn
from retake.server.api import views
from retake.server.api.deps import PlatformDep, client_address
from retake.server.api.hints import REQUEST_NONCE, hint
from retake.server.api.profile_schemas import AuthOut, GuestIn, Jwks, NonceIn, NonceOut, WalletIn
from retake.server.api.schemas import ERRORS
from retake.server.platform import Platform
from retake.store.types import iso

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=ERRORS)


async def _answer(platform: Platform, sign_in: SignIn) -> dict[str, Any]:
    return {"token": sign_in.token, "user": views.own_profile(await platform.profiles.me(sign_in.user.id))}


@router.post("/guest", response_model=AuthOut)
async def guest(request: Request, platform: PlatformDep, body: GuestIn | None = None) -> dict[str, Any]:
    """A guest account; a name like ``guest-k3x9qa`` is generated when ``username`` is not given."""
    platform.register_limiter.hit(client_address(request), "sign-ups from this address")
    username = body.username if body is not None else None
    return await _answer(platform, await platform.identity.create_guest(username or None))


@router.post("/nonce", response_model=NonceOut)
async def nonce(body: NonceIn, request: Request, platform: PlatformDep) -> dict[str, Any]:
    """A single-use sign-in message, valid for five minutes: sign ``message`` and send it to ``/auth/wallet``."""
    platform.identity.nonce_limiter.hit(client_address(request), "sign-in requests from this address")
    issued = await platform.identity.issue_nonce(body.wallet_address)
    return {"nonce": issued.nonce, "message": issued.message, "expires_at": iso(issued.expires_at)}


@router.post("/wallet", response_model=AuthOut)
async def wallet(body: WalletIn, platform: PlatformDep) -> dict[str, Any]:
    """Check the base58 ed25519 ``signature`` of the nonce message; the wallet's account is created on first use."""
    with hint("no_nonce", REQUEST_NONCE):
        sign_in = await platform.identity.wallet_sign_in(body.wallet_address, body.signature, body.nonce)
    return await _answer(platform, sign_in)


@router.get("/jwks", response_model=Jwks)
async def jwks(platform: PlatformDep) -> JwkSet:
    """Public keys of the platform's JWTs (JWK Set), for services that verify our tokens themselves."""
    return platform.identity.keys.jwks()
