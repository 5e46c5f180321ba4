"""Pages for people: the home page, the watch page ``/<AgentName>``, recordings.

``install_pages(app)`` must run after every API and playback route is registered: ``/{name}`` would otherwise
shadow them. Pages are rendered from the same services the public API reads, and hand their data to the
front-end as JSON inside ``<script type="application/json">`` (``tojson`` escapes ``<``, ``>``, ``&`` and
quotes), so user text reaches the page either through Jinja's autoescaping or through ``textContent``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.staticfiles import StaticFiles

from retake.errors import NotFound
from retake.identity.validation import NAME_RE, RESERVED_NAMES
from retake.server.api import views
from retake.server.api.deps import PlatformDep
from retake.server.api.share import card_url
from retake.server.cards import CARD_TTL_SECONDS
from retake.server.platform import Platform
from retake.server.realtime import wire

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
DIST_DIR = STATIC_DIR / "dist"
TEMPLATES_DIR = HERE / "templates"
BUNDLES = ("home.js", "watch.js", "recordings.js", "site.css", "economy.css")
RECORDINGS_ON_WATCH_PAGE = 8
RECORDINGS_PAGE_SIZE = 48

# Scripts only from this origin (no inline script runs: page data is JSON, not code); media from MSE blobs;
# images from anywhere over http(s) (agents' avatars live elsewhere); sockets and fetches to this origin.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' http: https: data: blob:",
        "media-src 'self' blob:",
        "worker-src 'self' blob:",
        "connect-src 'self' ws: wss:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'self'",
        "form-action 'self'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

_PALETTE = ("#7c5cff", "#ff5c8a", "#22c3a6", "#f5a524", "#3b82f6", "#e4572e", "#a855f7", "#10b981")


def avatar_color(name: str) -> str:
    """The same colour web/src/lib/dom.ts picks for a name, so server- and browser-drawn avatars agree."""
    value = 0
    for char in name:
        value = (value * 31 + ord(char)) & 0xFFFFFFFF
    return _PALETTE[value % len(_PALETTE)]


def http_url(value: str | None) -> str:
    """Only http(s) URLs and site paths become a src or href (never ``javascript:`` or ``data:``)."""
    if not value:
        return ""
    if value.startswith("/") and not value.startswith("//"):
        return value
    return value if urlsplit(value).scheme in {"http", "https"} else ""


def asset_url(path: str) -> str:
    """``/static/<path>?v=<mtime>``: browsers may cache assets forever, a rebuild changes the URL."""
    try:
        version = str(int(os.stat(STATIC_DIR / path).st_mtime))
    except OSError:
        version = "0"
    return f"/static/{path}?v={version}"


def clock(seconds: int | float | None) -> str:
    """3725 → ``1:02:05``; 65 → ``1:05`` (as web/src/lib/format.ts shows durations)."""
    total = max(0, int(seconds or 0))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def when(iso_text: str | None) -> str:
    """A UTC timestamp for people; the browser replaces it with local time (``<time datetime=…>``)."""
    if not iso_text:
        return ""
    try:
        moment = datetime.fromisoformat(iso_text.replace("Z", "+00:00"))
    except ValueError:
        return ""
    return moment.strftime("%b %d, %Y · %H:%M UTC")


def recording_title(item: dict[str, Any], username: str) -> str:
    """Sessions are titled "<name> is live" while they run; a recording reads better by its date."""
    title = item.get("title") or ""
    if title and title != f"{username} is live":
        return str(title)
    try:
        ended = datetime.fromisoformat(str(item.get("ended_at") or "").replace("Z", "+00:00"))
    except ValueError:
        return f"{username}'s stream"
    return f"Stream of {ended.strftime('%a, %b')} {ended.day}"


def bundle_ready() -> bool:
    return all((DIST_DIR / name).is_file() for name in BUNDLES)


def build_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES_DIR)  # autoescape is on for every template
    templates.env.globals.update(
        asset=asset_url, avatar_color=avatar_color, http_url=http_url, recording_title=recording_title
    )
    templates.env.filters.update(clock=clock, when=when)
    return templates


def install_pages(app: FastAPI) -> None:
    """Static files at ``/static`` and the page routes; call it last in ``create_app``."""
    if not bundle_ready():
        log.warning(
            "the front-end bundle is missing from %s: run `make web` (npm ci, then the esbuild build)", DIST_DIR
        )
    app.state.templates = build_templates()
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    app.include_router(router)


def _local(platform: Platform, url: str | None) -> str | None:
    """Our own absolute URLs as site paths, so the page works under whatever host name the viewer used."""
    base = platform.settings.public_url
    if url and url.startswith(base + "/"):
        return url[len(base) :]
    return url


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    context.setdefault("data", {})
    context["bundle_ready"] = bundle_ready()
    # The header offers "Get demo SOL" only where POST /wallet/airdrop would answer.
    platform: Platform | None = getattr(request.app.state, "platform", None)
    context["airdrop_enabled"] = bool(platform and platform.settings.enable_airdrop)
    context["public_url"] = platform.settings.public_url if platform else ""  # canonical and og: URLs
    response = templates.TemplateResponse(request, template, context, status_code=status_code, headers=PAGE_HEADERS)
    return response


def _not_found(request: Request, what: str) -> Response:
    """An HTML page for browsers; the platform's JSON error for everything else."""
    if "text/html" not in request.headers.get("accept", ""):
        raise NotFound(what, code="not_found")
    return _render(request, "404.html", status_code=404, message=what)


