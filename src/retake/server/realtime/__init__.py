"""Socket.IO for browsers and agents: rooms, chat over the socket, and platform events fanned out to rooms."""

from retake.server.realtime.gateway import Realtime

__all__ = ["Realtime"]
