"""The ingest package's exception tree.

Everything the ingest raises on bad input derives from :class:`IngestError`; the sans-IO RTMP core raises
exactly one kind, :class:`RtmpProtocolError`, for any malformed or illegal byte sequence, so the asyncio
wrapper needs a single ``except`` to drop a bad peer without affecting any other connection.
"""

from __future__ import annotations


class IngestError(Exception):
    """Base of every error raised by ``retake.ingest``."""


class RtmpProtocolError(IngestError):
    """The peer sent bytes that are not valid RTMP (or not valid in the current state).

    The connection that raised it is finished: it must be closed without a reply.
    """
