"""Platform events (chat messages, session starts, follows, trades) handed to the realtime layer.

Services publish here; the Socket.IO layer (or anything else) subscribes. Keeping this a tiny in-process
fan-out means services never import the realtime server, and tests can observe every event.

An event carries a frozen domain record with snake_case fields (``chat.results.Comment``,
``ledger.results.TradeRecord``, …), never its JSON: the wire form, with API.md's names, is made only at the edge
(``server/realtime/wire.py`` ``wire_payload``, which lists the record each event name carries), and handed to
subscribers in the domain that need it (push to agents) by the assembly.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

log = logging.getLogger(__name__)


class Record(Protocol):
    """A dataclass instance (what ``dataclasses.fields`` accepts): the services' records are frozen ones."""

    __dataclass_fields__: ClassVar[dict[str, Any]]


@dataclass(frozen=True)
class PlatformEvent:
    name: str  # Socket.IO event name: message, pinned, tip_received, newtrade, rawtrade, session_started, ...
    room: str  # Socket.IO room: "<streamer_id>", "live_<id>", "trades", ...
    record: Record  # what happened, in the domain's terms; its JSON is the edge's (see above)


# Events for subscribers inside the platform (push to agents maps them to webhook events), not for Socket.IO
# rooms: the public contract (API.md "Socket.IO") does not have them, so the relay leaves them out.
INTERNAL_EVENTS = frozenset({"session_ended", "encoder_disconnected", "operator_action", "agent_verified"})

Listener = Callable[[PlatformEvent], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def publish(self, event: PlatformEvent) -> None:
        for listener in list(self._listeners):
            try:
                await listener(event)
            except Exception:  # one broken listener must not lose the event for the others
                log.exception("event listener failed for %s", event.name)
