"""Wake-ups between the processes of one platform: "the store changed, look again", instead of polling it.

A running node used to poll the store for what another process wrote: operator actions (``retake admin warn`` /
``shutdown``, or the console on another node) and sessions ended on a node that does not hold the publisher. Now
the writer nudges a topic after its commit and the waiters of that topic wake at once, on this node and on every
other process sharing the store:

- PostgreSQL: ``NOTIFY retake_<topic>`` after the commit, ``LISTEN`` on one dedicated connection per node. The
  channels are per database, so exactly the nodes (and the command line) of one platform hear each other.
- SQLite: one server process per database file (``--workers`` needs PostgreSQL), so a datagram to a Unix socket
  in the abstract namespace, named after the database file, reaches it from the command line. Any local process
  can send one: a datagram's only content is a topic name and all it does is make the node read the store again
  (a burst is coalesced into one read), so nothing is trusted from it.

A nudge carries no data: the receiver reads the store as the poll did. So a lost nudge (a LISTEN connection
being re-made, no server bound to the socket) costs only the time to the slow safety-net poll each waiter keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import logging
import os
import socket
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)

OPERATOR = "operator"  # an operator action was recorded (chat/operator.py)
SESSIONS = "sessions"  # a session ended: its publisher may be on another node (streams/lifecycle.py)
TOPICS = frozenset({OPERATOR, SESSIONS})
RECONNECT_MAX_SECONDS = 30.0


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """True once ``event`` is set, False when ``seconds`` passed first; a cancellation always goes through.

    asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that arrives as the event is set
    (gh-86296). A watcher cancelled at shutdown as a nudge came in waited on for another safety-net interval
    (tests/api/test_console.py's shutdown timed out about one run in twelve). Every wait of the node's loops on
    an event with a limit goes through here."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


class Waiter:
    """One waiter's flag: set by nudges of its topic, cleared when the waiter wakes (bursts coalesce)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, safety_net: float) -> bool:
        """True when nudged, False when ``safety_net`` seconds passed first."""
        try:
            return await wait_set(self._event, safety_net)
        finally:
            self._event.clear()


Deliver = Callable[[str], None]  # wakes this node's waiters of a topic


class Transport(Protocol):
    async def start(self, deliver: Deliver) -> None: ...
    async def send(self, topic: str) -> None: ...
    async def close(self) -> None: ...


class Nudges:
    """The topics' waiters on this node, and the transport that carries nudges to the other processes."""

    def __init__(self, transport: Transport | None = None) -> None:
        self._transport = transport
        self._waiters: dict[str, list[Waiter]] = {topic: [] for topic in TOPICS}

    def waiter(self, topic: str) -> Waiter:
        waiter = Waiter()
        self._waiters[topic].append(waiter)
        return waiter

    def deliver(self, topic: str) -> None:
        """Wake this node's waiters of ``topic`` (what the transport calls for other processes' nudges)."""
        for waiter in self._waiters.get(topic, ()):
            waiter.set()

    async def nudge(self, topic: str) -> None:
        """After a commit: wake the waiters here at once, and those of every other process. Never raises: a lost
        nudge is caught up by the safety-net poll."""
        self.deliver(topic)
        if self._transport is None:
            return
        try:
            await self._transport.send(topic)
        except Exception as exc:
            log.warning("sending a %s nudge to the other nodes failed: %s", topic, exc)

    async def start(self) -> None:
        if self._transport is not None:
            await self._transport.start(self.deliver)

    async def close(self) -> None:
        if self._transport is not None:
            await self._transport.close()


def for_store(url: URL, sessions: async_sessionmaker[AsyncSession]) -> Nudges:
    """The nudges of the platform whose store is at ``url`` (an in-memory SQLite store has no other process)."""
    if url.get_backend_name() == "postgresql":
        return Nudges(PostgresTransport(url, sessions))
    if not url.database or url.database == ":memory:":
        return Nudges()
    return Nudges(SqliteSocketTransport(url.database))


class PostgresTransport:
    """``pg_notify`` through the store's pool; ``LISTEN`` on a connection of its own, re-made when it drops."""

    def __init__(self, url: URL, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._sessions = sessions
        self._origin = uuid.uuid4().hex  # this process's own notifications are already delivered locally
        self._deliver: Deliver = _nobody
        self._conn: Any = None  # an asyncpg connection (asyncpg ships no type information)
        self._reconnecting: asyncio.Task[None] | None = None
        self._closed = False

    async def send(self, topic: str) -> None:
        async with self._sessions() as db:
            await db.execute(
                text("SELECT pg_notify(:channel, :origin)"), {"channel": _channel(topic), "origin": self._origin}
            )
            await db.commit()

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        await self._listen()

    async def _listen(self) -> None:
        asyncpg: Any = importlib.import_module("asyncpg")  # only with PostgreSQL; it ships no type information
        conn = await asyncpg.connect(self._dsn)
        for topic in TOPICS:
            await conn.add_listener(_channel(topic), self._notified)
        conn.add_termination_listener(self._lost)
        self._conn = conn

    def _notified(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        topic = channel.removeprefix("retake_")
        if payload != self._origin and topic in TOPICS:
            self._deliver(topic)

    def _lost(self, _conn: Any) -> None:
        if not self._closed and self._reconnecting is None:
            log.warning("the PostgreSQL LISTEN connection for nudges dropped; re-making it")
            self._reconnecting = asyncio.create_task(self._reconnect(), name="nudges-reconnect")

    async def _reconnect(self) -> None:
        delay = 0.5
        while not self._closed:
            try:
                await self._listen()
            except Exception as exc:
                log.warning("re-making the LISTEN connection failed (%s); again in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(RECONNECT_MAX_SECONDS, delay * 2)
                continue
            self._reconnecting = None
            for topic in TOPICS:  # what was notified while the connection was down: look once
                self._deliver(topic)
            return

    async def close(self) -> None:
        self._closed = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)


def _channel(topic: str) -> str:
    return f"retake_{topic}"


def _nobody(_topic: str) -> None:
    """Before ``start``: a transport that only sends (the command line's) delivers to nobody."""


class SqliteSocketTransport:
    """The server binds the database file's socket and reads datagrams; other processes send to it."""

    def __init__(self, database: str) -> None:
        digest = hashlib.sha256(os.path.realpath(database).encode()).hexdigest()[:32]
        self.address = f"\0retake-nudges-{digest}"
        self._sock: socket.socket | None = None
        self._deliver: Deliver = _nobody

    async def start(self, deliver: Deliver) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(self.address)
        except OSError as exc:  # another server on this database file, or no abstract sockets (not Linux)
            sock.close()
            log.warning("no nudge socket for this SQLite store (%s): other processes' changes are seen by polls", exc)
            return
        sock.setblocking(False)
        self._sock, self._deliver = sock, deliver
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        assert self._sock is not None
        topics: set[str] = set()
        for _ in range(64):  # a burst coalesces; the rest is read on the next turn of the loop
            try:
                topics.add(self._sock.recv(64).decode("ascii", "replace"))
            except (BlockingIOError, InterruptedError):
                break
        for topic in topics & TOPICS:
            self._deliver(topic)

    async def send(self, topic: str) -> None:
        if self._sock is not None:
            return  # this is the server: its own waiters were woken in-process
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
            sock.setblocking(False)  # no server bound (ECONNREFUSED) or its queue is full: the poll catches up
            sock.sendto(topic.encode(), self.address)

    async def close(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
