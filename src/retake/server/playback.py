"""Live playback: HTTP-FLV and WebSocket-FLV at ``/live/<userDbId>.flv``, LL-HLS at ``/live/<userDbId>/…``,
and recordings at ``/recordings/<session_id>/…``. Packets are copied, never transcoded.

FLV viewers are written from the publish path (``Subscriber.attach``): on retake's own uvicorn protocols the
response body (``retake.http.direct``) or the WebSocket (``retake.websocket.frames``) takes each tag, framed
once per stream, in one transport write per viewer; under another ASGI server they get ASGI messages as before."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from retake.errors import NotFound, RetakeError
from retake.media.errors import PlaylistRequestError
from retake.media.playlist import media_type_for
from retake.media.stream import LiveStream, Subscriber
from retake.server.api.deps import PlatformDep
from retake.server.api.schemas import ERRORS
from retake.server.http_protocol import direct_body_of
from retake.server.platform import Platform
from retake.server.realtime.frames import BinaryFrames, sink_of

log = logging.getLogger(__name__)
router = APIRouter(
    tags=["playback"],
    responses={
        **ERRORS,
        307: {"description": "the stream is live on another node of this platform: follow Location"},
        503: {"model": ERRORS[400]["model"], "description": "playlist not ready yet"},
    },
)

VIEWER_COOKIE = "rtk_viewer"
TOUCH_EVERY_SECONDS = 10.0
# Kernel send buffer of a direct FLV viewer (Linux doubles it): ~2-3 s of a 1.5 Mb/s stream before a viewer that
# stops reading shows as lag in the transport's buffer, and 4 MB/s over a 100 ms RTT for a remote one.
FLV_SEND_BUFFER_BYTES = 256 * 1024


class PlaylistUnavailable(RetakeError):
    status = 503
    code = "playlist_unavailable"


class ElsewhereRedirect(Exception):
    """The stream is live on another node: the client is sent there (HTTP 307, query kept)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


async def _live_stream(platform: Platform, stream_id: str, request: Request) -> LiveStream:
    stream = platform.media.live_stream(stream_id)
    local = stream is not None and not stream.closed
    if stream is not None and local and platform.media.has_publisher(stream_id):
        return stream
    # Not published here now: either in this node's reconnect grace (viewers wait for the encoder), or the encoder
    # came back on another node (another worker of --workers, after a drop), which the store names: go there.
    node = await platform.streams.media_node_of(stream_id)
    if node and node.rstrip("/") != platform.settings.node_url:
        query = f"?{request.url.query}" if request.url.query else ""
        raise ElsewhereRedirect(f"{node.rstrip('/')}{request.url.path}{query}")
    if stream is not None and local:
        return stream
    raise NotFound("this stream is not live", code="stream_not_live")


def install_redirects(app: FastAPI) -> None:
    @app.exception_handler(ElsewhereRedirect)
    async def _elsewhere(_request: Request, exc: ElsewhereRedirect) -> Response:
        return RedirectResponse(exc.location, status_code=307, headers={"Cache-Control": "no-store"})


def _viewer_id(request: Request) -> str:
    cookie = request.cookies.get(VIEWER_COOKIE)
    if cookie and 8 <= len(cookie) <= 64:
        return cookie
    # Without a cookie (CDNs, native players): the client address and agent are the best stable identity.
    seed = f"{request.client.host if request.client else ''}|{request.headers.get('user-agent', '')}"
    return "anon-" + hashlib.sha256(seed.encode()).hexdigest()[:16]


async def _counted(sub: Subscriber, platform: Platform, stream_id: str, viewer: str) -> AsyncIterator[bytes]:
    """Relay FLV bytes, touching the viewer count while the connection stays open."""
    last_touch = 0.0
    try:
        async for chunk in sub:
            now = time.monotonic()
            if now - last_touch > TOUCH_EVERY_SECONDS:
                platform.live.touch_viewer(stream_id, viewer)
                last_touch = now
            yield chunk
    finally:
        sub.close()


