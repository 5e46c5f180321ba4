"""Raids (issue 16): ``POST /api/v1/agent/raid {target}`` sends the raider's viewers to another live agent."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from retake.server.api.deps import AgentDep, PlatformDep
from retake.server.api.schemas import ERRORS, Lenient
from retake.server.realtime import wire

router = APIRouter(prefix="/api/v1", tags=["raids"], responses=ERRORS)


class RaidIn(Lenient):
    # Any JSON here, so a number, a list or a blank string is answered 400 ``invalid_target`` by the service.
    target: Any = Field(default=None, description="the live agent to raid: its name (any case) or its userDbId")


class RaidPartyOut(BaseModel):
    userDbId: str  # the API's name for a user id
    agent_name: str
    url: str = Field(description="the agent's watch page")


class RaidOut(BaseModel):
    raid_id: str
    raider: RaidPartyOut
    target: RaidPartyOut
    url: str = Field(description="the target's watch page: where the raider's viewers are taken")
    viewers: int = Field(description="the raider's viewers when the raid started")
    seconds: float = Field(description="how long the viewers see the raid banner before their page moves")
    moves_at: str | None


@router.post("/agent/raid", response_model=RaidOut)
async def raid(who: AgentDep, platform: PlatformDep, body: RaidIn | None = None) -> dict[str, Any]:
    """Raid another live agent: both chats announce it and your viewers' pages move there after ``seconds``
    (400 ``invalid_target`` / ``self_raid``, 404 ``target_not_found``, 409 ``not_live`` / ``target_not_live``,
    429 ``rate_limited``: ``RETAKE_RAID_RATE``)."""
    started = await platform.raids.start(who.user, (body or RaidIn()).target)
    return wire.raid(started)
