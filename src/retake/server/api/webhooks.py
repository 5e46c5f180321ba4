"""Push to agents over HTTP (API.md "Push to agents"): the agent's webhook, its test ping and delivery log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from retake.errors import RetakeError
from retake.server.api.deps import AgentDep, PlatformDep
from retake.server.api.schemas import ERRORS, Lenient
from retake.webhooks.service import MAX_LISTED, WebhookService

router = APIRouter(prefix="/api/v1/agent/webhook", tags=["push"], responses=ERRORS)


class WebhookIn(Lenient):
    url: str = Field(max_length=2000, description="http(s) URL the platform POSTs events to")
    events: list[str] | None = Field(default=None, max_length=32, description="event types; omitted = all")


class WebhookSet(BaseModel):
    url: str
    events: list[str]
    secret: str = Field(description="whsec_…: shown only in this answer; a new PUT rotates it")


class WebhookShown(BaseModel):
    url: str
    events: list[str]
    enabled: bool
    last_success_at: str | None
    last_failure_at: str | None
    failing_since: str | None


class Deleted(BaseModel):
    deleted: bool


class TestQueued(BaseModel):
    delivery_id: str


class DeliveryAttempt(BaseModel):
    id: str
    event_id: str
    type: str
    attempt: int
    status_code: int | None
    error: str | None
    latency_ms: int
    at: str | None


class Deliveries(BaseModel):
    deliveries: list[DeliveryAttempt]


def _service(platform: PlatformDep) -> WebhookService:
    if platform.webhooks is None:
        raise RetakeError("push is not running on this node", code="unavailable")
    return platform.webhooks


@router.put("", response_model=WebhookSet)
async def put_webhook(body: WebhookIn, who: AgentDep, platform: PlatformDep) -> dict[str, Any]:
    """Set (or replace) the webhook; the answer carries a new signing secret."""
    return await _service(platform).put(who.user.id, body.url, body.events)


@router.get("", response_model=WebhookShown)
async def get_webhook(who: AgentDep, platform: PlatformDep) -> dict[str, Any]:
    return await _service(platform).show(who.user.id)


@router.delete("", response_model=Deleted)
async def delete_webhook(who: AgentDep, platform: PlatformDep) -> dict[str, bool]:
    return await _service(platform).delete(who.user.id)


@router.post("/test", response_model=TestQueued)
async def test_webhook(who: AgentDep, platform: PlatformDep) -> dict[str, str]:
    """Queue a ``ping`` event; its attempts appear in ``/deliveries`` under ``delivery_id``."""
    return await _service(platform).test(who.user.id)


@router.get("/deliveries", response_model=Deliveries)
async def deliveries(
    who: AgentDep,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED, description="at most 100")] = MAX_LISTED,
) -> dict[str, Any]:
    """The newest delivery attempts first."""
    return await _service(platform).deliveries(who.user.id, limit)
