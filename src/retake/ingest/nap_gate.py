"""Holding a napping publisher's bytes in the kernel until the node's next read tick, without taking its socket
out of the event loop.

The read tick (``InputPath._nap``) first paused reading. On uvloop (what ``retake serve`` runs) that does not
take the socket out of epoll at once: libuv removes a stopped watcher's descriptor only when epoll next reports
it. So the publisher's next write, a few milliseconds after the read, still woke the process once more (for an
``epoll_ctl`` that removed the descriptor), and every tick cost two wake-ups instead of one. Measured on this
machine a wake-up of an otherwise idle loop is ~150 µs of CPU, the largest single cost of a stream alone
(docs/benchmarks.md, "One stream alone: one wake-up per tick").

Here the socket stays registered and readable-ness is held back in the kernel instead: a receive low-water mark
(``SO_RCVLOWAT``) above what one tick brings makes TCP neither report the socket readable nor wake the process
for the bytes that arrive during the nap. Lowering it back to 1 at the tick makes Linux check at once and
report the socket readable if bytes are waiting (``tcp_set_rcvlowat`` calls ``tcp_data_ready``), so everything
is read in the tick's wake-up, as before. More than the mark in the kernel (a fast stream), a closed
connection, or receive-memory pressure still wake the loop at once: the mark delays nothing that must not be
delayed. The kernel ACKs promptly while the mark is not reached, so the sender is not slowed.

Where the option is not there (not Linux, not a TCP socket), :meth:`NapGate.hold` says so and the caller
pauses reading as before.
"""

from __future__ import annotations

import asyncio
import socket
import sys

# The mark stays at a quarter of the receive buffer: Linux grows the buffer (and clamps the receive window to
# the mark) when the mark needs more than the buffer holds, and a nap must not change either.
_MIN_LOW_WATER = 4 * 1024
_MAX_LOW_WATER = 256 * 1024
_SUPPORTED = sys.platform.startswith("linux") and hasattr(socket, "SO_RCVLOWAT")


class NapGate:
    """One publisher connection's receive low-water mark, raised for a nap and lowered at the tick."""

    __slots__ = ("_low_water", "_sock", "held")

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket") if _SUPPORTED else None
        family = getattr(sock, "family", None)
        self._sock = sock if family in (socket.AF_INET, socket.AF_INET6) else None
        self._low_water = 0  # 0: not measured yet (or to be measured again after an early read)
        self.held = False

    def hold(self) -> bool:
        """Raise the mark; False if this socket cannot be held this way (the caller pauses reading)."""
        sock = self._sock
        if sock is None:
            return False
        try:
            if not self._low_water:
                buffer = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
                self._low_water = max(_MIN_LOW_WATER, min(_MAX_LOW_WATER, buffer // 4))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, self._low_water)
        except (OSError, ValueError):  # uvloop's socket of a closed transport raises ValueError (fd -1)
            self._sock = None  # closed meanwhile, or refused: pause and resume from now on
            return False
        self.held = True
        return True

    def overflowed(self) -> None:
        """Bytes came in during a nap (more than the mark): measure the buffer again at the next hold, as TCP
        grows it for a fast sender."""
        self._low_water = 0

    def release(self) -> None:
        """Lower the mark to 1: waiting bytes make the socket readable in this loop turn."""
        self.held = False
        sock = self._sock
        if sock is None:
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
        except (OSError, ValueError):  # uvloop's socket of a closed transport raises ValueError (fd -1)
            self._sock = None  # the socket is going; its transport reports that on its own
