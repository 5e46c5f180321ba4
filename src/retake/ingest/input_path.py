"""The read side of :class:`~retake.ingest.server.RtmpServer`: bytes from the transport into the sans-IO
connection, media straight to the hook, the hand-over of events to the connection's task, and its timer.

Parsing is bounded per loop turn: when the connection's work budget runs out with input left, reading
is paused and the parse goes on in the next turn (``call_soon``), so one peer sending chunk size 1 data
cannot hold the event loop for more than ~a millisecond at a time.
"""

from __future__ import annotations

import asyncio
import logging

from retake.av.message import MediaMessage
from retake.ingest.errors import RtmpProtocolError
from retake.ingest.hooks import IngestHooks
from retake.ingest.nap_gate import NapGate
from retake.ingest.peer import Client
from retake.ingest.rtmp.connection import ConnState, RtmpConfig

log = logging.getLogger("retake.ingest")


class HookFailed(Exception):
    """on_media raised: the connection is closed with reason "error"."""


class InputPath:
    """Mixed into RtmpServer, which sets these attributes."""

    _loop: asyncio.AbstractEventLoop | None
    _config: RtmpConfig
    _hooks: IngestHooks
    read_timeout: float
    setup_timeout: float
    read_coalesce: float
    _napping: list[Client]
    _nap_timer: asyncio.TimerHandle | None

    def _data_received(self, client: Client, data: bytes) -> None:
        if client.lingering or client.failure is not None or client.close_reason is not None:
            return  # nothing more is parsed; the task is ending the connection
        if client.busy or client.parsing:
            client.backlog.append(data)
            client.backlog_bytes += len(data)
            limit = self._config.max_paused_input if client.conn.authorized else self._config.preauth_max_bytes
            if client.backlog_bytes > limit:
                self._fail(client, RtmpProtocolError("too much data sent while reading was paused"))
            return
        assert self._loop is not None
        client.last_data = self._loop.time()
        if client.napping and (gate := _holding_gate(client)) is not None:
            gate.overflowed()  # read during the nap: more came than the mark
        try:
            client.conn.receive_data(data)
            self._dispatch(client)
        except Exception as exc:
            # Bad bytes (RtmpProtocolError) or a bug: the task ends this connection, and only this one, with
            # the reason it would have had when it read the bytes itself (an exception escaping a transport
            # callback would make the loop close the transport as a mere disconnect).
            self._fail(client, exc)
            return
        if client.conn.input_pending and not client.busy:
            self._parse_later(client)
        elif client.grant is not None and self.read_coalesce > 0 and not client.busy:
            self._nap(client)

    def _nap(self, client: Client) -> None:
        """A publisher's bytes were parsed: stop reading its socket until the node's next read tick, so what
        arrives meanwhile waits in the kernel and comes in one read, in the same wake-up as every other
        napping publisher's. ffmpeg sends each of its ~73 messages a second in its own write, and each woke
        the process for an epoll round, a read and an ACK check (a video frame also for a viewer write); with
        a tick of ``read_coalesce`` seconds a stream costs a wake-up per tick instead (docs/benchmarks.md, "One
        stream alone: ..."). The price is up to one tick of extra delay. Where it can, the nap holds the bytes
        in the kernel with a receive low-water mark instead of pausing reading (ingest/nap_gate.py: a pause
        on uvloop cost a second wake-up per tick)."""
        assert self._loop is not None
        if client.napping or client.transport.is_closing():
            return
        client.napping = True
        gate = client.gate
        if gate is None:
            gate = client.gate = NapGate(client.transport)
        if not gate.hold():  # no low-water mark here: take the socket out of the loop until the tick
            client.transport.pause_reading()
        self._napping.append(client)
        if self._nap_timer is None:
            self._nap_timer = self._loop.call_later(self.read_coalesce, self._wake_nappers)

    def _wake_nappers(self) -> None:
        self._nap_timer = None
        napping, self._napping = self._napping, []
        for client in napping:
            client.napping = False
            gate = _holding_gate(client)
            if gate is not None:
                if not client.transport.is_closing():
                    gate.release()  # reading was never paused for the nap
            elif _may_read(client):
                client.transport.resume_reading()

    def _parse_later(self, client: Client) -> None:
        """The parse ran out of budget: let the loop run other work, then go on (reading paused meanwhile)."""
        assert self._loop is not None
        client.parsing = True
        if not client.transport.is_closing():
            client.transport.pause_reading()
        self._loop.call_soon(self._continue_parsing, client)

    def _continue_parsing(self, client: Client) -> None:
        client.parsing = False
        if client.lingering or client.failure is not None or client.close_reason is not None or client.busy:
            return
        try:
            client.conn.continue_parsing()
            self._dispatch(client)
        except Exception as exc:
            self._fail(client, exc)
            return
        if not client.busy:
            self._feed_backlog(client)

    def _dispatch(self, client: Client) -> None:
        """Hand each media message of the accepted publish to ``on_media``, here in the read callback; the
        first other event goes to the task, together with everything queued behind it."""
        conn = client.conn
        grant = client.grant
        on_media = self._hooks.on_media
        while (event := conn.next_event()) is not None:
            if grant is not None and type(event) is MediaMessage:
                try:
                    on_media(grant, event)
                except Exception:
                    log.exception("rtmp on_media failed on connection %d", client.id)
                    self._fail(client, HookFailed())
                    return
                if client.close_reason is not None:
                    return  # closed meanwhile (close_publisher): the rest is dropped
                continue
            client.held = event
            self._hand_over(client)
            return
        data = conn.data_to_send()  # acknowledgements, ping answers
        if data:
            client.transport.write(data)
            if client.write_ready is not None:
                self._hand_over(client)  # the peer does not read: the task waits, with write_timeout

    def _hand_over(self, client: Client) -> None:
        client.busy = True
        if not client.transport.is_closing():
            client.transport.pause_reading()
        client.wake.set()

    def _fail(self, client: Client, exc: BaseException) -> None:
        if client.failure is None:
            client.failure = exc
        if not client.transport.is_closing():
            client.transport.pause_reading()
        client.wake.set()

    def _resume(self, client: Client) -> None:
        """The task is done with the events: feed what arrived meanwhile, then read again."""
        assert self._loop is not None
        client.busy = False
        client.last_data = self._loop.time()
        self._feed_backlog(client)

    def _feed_backlog(self, client: Client) -> None:
        if client.conn.input_pending:
            self._parse_later(client)
            return
        while client.backlog and not client.busy and not client.parsing and client.failure is None:
            data = client.backlog.pop(0)
            client.backlog_bytes -= len(data)
            self._data_received(client, data)
        if _may_read(client) and (not client.napping or _holding_gate(client) is not None):
            client.transport.resume_reading()  # a nap that paused reading resumes it at the tick

    # -- timeouts -----------------------------------------------------------------------------------------

    def _deadline(self, client: Client) -> float:
        deadline = client.last_data + self.read_timeout
        if client.conn.state is not ConnState.PUBLISHING:
            deadline = min(deadline, client.setup_deadline)
        return deadline

    def _arm_timer(self, client: Client) -> None:
        assert self._loop is not None
        if client.timer is not None:
            client.timer.cancel()
        client.timer = self._loop.call_at(self._deadline(client), self._on_timer, client)

    def _on_timer(self, client: Client) -> None:
        # One timer per connection, re-armed when it fires early, instead of a timeout context per read.
        assert self._loop is not None
        client.timer = None
        if client.eof or client.failure is not None or client.close_reason is not None:
            return
        now = self._loop.time()
        if client.busy or client.lingering:
            # The task is working (a hook, a drain, the linger): only time spent waiting for bytes counts,
            # and reading restarts the clock when the task gives it back.
            client.timer = self._loop.call_at(now + self.read_timeout, self._on_timer, client)
            return
        deadline = self._deadline(client)
        if now >= deadline:
            self._fail(client, TimeoutError())
            return
        client.timer = self._loop.call_at(deadline, self._on_timer, client)


def _may_read(client: Client) -> bool:
    """Nothing holds the connection's reading paused: no task event, no parse in progress, no failure, open."""
    return not (client.busy or client.parsing or client.failure is not None or client.transport.is_closing())


def _holding_gate(client: Client) -> NapGate | None:
    """The gate when the connection's nap holds its bytes with the low-water mark (not by paused reading)."""
    gate = client.gate
    return gate if gate is not None and gate.held else None
