"""The façade the server wires up: registration (REST), the EventBus subscriber, and the delivery worker.

For every platform event that concerns an agent, the subscriber builds one envelope ``{id, type, created_at,
data}``, publishes it on the bus for the agent's private Socket.IO room (``agent_<userDbId>``, event
``agent_event``: the realtime relay's Redis manager carries it to whichever node the agent is on),
and writes one outbox row per enabled webhook that wants the type. The bus runs only on the node that handled
the request, so each event is written once however many nodes there are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.errors import NotFound, ValidationFailed
from retake.events import EventBus, PlatformEvent
from retake.store.tables import WebhookEndpoint
from retake.store.types import iso
from retake.webhooks.envelope import EVENT_TYPES, encode, envelope, new_secret
from retake.webhooks.mapping import AGENT_EVENT, AgentEvent, AgentPush, Encode, agent_events
from retake.webhooks.outbox import Outbox, RetryPolicy
from retake.webhooks.targets import check_target
from retake.webhooks.worker import DeliveryWorker

log = logging.getLogger(__name__)

MAX_LISTED = 100
KNOWN_CACHE = 50_000  # user id → is an agent (a user's kind never changes, so answers can be kept)


@dataclass(frozen=True)
class WebhookConfig:
    allow_private: bool = False
    poll_seconds: float = 30.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)


def agent_room(user_id: str) -> str:
    return f"agent_{user_id}"


class _CachedLookups:
    """``mapping.Lookups`` over the outbox, remembering which users are agents."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self._known: dict[str, bool] = {}

    async def agent_users(self, user_ids: set[str]) -> set[str]:
        unknown = {u for u in user_ids if u not in self._known}
        if unknown:
            agents = await self._outbox.agent_users(unknown)
            if len(self._known) > KNOWN_CACHE:
                self._known.clear()
            self._known.update({u: u in agents for u in unknown})
        return {u for u in user_ids if self._known.get(u)}

    async def agents_named(self, name_keys: set[str]) -> dict[str, str]:
        return await self._outbox.agents_named(name_keys)

    async def agent_of_token(self, token_address: str) -> str | None:
        return await self._outbox.agent_of_token(token_address)


class WebhookService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        events: EventBus,
        dialect: str,
        config: WebhookConfig,
        *,
        encode: Encode,  # a platform event's JSON (server/realtime/wire.py): the agent events' data
    ) -> None:
        self._encode = encode
        self.outbox = Outbox(sessions, dialect, config.policy)
        self._events = events
        self._config = config
        self._lookups = _CachedLookups(self.outbox)
        self.worker = DeliveryWorker(self.outbox, allow_private=config.allow_private, poll_seconds=config.poll_seconds)
        self._unsubscribe: Any = None

    def start(self) -> None:
        self._unsubscribe = self._events.subscribe(self.on_event)
        self.worker.start()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self.worker.stop()

    # -- the subscriber ------------------------------------------------------------------------------------

    async def on_event(self, event: PlatformEvent) -> None:
        if event.name == AGENT_EVENT:
            return
        for found in await agent_events(event, self._lookups, self._encode):
            await self.push(found)

    async def push(self, found: AgentEvent) -> str | None:
        """Emit one agent event on the socket room and queue it for the agent's webhook; the delivery id, if any."""
        body = envelope(found.type, found.data)
        # The agent socket: the Socket.IO relay emits bus events to their room on every node (through Redis).
        await self._events.publish(PlatformEvent(AGENT_EVENT, agent_room(found.user_id), AgentPush(body)))
        # The outbox hands the row to this node's worker itself (or wakes it): no wake-up here.
        delivery_id = await self.outbox.enqueue(found.user_id, found.type, body["id"], encode(body))
        return None if delivery_id is None else str(delivery_id)

    # -- REST ----------------------------------------------------------------------------------------------

    async def put(self, user_id: str, url: Any, events: Any) -> dict[str, Any]:
        await check_target(url, self._config.allow_private)
        wanted = _event_filter(events)
        secret = new_secret()
        await self.outbox.put_endpoint(user_id, url, wanted, secret)
        self.worker.wake()  # a re-enabled endpoint's queued rows go out now, not at the (slow) safety-net poll
        log.info("webhook set for user %s", user_id)  # never the secret
        return {"url": url, "events": wanted if wanted is not None else list(EVENT_TYPES), "secret": secret}

    async def show(self, user_id: str) -> dict[str, Any]:
        return _shown(await self._require(user_id))

    async def delete(self, user_id: str) -> dict[str, bool]:
        if not await self.outbox.delete_endpoint(user_id):
            raise NotFound("no webhook is set for this agent", code="webhook_not_found")
        return {"deleted": True}

    async def test(self, user_id: str) -> dict[str, str]:
        endpoint = await self._require(user_id)
        if not endpoint.enabled:
            raise ValidationFailed("the webhook is disabled after failing; PUT it again to enable it", code="disabled")
        delivery_id = await self.push(AgentEvent(user_id, "ping", {"message": "ping", "userDbId": user_id}))
        if delivery_id is None:  # deleted between the two reads
            raise NotFound("no webhook is set for this agent", code="webhook_not_found")
        return {"delivery_id": delivery_id}

    async def deliveries(self, user_id: str, limit: int) -> dict[str, Any]:
        rows = await self.outbox.attempts(user_id, max(1, min(limit, MAX_LISTED)))
        return {
            "deliveries": [
                {
                    "id": str(a.delivery_id),
                    "event_id": a.event_id,
                    "type": a.type,
                    "attempt": a.attempt,
                    "status_code": a.status_code,
                    "error": a.error,
                    "latency_ms": a.latency_ms,
                    "at": iso(a.at),
                }
                for a in rows
            ]
        }

    async def warnings(self, user_id: str) -> list[dict[str, Any]]:
        """A ``warnings`` entry for stream status when the agent's webhook was disabled."""
        endpoint = await self.outbox.endpoint(user_id)
        if endpoint is None or endpoint.enabled:
            return []
        return [
            {
                "id": f"webhook_{endpoint.id}",
                "kind": "webhook_disabled",
                "reason": f"webhook {endpoint.url} was disabled after failing for "
                f"{self._config.policy.disable_after_seconds / 86400:g} days; set the webhook again to enable it",
                "session_id": None,
                "created_at": iso(endpoint.disabled_at),
            }
        ]

    async def _require(self, user_id: str) -> WebhookEndpoint:
        endpoint = await self.outbox.endpoint(user_id)
        if endpoint is None:
            raise NotFound("no webhook is set for this agent", code="webhook_not_found")
        return endpoint


def _event_filter(events: Any) -> list[str] | None:
    if events is None:
        return None
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise ValidationFailed("events must be a non-empty list of event type names", code="invalid_events")
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise ValidationFailed(
            f"events: unknown type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}", code="invalid_events"
        )
    return sorted(set(events), key=EVENT_TYPES.index)


def _shown(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "events": endpoint.events if endpoint.events is not None else list(EVENT_TYPES),
        "enabled": endpoint.enabled,
        "last_success_at": iso(endpoint.last_success_at),
        "last_failure_at": iso(endpoint.last_failure_at),
        "failing_since": iso(endpoint.failing_since),
    }
