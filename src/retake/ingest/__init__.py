"""RTMP ingest: a sans-IO protocol core (:mod:`retake.ingest.rtmp`) and its asyncio server
(:class:`RtmpServer`). It calls out through :class:`IngestHooks` and imports nothing above it."""

from retake.ingest.errors import IngestError, RtmpProtocolError
from retake.ingest.hooks import IngestHooks, PublishGrant, UnpublishReason
from retake.ingest.server import RtmpServer

__all__ = [
    "IngestError",
    "IngestHooks",
    "PublishGrant",
    "RtmpProtocolError",
    "RtmpServer",
    "UnpublishReason",
]
