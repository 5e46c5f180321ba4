"""Sans-IO RTMP server core: handshake, chunk stream, AMF0, messages and the per-connection state machine.

No asyncio, no sockets, no wall clock: bytes in, events out (the h11 model). See
:class:`~retake.ingest.rtmp.connection.RtmpConnection`.
"""

from retake.ingest.errors import RtmpProtocolError
from retake.ingest.rtmp.chunk import ChunkReader, ChunkWriter, RtmpMessage
from retake.ingest.rtmp.connection import ConnState, RtmpConfig, RtmpConnection, RtmpStateError
from retake.ingest.rtmp.events import (
    Connected,
    ConnectionClosed,
    Event,
    HandshakeCompleted,
    PublishEnded,
    PublishRequested,
)

__all__ = [
    "ChunkReader",
    "ChunkWriter",
    "ConnState",
    "Connected",
    "ConnectionClosed",
    "Event",
    "HandshakeCompleted",
    "PublishEnded",
    "PublishRequested",
    "RtmpConfig",
    "RtmpConnection",
    "RtmpMessage",
    "RtmpProtocolError",
    "RtmpStateError",
]
