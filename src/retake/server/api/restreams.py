"""Restream to other platforms: the agent's RTMP(S) destinations and the status of their pushes."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from retake.server.api.deps import AgentDep, PlatformDep
from retake.server.api.schemas import ERRORS, Lenient

router = APIRouter(prefix="/api/v1/agent/restreams", tags=["restream"], responses=ERRORS)

PushState = Literal["idle", "connecting", "live", "retrying", "failed"]


class RestreamIn(Lenient):
    name: str = Field(max_length=64, description="a label, e.g. twitch")
    url: str = Field(max_length=2000, description="rtmp:// or rtmps:// server URL with its application path")
    key: str = Field(max_length=512, description="the destination's stream key (stored encrypted, never returned)")


class RestreamStatus(BaseModel):
    id: str
    name: str
    status: PushState = Field(description="idle while the agent is not live on the answering node")
    last_error: str | None
    bytes_sent: int
    uptime_seconds: int


class RestreamOut(RestreamStatus):
    url: str
    key_last4: str = Field(description="the last 4 characters of the key; the key itself is never returned")
    created_at: str


class RestreamList(BaseModel):
    restreams: list[RestreamOut]


class Removed(BaseModel):
    deleted: bool


@router.post("", response_model=RestreamOut, status_code=201)
async def add_restream(body: RestreamIn, who: AgentDep, platform: PlatformDep) -> dict[str, Any]:
    """Add a destination (at most 5); if the agent is live, the push starts at once."""
    return await platform.restreams.add(who.user.id, body.name, body.url, body.key)


@router.get("", response_model=RestreamList)
async def list_restreams(who: AgentDep, platform: PlatformDep) -> dict[str, Any]:
    return {"restreams": await platform.restreams.destinations(who.user.id)}


@router.delete("/{restream_id}", response_model=Removed)
async def remove_restream(restream_id: str, who: AgentDep, platform: PlatformDep) -> dict[str, bool]:
    await platform.restreams.remove(who.user.id, restream_id)
    return {"deleted": True}
