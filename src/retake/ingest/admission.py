"""Who may take an RTMP connection slot, how often an address may try stream keys, and how much the ingest
says about the ones it turns away.

The ingest port faces the internet: until a publish is authorized, a connection is a stranger. One address
may hold ``max_per_ip`` connections; wrong keys from an address are answered later and later and then not
at all for a while (a stream key is 128 bits, so this is about load and log noise more than guessing); and
refusals are logged at most a few lines per window per kind, with the number left out, so a flood does not
become a flood of log lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """Per-address limits of the RTMP ingest (the global connection cap is the server's)."""

    max_per_ip: int = 8
    # Wrong keys: the first few are answered at once; after that each refusal waits twice as long as the
    # previous one (up to backoff_max_seconds); past block_after failures within failure_window_seconds the
    # address is refused outright (before the handshake) for block_seconds.
    free_failures: int = 3
    backoff_first_seconds: float = 0.5
    backoff_max_seconds: float = 4.0
    block_after: int = 10
    block_seconds: float = 60.0
    failure_window_seconds: float = 300.0


@dataclass(slots=True)
class _KeyFailures:
    count: int = 0  # wrong keys since the last accepted one
    pending: int = 0  # keys being checked right now
    last: float = 0.0
    blocked_until: float = 0.0


class Admission:
    """Connection counts and wrong-key history per address (the peer's IP, as the socket reports it)."""

    def __init__(self, limits: AdmissionLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self._clock = clock
        self._open: dict[str, int] = {}
        self._failures: dict[str, _KeyFailures] = {}

    def connections_of(self, ip: str) -> int:
        return self._open.get(ip, 0)

    def blocked(self, ip: str) -> bool:
        """The address failed too many keys lately: its connections are refused before the handshake."""
        record = self._failures.get(ip)
        return record is not None and record.blocked_until > self._clock()

    def full(self, ip: str) -> bool:
        return self._open.get(ip, 0) >= self.limits.max_per_ip

    def opened(self, ip: str) -> None:
        self._open[ip] = self._open.get(ip, 0) + 1

    def closed(self, ip: str) -> None:
        left = self._open.get(ip, 0) - 1
        if left > 0:
            self._open[ip] = left
        else:
            self._open.pop(ip, None)

    def key_attempt(self, ip: str) -> float | None:
        """A key from ``ip`` is about to be checked: seconds to wait first, or ``None`` to refuse it unchecked.

        An address that has not failed a key since its last good one is not a suspect: one host publishing
        many streams at once (a bench, an agent farm behind one NAT) starts them all in parallel, and none of
        those attempts counts against it. Once an address has failed, its attempts in flight count as failures
        until they are settled, so attempts made in parallel back off (and block) like attempts made one after
        the other. Every call is settled by exactly one of :meth:`key_accepted`, :meth:`key_refused` and
        :meth:`key_abandoned`."""
        now = self._clock()
        record = self._current(ip)
        if record is None:
            record = self._failures[ip] = _KeyFailures()
            self._prune(now)
        if record.blocked_until > now:
            return None
        record.pending += 1
        record.last = now
        if record.count == 0:
            return 0.0
        tried = record.count + record.pending
        if tried >= self.limits.block_after:
            record.blocked_until = now + self.limits.block_seconds
        over = tried - 1 - self.limits.free_failures
        if over < 0:
            return 0.0
        return float(min(self.limits.backoff_first_seconds * 2**over, self.limits.backoff_max_seconds))

    def key_refused(self, ip: str) -> None:
        """The key was checked and is wrong."""
        now = self._clock()
        record = self._failures.get(ip)
        if record is None:  # forgiven while the check ran
            record = self._failures[ip] = _KeyFailures()
        record.pending = max(0, record.pending - 1)
        record.count += 1
        record.last = now
        if record.count >= self.limits.block_after:
            record.blocked_until = max(record.blocked_until, now + self.limits.block_seconds)

    def key_accepted(self, ip: str) -> None:
        """A good key: the address's wrong keys are forgiven."""
        record = self._failures.get(ip)
        if record is None:
            return
        record.pending = max(0, record.pending - 1)
        record.count = 0
        record.blocked_until = 0.0
        if record.pending == 0:
            del self._failures[ip]

    def key_abandoned(self, ip: str) -> None:
        """The attempt ended unchecked (the client left during its back-off, or the check itself failed)."""
        record = self._failures.get(ip)
        if record is not None:
            record.pending = max(0, record.pending - 1)

    def _current(self, ip: str) -> _KeyFailures | None:
        record = self._failures.get(ip)
        if record is None:
            return None
        now = self._clock()
        if now - record.last > self.limits.failure_window_seconds and record.blocked_until <= now:
            del self._failures[ip]  # forgiven
            return None
        return record

    def _prune(self, now: float) -> None:
        # Bounded by the addresses that failed within the window; swept whenever a new one fails.
        if len(self._failures) < 4096:
            return
        window = self.limits.failure_window_seconds
        for ip in [ip for ip, r in self._failures.items() if now - r.last > window and r.blocked_until <= now]:
            del self._failures[ip]


@dataclass
class LogLimiter:
    """At most ``burst`` lines per ``window`` seconds for each kind of line."""

    clock: Callable[[], float]
    burst: int = 5
    window: float = 10.0
    _state: dict[str, list[float]] = field(default_factory=dict)  # kind -> [window start, lines, suppressed]

    def allow(self, kind: str) -> int | None:
        """``None``: drop this line. Otherwise log it, with the returned number of lines dropped before it."""
        now = self.clock()
        state = self._state.get(kind)
        if state is None or now - state[0] >= self.window:
            dropped = 0 if state is None else int(state[2])
            self._state[kind] = [now, 1.0, 0.0]
            return dropped
        if state[1] < self.burst:
            state[1] += 1
            dropped = int(state[2])
            state[2] = 0.0
            return dropped
        state[2] += 1
        return None
