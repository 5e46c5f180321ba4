"""Share cards and links (issue 16): ``GET /api/v1/cards/:user_id.jpg`` (the 1200×630 card of what is on stream
now) and ``GET /api/v1/agent/share`` (the stream URL, the card URL and a post the agent can publish as is)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel

from retake.errors import NotFound
from retake.server.api.deps import AgentDep, PlatformDep
from retake.server.api.schemas import ERRORS
from retake.server.cards import CARD_TTL_SECONDS, CardFacts, render_card
from retake.server.platform import Platform
from retake.server.workers import image_pool

router = APIRouter(prefix="/api/v1", tags=["share"], responses=ERRORS)

IdPath = Annotated[str, PathParam(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class ShareOut(BaseModel):
    stream_url: str
    card_url: str
    post_text: str
    is_live: bool


def card_url(platform: Platform, user_id: str) -> str:
    return f"{platform.settings.public_url}/api/v1/cards/{user_id}.jpg"


def stream_url(platform: Platform, username: str) -> str:
    return f"{platform.settings.public_url}/{quote(username)}"


def _local_file(platform: Platform, url: str | None) -> Path | None:
    """A preview or thumbnail this node stores (``<public_url>/media/…``); other URLs are not fetched."""
    prefix = platform.settings.public_url + "/media/"
    if not url or not url.startswith(prefix):
        return None
    root = (platform.settings.data_dir / "media").resolve()
    path = (root / url[len(prefix) :]).resolve()
    return path if path.is_relative_to(root) else None


async def card_facts(platform: Platform, user_id: str) -> CardFacts:
    profile = await platform.directory.metadata(user_id)  # 404 user_not_found
    try:
        live = await platform.directory.active_session_of(user_id)
    except NotFound:
        return CardFacts(profile.username, False, 0, "", None)
    is_live = live.status == "live"
    return CardFacts(
        profile.username, is_live, live.viewer_count, live.title, _local_file(platform, live.thumbnail_url)
    )


@router.get(
    "/cards/{user_id}.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "a 1200×630 JPEG"}},
)
async def card(user_id: IdPath, platform: PlatformDep) -> Response:
    """The share card of a streamer: latest preview, name, LIVE badge and viewers; cached for 15 s."""
    data = platform.cards.get(user_id)
    if data is None:
        facts = await card_facts(platform, user_id)
        pool = image_pool(platform.settings.image_workers, platform.settings.image_queue)
        data = await pool.run(render_card, facts)
        platform.cards.put(user_id, data)
    return Response(
        data, media_type="image/jpeg", headers={"Cache-Control": f"public, max-age={int(CARD_TTL_SECONDS)}"}
    )


@router.get("/agent/share", response_model=ShareOut)
async def share(who: AgentDep, platform: PlatformDep) -> dict[str, Any]:
    """What to post where viewers are: the watch page, its card, and a ready-made text."""
    facts = await card_facts(platform, who.user_id)
    url = stream_url(platform, facts.name)
    if facts.live:
        about = f": {facts.title}" if facts.title and facts.title != f"{facts.name} is live" else ""
        text = f"🔴 {facts.name} is live on retake now{about}. Come watch and chat: {url}"
    else:
        text = f"Follow {facts.name} on retake to catch the next stream: {url}"
    return {"stream_url": url, "card_url": card_url(platform, who.user_id), "post_text": text, "is_live": facts.live}
