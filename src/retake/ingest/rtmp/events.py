"""Events the sans-IO :class:`~retake.ingest.rtmp.connection.RtmpConnection` emits, besides the media of the
accepted publish, which it emits as :class:`retake.av.message.MediaMessage` (the one media message type).

Fields that may carry a secret (the publish name holds the stream key; tcUrl may hold tokens) are kept out
of ``repr`` so an event can be logged as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def strip_query(value: str) -> str:
    """``"key?token=abc"`` → ``"key"``: ffmpeg passes a URL's query inside the publish name [media notes
    §1.4]; the key is what precedes it."""
    return value.split("?", 1)[0]


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of every connection event."""


@dataclass(frozen=True, slots=True)
class HandshakeCompleted(Event):
    client_digest: bool  # C1 carried a Flash-Player digest (ffmpeg always sends one)
    c2_echoed_s1: bool  # C2 echoed our S1 (tolerated either way)


@dataclass(frozen=True, slots=True)
class Connected(Event):
    """``connect`` was answered with NetConnection.Connect.Success."""

    app: str  # the application name, query string removed
    flash_ver: str
    tc_url: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class PublishRequested(Event):
    """``publish`` arrived. Parsing pauses until the owner calls ``accept_publish()`` or
    ``reject_publish()``; nothing reaches the client before that decision."""

    stream_id: int
    app: str
    name: str = field(repr=False)  # raw publish name: the stream key, possibly with "?query"
    publish_type: str = "live"

    @property
    def key(self) -> str:
        """The stream key: the publish name without its query string. Never log it."""
        return strip_query(self.name)


@dataclass(frozen=True, slots=True)
class PublishEnded(Event):
    """The client ended its publish (``FCUnpublish``, ``deleteStream`` or ``closeStream``)."""

    stream_id: int
    command: str


@dataclass(frozen=True, slots=True)
class ConnectionClosed(Event):
    """The peer closed its side (``receive_data(b"")``)."""

    reason: str = "eof"
