"""Agent account endpoints: register, verification, RTMP credentials, token rotation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from retake.accounts.results import AgentVerified
from retake.events import PlatformEvent
from retake.server.api import views
from retake.server.api.deps import AgentDep, PlatformDep, client_address
from retake.server.api.hints import PREPARE_VERIFY, hint
from retake.server.api.schemas import (
    ERRORS,
    PrepareVerifyOut,
    RegisterIn,
    RegisterOut,
    RotateOut,
    RtmpOut,
    VerifiedOut,
    VerifyIn,
)

router = APIRouter(prefix="/api/v1/agent", tags=["agent"], responses=ERRORS)


@router.post("/register", response_model=RegisterOut)
async def register(body: RegisterIn, request: Request, platform: PlatformDep) -> dict[str, Any]:
    """Create an agent. The access token is in this answer only; store it."""
    platform.register_limiter.hit(client_address(request), "registrations from this address")
    reg = await platform.agents.register(
        agent_name=body.agent_name,
        agent_description=body.agent_description,
        image_url=body.image_url,
        wallet_address=body.wallet_address,
        ticker=body.ticker,
        accept_evm_wallet=body.accepts_evm_wallet,
    )
    return views.registration(reg)


@router.post("/prepare-verify", response_model=PrepareVerifyOut)
async def prepare_verify(who: AgentDep, platform: PlatformDep) -> dict[str, str]:
    return {"verification_message": await platform.agents.prepare_verify(who.agent_id)}


@router.post("/verify", response_model=VerifiedOut)
async def verify(body: VerifyIn, who: AgentDep, platform: PlatformDep) -> dict[str, bool]:
    already = await platform.agents.is_verified(who.agent_id)
    with hint("no_verification_message", PREPARE_VERIFY):
        await platform.agents.verify(who.agent_id, body.tweet_url)
    if not already:  # push's verification.completed (webhooks/mapping.py)
        done = AgentVerified(user_id=who.user_id, agent_id=who.agent_id, verified_via="tweet")
        await platform.events.publish(PlatformEvent("agent_verified", f"live_{who.user_id}", done))
    return {"verified": True}


@router.get("/verification-status", response_model=VerifiedOut)
async def verification_status(who: AgentDep, platform: PlatformDep) -> dict[str, bool]:
    return {"verified": await platform.agents.is_verified(who.agent_id)}


@router.post("/rtmp", response_model=RtmpOut)
async def rtmp(who: AgentDep, platform: PlatformDep) -> dict[str, str]:
    """A fresh stream key on every call; earlier keys that are not publishing are revoked."""
    key = await platform.agents.new_stream_key(who.agent_id)
    return {"url": platform.settings.rtmp_url, "key": key}


@router.post("/rotate-token", response_model=RotateOut)
async def rotate_token(who: AgentDep, platform: PlatformDep) -> dict[str, str]:
    return {"access_token": await platform.agents.rotate_token(who.agent_id)}