async def _hold(sub: Subscriber, receive: Callable[[], Awaitable[Any]], touch: Callable[[], None]) -> None:
    """While an attached viewer is written to by the stream: touch its count, and end when it leaves."""

    async def until_disconnect() -> None:
        while (await receive())["type"] not in ("http.disconnect", "websocket.disconnect"):
            pass

    left = asyncio.ensure_future(until_disconnect())
    closed = asyncio.ensure_future(sub.wait_closed())
    try:
        while not (left.done() or closed.done()):
            await asyncio.wait((left, closed), timeout=TOUCH_EVERY_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            if not (left.done() or closed.done()):
                touch()
    finally:
        left.cancel()
        closed.cancel()
        sub.close()


class FlvResponse(StreamingResponse):
    """The FLV body, written by the stream itself when the server offers ``retake.http.direct``."""

    def __init__(self, sub: Subscriber, platform: Platform, stream_id: str, viewer: str) -> None:
        super().__init__(
            _counted(sub, platform, stream_id, viewer),
            media_type="video/x-flv",
            headers={"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"},
        )
        self._sub = sub
        self._touch = lambda: platform.live.touch_viewer(stream_id, viewer)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = direct_body_of(scope)
        if body is None or not body.can_start:
            await super().__call__(scope, receive, send)
            return
        await self.body_iterator.aclose()  # type: ignore[attr-defined]  # the ASGI fallback, not needed
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if body.started:
            body.cap_kernel_buffer(FLV_SEND_BUFFER_BYTES)
            self._sub.attach(body)
            await _hold(self._sub, receive, self._touch)
        self._sub.close()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@router.get(
    "/live/{stream_id}.flv",
    response_class=StreamingResponse,
    responses={200: {"content": {"video/x-flv": {}}, "description": "FLV stream"}, 404: {"description": "not live"}},
)
async def flv(stream_id: str, request: Request, platform: PlatformDep) -> StreamingResponse:
    """Low-latency FLV: headers and the latest keyframe at once, then live tags."""
    stream = await _live_stream(platform, stream_id, request)
    viewer = _viewer_id(request) + ":" + secrets.token_hex(4)
    platform.live.touch_viewer(stream_id, viewer)
    return FlvResponse(stream.subscribe(), platform, stream_id, viewer)


@router.websocket("/live/{stream_id}.flv")
async def flv_websocket(websocket: WebSocket, stream_id: str) -> None:
    platform: Platform = websocket.app.state.platform
    stream = platform.media.live_stream(stream_id)
    if stream is None or stream.closed:
        # WebSockets cannot be redirected: tell the player where the stream is (it may reconnect there).
        node = await platform.streams.media_node_of(stream_id)
        if node and node.rstrip("/") != platform.settings.node_url and len(node) < 100:
            await websocket.close(code=4307, reason=node)
        else:
            await websocket.close(code=4404, reason="stream not live")
        return
    await websocket.accept()
    viewer = "ws:" + secrets.token_hex(8)
    platform.live.touch_viewer(stream_id, viewer)
    sub = stream.subscribe()
    sink = sink_of(websocket.scope)
    try:
        if sink is not None and sink.usable:  # uvicorn with retake's frame writer, no compression negotiated
            sink.cap_kernel_buffer(FLV_SEND_BUFFER_BYTES)
            sub.attach(BinaryFrames(sink))
            await _hold(sub, websocket.receive, lambda: platform.live.touch_viewer(stream_id, viewer))
        else:
            async for chunk in _counted(sub, platform, stream_id, viewer):
                await websocket.send_bytes(chunk)
        await websocket.close(code=1000, reason=sub.close_reason or "stream ended")
    except (WebSocketDisconnect, RuntimeError):
        pass  # the viewer left; _counted's finally released the subscription


@router.get(
    "/live/{stream_id}/index.m3u8",
    response_class=Response,
    responses={200: {"content": {"application/vnd.apple.mpegurl": {}}, "description": "LL-HLS media playlist"}},
)
async def hls_playlist(
    stream_id: str,
    request: Request,
    platform: PlatformDep,
    msn: Annotated[int | None, Query(alias="_HLS_msn", ge=0)] = None,
    part: Annotated[int | None, Query(alias="_HLS_part", ge=0)] = None,
) -> Response:
    """Blocking playlist reload per RFC 8216bis §6.2.5.2 with ``_HLS_msn`` / ``_HLS_part``."""
    stream = await _live_stream(platform, stream_id, request)
    packager = stream.hls
    if packager is None:
        raise NotFound("this stream has no HLS output", code="stream_not_live")
    viewer = _viewer_id(request)
    platform.live.touch_viewer(stream_id, viewer)
    try:
        if msn is not None or not packager.ready:
            await packager.wait_for(msn if msn is not None else 0, part)
    except PlaylistRequestError as exc:
        if exc.status_hint == 400:
            raise RetakeError(str(exc), code="invalid_hls_request") from exc
        raise PlaylistUnavailable("the playlist is not ready yet; retry shortly") from exc
    # For HTTP caches (docs/deploy/edge-nginx.conf): a blocking answer satisfies its _HLS_msn/_HLS_part for good,
    # so a cache keyed on the query may serve it while those parts are listed (3 target durations); the playlist
    # without directives changes with every part: one second ("no-cache" would make a cache pass every load on).
    max_age = 3 * packager.config.target_duration if msn is not None else 1
    response = Response(
        packager.render_playlist(),
        media_type="application/vnd.apple.mpegurl",
        headers={"Cache-Control": f"max-age={max_age}", "Access-Control-Allow-Origin": "*"},
    )
    if VIEWER_COOKIE not in request.cookies:
        response.set_cookie(VIEWER_COOKIE, viewer if viewer.startswith("v-") else "v-" + secrets.token_hex(8))
    return response


@router.get("/live/{stream_id}/{name}", response_class=Response)
async def hls_resource(stream_id: str, name: str, request: Request, platform: PlatformDep) -> Response:
    """Init segments, segments and parts; the preload-hinted part is held until it exists."""
    stream = await _live_stream(platform, stream_id, request)
    if stream.hls is None or len(name) > 64:
        raise NotFound("no such resource", code="not_found")
    data = await stream.hls.fetch(name)
    if data is None:
        raise NotFound("no such segment or part (it may have left the live window)", code="not_found")
    # Parts and segments never change while fetchable (live window + retained segments), but a later session of
    # the same stream reuses their names, so not "immutable"; init0.mp4 is reused at once by the next session
    # (maybe with other codec settings) and fetched once per viewer join: a short lifetime costs nothing.
    cfg = stream.hls.config
    max_age = 2 if name.startswith("init") else (cfg.window_segments + cfg.retained_segments) * cfg.target_duration
    return Response(
        data,
        media_type=media_type_for(name),
        headers={"Cache-Control": f"max-age={max_age}", "Access-Control-Allow-Origin": "*"},
    )
