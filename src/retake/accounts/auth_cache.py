"""Access token → (agent, user), remembered in process memory for a few seconds.

Every agent call used to look its token up in the database (an ORM join, ~1.6 ms of CPU with SQLite, the
largest single cost of a comments poll after the page itself). An agent polls every 3 s, so the entry must
outlive a few polls to help: ``Settings.auth_cache_seconds`` (default 10 s, 0 turns it off).

Correctness:
- The key is the token's SHA-256 digest, which is also what the database row holds, so a hit means the very
  digest the indexed lookup would have found; a dict lookup by digest leaks nothing about the token itself.
- This node drops an agent's entries at once when it rotates the token or changes the agent or its user
  (``forget``), and a lookup that started before such a change does not store what it read (``generation``).
- Other nodes (several behind a load balancer) and command-line tools do not reach this memory: there the
  TTL bounds the staleness, e.g. an access token rotated on node B still works on node A for at most
  ``auth_cache_seconds``. Callers read nothing from the cached values that may change meanwhile except
  display fields (the user's name and picture); verification, tokens and keys are always read from the store.
- The cached values (``AuthedAgent``: the agent id and a ``Principal`` snapshot of its user) are frozen and
  shared between requests.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class _Authed(Protocol):
    @property
    def agent_id(self) -> str: ...

    @property
    def user_id(self) -> str: ...


T = TypeVar("T", bound=_Authed)


class AuthCache(Generic[T]):
    def __init__(self, ttl: float, max_entries: int = 50_000, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, T]] = {}  # digest -> (expires at, value); insertion order = age
        self.generation = 0  # bumped by every forget: a lookup that started earlier must not store

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    def get(self, digest: str) -> T | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            self._entries.pop(digest, None)
            return None
        return entry[1]

    def put(self, digest: str, value: T, generation: int) -> None:
        """Store unless something was forgotten since ``generation`` was read (before the lookup)."""
        if not self.enabled or generation != self.generation:
            return
        if len(self._entries) >= self._max:
            self._drop_oldest()
        self._entries.pop(digest, None)  # re-inserted last: the dict stays ordered by age
        # Between 3/4 of the TTL and all of it: entries made together (every agent's first poll after a restart)
        # then do not all expire, and miss, together.
        self._entries[digest] = (self._clock() + self._ttl * (1 - random.random() / 4), value)

    def forget(self, *, agent_id: str | None = None, user_id: str | None = None) -> None:
        """Drop the entries of this agent and/or user (rare: token rotation, verification, profile changes)."""
        self.generation += 1
        stale = [
            digest
            for digest, (_expires, value) in self._entries.items()
            if value.agent_id == agent_id or value.user_id == user_id
        ]
        for digest in stale:
            del self._entries[digest]

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _drop_oldest(self) -> None:
        now = self._clock()
        expired = [digest for digest, (expires, _value) in self._entries.items() if expires <= now]
        for digest in expired or [next(iter(self._entries))]:
            del self._entries[digest]
