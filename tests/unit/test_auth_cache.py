"""The access-token cache: TTL, forgetting, the lookup/forget race, the size bound."""

from __future__ import annotations

from dataclasses import dataclass

from retake.accounts.auth_cache import AuthCache


@dataclass(frozen=True)
class Entry:
    agent_id: str
    user_id: str


def test_hits_until_the_ttl_then_misses() -> None:
    now = [0.0]
    cache: AuthCache[Entry] = AuthCache(10, clock=lambda: now[0])
    cache.put("h1", Entry("a1", "u1"), cache.generation)
    now[0] = 7.4  # the TTL is spread over its last quarter
    assert cache.get("h1") == Entry("a1", "u1")
    now[0] = 10.0
    assert cache.get("h1") is None and len(cache) == 0


def test_forget_by_agent_or_user() -> None:
    cache: AuthCache[Entry] = AuthCache(10)
    for n in range(3):
        cache.put(f"h{n}", Entry(f"a{n}", f"u{n}"), cache.generation)
    cache.forget(agent_id="a0")
    cache.forget(user_id="u1")
    assert cache.get("h0") is None and cache.get("h1") is None
    assert cache.get("h2") == Entry("a2", "u2")


def test_a_lookup_that_started_before_a_forget_does_not_store() -> None:
    cache: AuthCache[Entry] = AuthCache(10)
    generation = cache.generation  # the lookup starts, reads the row ...
    cache.forget(agent_id="a1")  # ... meanwhile the token is rotated on this node
    cache.put("old", Entry("a1", "u1"), generation)
    assert cache.get("old") is None


def test_disabled_and_bounded() -> None:
    off: AuthCache[Entry] = AuthCache(0)
    off.put("h", Entry("a", "u"), off.generation)
    assert off.get("h") is None
    now = [0.0]
    small: AuthCache[Entry] = AuthCache(10, max_entries=2, clock=lambda: now[0])
    small.put("h1", Entry("a1", "u1"), small.generation)
    now[0] = 1
    small.put("h2", Entry("a2", "u2"), small.generation)
    small.put("h3", Entry("a3", "u3"), small.generation)  # full: the oldest goes
    assert len(small) == 2 and small.get("h1") is None and small.get("h3") is not None
