"""Which requests mean that somebody looks at live streams' previews (streams/previews.py makes a fresh one then):

- the home page and the listings its live grid polls (``/``, ``/api/v1/users/live/``, ``/api/v1/sessions/active/``):
  every live stream's preview;
- a share card (``/api/v1/cards/<user_id>.jpg``) or a preview image (``/media/previews/<stream_id>/...``): that
  stream's.

A pure ASGI wrapper that only reads the path (no body, no response change), so it costs a dict lookup per request.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from retake.streams.previews import PREVIEW_KIND, PreviewService

EVERY_STREAM = frozenset({"/", "/api/v1/users/live/", "/api/v1/sessions/active/"})
_CARD = "/api/v1/cards/"
_PREVIEW = f"/media/{PREVIEW_KIND}/"


def looked_at(path: str) -> tuple[bool, str | None]:
    """(looks at previews?, whose: a stream id, or None for every stream's) for a request path."""
    if path in EVERY_STREAM:
        return True, None
    if path.startswith(_CARD) and path.endswith(".jpg"):
        user_id = path[len(_CARD) : -len(".jpg")]
        return ("/" not in user_id and bool(user_id)), user_id
    if path.startswith(_PREVIEW):
        stream_id = path[len(_PREVIEW) :].split("/", 1)[0]
        return bool(stream_id), stream_id
    return False, None


class PreviewLooks:
    def __init__(self, app: ASGIApp, previews: Callable[[], PreviewService | None]) -> None:
        self.app = app
        self._previews = previews  # the platform's, once the lifespan built it (None: previews are off)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") in ("GET", "HEAD"):
            looks, whose = looked_at(scope["path"])
            if looks and (previews := self._previews()) is not None:
                previews.looked_at(whose)
        await self.app(scope, receive, send)