async def _agent(platform: Platform, name: str) -> dict[str, Any] | None:
    if not NAME_RE.match(name) or name.lower() in RESERVED_NAMES:
        return None
    try:
        streamer = views.streamer(await platform.directory.streamer(name))
    except NotFound:
        return None
    return streamer if streamer.get("is_agent") else None


def _no_agent(name: str) -> str:
    shown = name if len(name) <= 40 else name[:40] + "…"
    return f"There is no agent called “{shown}”."


def _card_image(platform: Platform, user_id: str) -> str:
    """The streamer's share card; the query changes every cache period, so unfurlers that cache by URL fetch
    what is on stream now rather than the card of their first visit."""
    return f"{card_url(platform, user_id)}?v={int(time.time() // CARD_TTL_SECONDS)}"


def _recording_item(platform: Platform, item: dict[str, Any]) -> dict[str, Any]:
    item = dict(item)
    item["recording_url"] = _local(platform, item.get("recording_url"))
    return item


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, platform: PlatformDep) -> Response:
    data = {
        "now": _now(),
        "live": [views.live_user(user) for user in await platform.directory.live_users()],
        "sessions": [views.session_card(card) for card in await platform.directory.active_sessions()],
        "newest": [views.user_card(card) for card in await platform.directory.newest(limit=12)],
    }
    return _render(request, "home.html", data=data)


@router.get("/{name}", response_class=HTMLResponse)
async def watch(name: str, request: Request, platform: PlatformDep) -> Response:
    streamer = await _agent(platform, name)
    if streamer is None:
        return _not_found(request, _no_agent(name))
    user_id = streamer["user_id"]
    try:
        live: dict[str, Any] | None = views.session_card(await platform.directory.active_session_of(user_id))
    except NotFound:
        live = None
    recorded = views.recorded_page(await platform.directory.recorded(user_id, RECORDINGS_ON_WATCH_PAGE, None))
    recordings = [_recording_item(platform, item) for item in recorded["sessions"]]
    last_thumbnail = (live or {}).get("thumbnail_url") or next(
        (item["thumbnail_url"] for item in recordings if item.get("thumbnail_url")), streamer.get("avatar_url") or ""
    )
    data = {
        "now": _now(),
        "streamer": {
            key: streamer.get(key)
            for key in ("user_id", "username", "avatar_url", "ticker", "token_address", "followers_count")
        },
        "live": live,
        "last_thumbnail": last_thumbnail,
        "recordings": recordings,
    }
    card = _card_image(platform, user_id)
    return _render(
        request, "watch.html", data=data, streamer=streamer, live=live, last_thumbnail=last_thumbnail, card_image=card
    )


@router.get("/{name}/recordings", response_class=HTMLResponse)
async def recordings(name: str, request: Request, platform: PlatformDep) -> Response:
    streamer = await _agent(platform, name)
    if streamer is None:
        return _not_found(request, _no_agent(name))
    recorded = views.recorded_page(await platform.directory.recorded(streamer["user_id"], RECORDINGS_PAGE_SIZE, None))
    items = [_recording_item(platform, item) for item in recorded["sessions"] if item.get("recording_url")]
    card = _card_image(platform, streamer["user_id"])
    return _render(request, "recordings.html", streamer=streamer, recordings=items, card_image=card)


@router.get("/{name}/recordings/{session_id}", response_class=HTMLResponse)
async def recording(name: str, session_id: str, request: Request, platform: PlatformDep) -> Response:
    streamer = await _agent(platform, name)
    if streamer is None:
        return _not_found(request, _no_agent(name))
    try:
        item = _recording_item(
            platform, views.recording(await platform.directory.recorded_session(streamer["user_id"], session_id[:64]))
        )
    except NotFound:
        return _not_found(request, "This recording does not exist (or has been removed).")
    recorded = views.recorded_page(await platform.directory.recorded(streamer["user_id"], 13, None))
    others = [
        _recording_item(platform, other)
        for other in recorded["sessions"]
        if other["session_id"] != item["session_id"] and other.get("recording_url")
    ][:12]
    data = {"recording_url": item["recording_url"]}
    card = _card_image(platform, streamer["user_id"])
    thumbnail = item.get("thumbnail_url") or ""
    share_image = thumbnail if thumbnail.startswith(("http://", "https://")) else card
    return _render(
        request,
        "recording.html",
        data=data,
        streamer=streamer,
        item=item,
        others=others,
        card_image=card,
        share_image=share_image,
    )


@router.get("/clip/{clip_id}", response_class=HTMLResponse)
async def clip(clip_id: str, request: Request, platform: PlatformDep) -> Response:
    try:
        if not _ID_RE.match(clip_id):
            raise NotFound("no such clip")
        info = wire.clip(await platform.clips.get(clip_id))
    except NotFound:
        return _not_found(request, "This clip does not exist (or has been removed).")
    streamer = await _agent(platform, str(info["username"]))
    return _render(
        request,
        "clip.html",
        clip=info,
        streamer=streamer,
        video_src=_local(platform, str(info["video_url"])),
        poster_src=_local(platform, str(info["thumbnail_url"])),
    )
