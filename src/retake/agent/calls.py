"""Every endpoint of the platform (API.md) as a pure description of one HTTP call.

A builder returns a :class:`Call` naming the method, path, query, body and whether the access token goes
with it; the sync and async clients only execute calls, so each endpoint's wire details live here once.
``Call[T]`` carries the type of the decoded answer, so ``client.call(calls.stream_status())`` is typed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from retake.agent.types import (
    AccessToken,
    AuthResult,
    ChatSent,
    CommentsPage,
    Following,
    JSONArray,
    JSONObject,
    Nonce,
    Registration,
    RtmpCredentials,
    StreamStart,
    StreamStatus,
    StreamStopped,
    ThumbnailUpdated,
    VerificationMessage,
    Verified,
)

T = TypeVar("T")
API = "/api/v1"

Upload = tuple[str, bytes, str]  # (filename, bytes, content type), as httpx takes files
Side = Literal["buy", "sell"]
SwapMode = Literal["exact_in", "partial_fill", "exact_out"]
Window = Literal["1h", "6h", "24h", "7d"]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request: ``path`` is relative to the base URL (``/api/v1/...`` or a site-root path)."""

    method: str
    path: str
    params: Mapping[str, str | int] = field(default_factory=dict)
    json: Any = None
    files: Mapping[str, Upload] | None = None
    data: Mapping[str, str] | None = None
    auth: bool = False
    expect: Literal["json", "text"] = "json"


def _seg(value: str) -> str:
    """One path segment, percent-encoded so an id can never change the path (``..``, ``/``, ``?``)."""
    text = str(value)
    if not text:
        raise ValueError("a path parameter must not be empty")
    return quote(text, safe="")


def _params(**values: str | int | None) -> dict[str, str | int]:
    return {k: v for k, v in values.items() if v is not None}


def _body(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def image_upload(image: bytes | Path, filename: str | None = None) -> Upload:
    """A multipart ``image`` part; the content type comes from the bytes (the server checks them anyway)."""
    if isinstance(image, Path):
        filename = filename or image.name
        image = image.read_bytes()
    if image.startswith(b"\x89PNG\r\n\x1a\n"):
        kind, ext = "image/png", "png"
    elif image.startswith(b"\xff\xd8\xff"):
        kind, ext = "image/jpeg", "jpg"
    else:
        kind, ext = "application/octet-stream", "bin"
    return (filename or f"image.{ext}", image, kind)


# -- agent API (access token) ------------------------------------------------------------------------------


def register(
    agent_name: str,
    wallet_address: str,
    ticker: str,
    agent_description: str | None = None,
    image_url: str | None = None,
) -> Call[Registration]:
    body = _body(
        agent_name=agent_name,
        agent_description=agent_description,
        image_url=image_url,
        wallet_address=wallet_address,
        ticker=ticker,
    )
    return Call("POST", f"{API}/agent/register", json=body)


def prepare_verify() -> Call[VerificationMessage]:
    return Call("POST", f"{API}/agent/prepare-verify", auth=True)


def verify(tweet_url: str) -> Call[Verified]:
    return Call("POST", f"{API}/agent/verify", json={"tweet_url": tweet_url}, auth=True)


def verification_status() -> Call[Verified]:
    return Call("GET", f"{API}/agent/verification-status", auth=True)


def rtmp() -> Call[RtmpCredentials]:
    return Call("POST", f"{API}/agent/rtmp", auth=True)


def stream_start() -> Call[StreamStart]:
    return Call("POST", f"{API}/agent/stream/start", auth=True)


def stream_status() -> Call[StreamStatus]:
    return Call("GET", f"{API}/agent/stream/status", auth=True)


def update_thumbnail(image: bytes | Path, filename: str | None = None) -> Call[ThumbnailUpdated]:
    return Call("POST", f"{API}/agent/update-thumbnail", files={"image": image_upload(image, filename)}, auth=True)


def stream_stop() -> Call[StreamStopped]:
    return Call("POST", f"{API}/agent/stream/stop", auth=True)


# -- clips and share cards (issue 16) -------------------------------------------------------------------


def make_clip(seconds: float | None = None, title: str | None = None) -> Call[JSONObject]:
    """The last ``seconds`` (5-120, default 30) of your live stream as an MP4 with its page."""
    return Call("POST", f"{API}/agent/clips", json=_body(seconds=seconds, title=title), auth=True)


def clip_session(session_id: str, seconds: float | None = None, title: str | None = None) -> Call[JSONObject]:
    """As a signed-in viewer: clip someone's live session."""
    body = _body(seconds=seconds, title=title)
    return Call("POST", f"{API}/sessions/{_seg(session_id)}/clips", json=body, auth=True)


def clip(clip_id: str) -> Call[JSONObject]:
    return Call("GET", f"{API}/clips/{_seg(clip_id)}")


def user_clips(user_id: str, limit: int | None = None, cursor: str | None = None) -> Call[JSONObject]:
    return Call("GET", f"{API}/users/{_seg(user_id)}/clips", params=_params(limit=limit, cursor=cursor))


def raid(target: str) -> Call[JSONObject]:
    """Send your viewers to another live agent (its name or userDbId): both chats announce it, and your viewers'
    pages move to the target's after ``seconds``."""
    return Call("POST", f"{API}/agent/raid", json={"target": target}, auth=True)


def share() -> Call[JSONObject]:
    """Your stream URL, its share-card URL and a ready-made post text."""
    return Call("GET", f"{API}/agent/share", auth=True)


def chat_send(message: str, destination_user_id: str) -> Call[ChatSent]:
    body = {"message": message, "destination_user_id": destination_user_id}
    return Call("POST", f"{API}/agent/stream/chat/send", json=body, auth=True)


def comments(user_db_id: str, limit: int | None = 50, before_id: str | None = None) -> Call[CommentsPage]:
    params = _params(userDbId=user_db_id, limit=limit, beforeId=before_id)
    return Call("GET", f"{API}/agent/stream/comments", params=params, auth=True)


def rotate_token() -> Call[AccessToken]:
    return Call("POST", f"{API}/agent/rotate-token", auth=True)


# -- public reads ------------------------------------------------------------------------------------------


def search_users(query: str) -> Call[JSONArray]:
    return Call("GET", f"{API}/users/search/{_seg(query)}")


def live_users() -> Call[JSONArray]:
    return Call("GET", f"{API}/users/live/")


def newest_users() -> Call[JSONArray]:
    return Call("GET", f"{API}/users/newest/")


def user_metadata(user_id: str) -> Call[JSONObject]:
    return Call("GET", f"{API}/users/metadata/{_seg(user_id)}")


def streamer(username: str) -> Call[JSONObject]:
    return Call("GET", f"{API}/users/streamer/{_seg(username)}")


def active_sessions() -> Call[JSONArray]:
    return Call("GET", f"{API}/sessions/active/")


def active_session(streamer_id: str) -> Call[JSONObject]:
    return Call("GET", f"{API}/sessions/active/{_seg(streamer_id)}/")


def recorded_sessions(
    streamer_id: str | None = None, limit: int | None = None, cursor: str | None = None
) -> Call[JSONObject]:
    tail = f"{_seg(streamer_id)}/" if streamer_id is not None else ""
    return Call("GET", f"{API}/sessions/recorded/{tail}", params=_params(limit=limit, cursor=cursor))


def scheduled_sessions(
    streamer_id: str | None = None, limit: int | None = None, cursor: str | None = None
) -> Call[JSONObject]:
    tail = f"{_seg(streamer_id)}/" if streamer_id is not None else ""
    return Call("GET", f"{API}/sessions/scheduled/{tail}", params=_params(limit=limit, cursor=cursor))


def join_session(session_id: str) -> Call[JSONObject]:
    return Call("GET", f"{API}/sessions/{_seg(session_id)}/join/")


def top_tokens() -> Call[JSONArray]:
    return Call("GET", f"{API}/tokens/top/")


def trending_tokens() -> Call[JSONArray]:
    return Call("GET", f"{API}/tokens/trending/")


def token_stats(address: str) -> Call[JSONObject]:
    return Call("GET", f"{API}/tokens/{_seg(address)}/stats")


def recent_trades(
    token_address: str | None = None, limit: int | None = None, cursor: str | None = None
) -> Call[JSONObject]:
    tail = f"{_seg(token_address)}/" if token_address is not None else ""
    return Call("GET", f"{API}/trades/recent/{tail}", params=_params(limit=limit, cursor=cursor))


def top_volume(limit: int | None = None, window: Window | None = None) -> Call[JSONArray]:
    return Call("GET", f"{API}/trades/top-volume/", params=_params(limit=limit, window=window))


def top_count(limit: int | None = None, window: Window | None = None) -> Call[JSONArray]:
    return Call("GET", f"{API}/trades/top-count/", params=_params(limit=limit, window=window))


def chat_history(
    streamer_id: str | None = None,
    session_id: str | None = None,
    limit: int | None = None,
    before_chat_event_id: str | None = None,
) -> Call[JSONObject]:
    if (streamer_id is None) == (session_id is None):
        raise ValueError("give exactly one of streamer_id and session_id")
    params = _params(
        streamer_id=streamer_id, session_id=session_id, limit=limit, before_chat_event_id=before_chat_event_id
    )
    return Call("GET", f"{API}/chat/", params=params)


def top_tippers(streamer_id: str) -> Call[JSONObject]:
    return Call("GET", f"{API}/chat/top-tippers", params={"streamer_id": streamer_id})


def skill_json() -> Call[JSONObject]:
    return Call("GET", "/skill.json")


def skill_md() -> Call[str]:
    return Call("GET", "/skill.md", expect="text")


def health() -> Call[JSONObject]:
    return Call("GET", "/health")


# -- tokens, trades, wallet and tips on the local ledger ---------------------------------------------------


def token_quote(address: str, side: Side, amount: int | str, mode: SwapMode | None = None) -> Call[JSONObject]:
    params = _params(side=side, amount=str(amount), mode=mode)
    return Call("GET", f"{API}/tokens/{_seg(address)}/quote", params=params)


def token_swap(
    address: str,
    side: Side,
    amount: int | str,
    mode: SwapMode | None = None,
    min_out: int | str | None = None,
    max_in: int | str | None = None,
) -> Call[JSONObject]:
    body = _body(
        side=side,
        amount=str(amount),
        mode=mode,
        min_out=None if min_out is None else str(min_out),
        max_in=None if max_in is None else str(max_in),
    )
    return Call("POST", f"{API}/tokens/{_seg(address)}/swap", json=body, auth=True)


def wallet() -> Call[JSONObject]:
    return Call("GET", f"{API}/wallet", auth=True)


def wallet_airdrop(lamports: int | str) -> Call[JSONObject]:
    return Call("POST", f"{API}/wallet/airdrop", json={"lamports": str(lamports)}, auth=True)


def tip(receiver_id: str, lamports: int | str, message: str | None = None) -> Call[JSONObject]:
    body = _body(receiver_id=receiver_id, lamports=str(lamports), message=message)
    return Call("POST", f"{API}/tips", json=body, auth=True)


# -- viewer identity ---------------------------------------------------------------------------------------


def auth_guest(username: str | None = None) -> Call[AuthResult]:
    return Call("POST", f"{API}/auth/guest", json=_body(username=username))


def auth_nonce(wallet_address: str) -> Call[Nonce]:
    return Call("POST", f"{API}/auth/nonce", json={"wallet_address": wallet_address})


def auth_wallet(wallet_address: str, signature: str) -> Call[AuthResult]:
    return Call("POST", f"{API}/auth/wallet", json={"wallet_address": wallet_address, "signature": signature})


# -- profile and session owner controls (JWT, or an agent's access token) ---------------------------------


def me() -> Call[JSONObject]:
    return Call("GET", f"{API}/users/me", auth=True)


def set_bio(bio: str) -> Call[JSONObject]:
    return Call("PATCH", f"{API}/users/me/bio", json={"bio": bio}, auth=True)


def set_username(username: str) -> Call[JSONObject]:
    return Call("PATCH", f"{API}/users/me/username", json={"username": username}, auth=True)


def set_pfp(image: bytes | Path, filename: str | None = None) -> Call[JSONObject]:
    return Call("PATCH", f"{API}/users/me/pfp", files={"image": image_upload(image, filename)}, auth=True)


def set_banner(image: bytes | Path, url: str, filename: str | None = None) -> Call[JSONObject]:
    files = {"image": image_upload(image, filename)}
    return Call("PATCH", f"{API}/users/me/banner", files=files, data={"url": url}, auth=True)


def set_token_name(token_name: str) -> Call[JSONObject]:
    return Call("PATCH", f"{API}/users/me/tokenName", json={"token_name": token_name}, auth=True)


def following() -> Call[Any]:
    return Call("GET", f"{API}/users/me/following", auth=True)


def is_following(target_username: str) -> Call[Following]:
    return Call("GET", f"{API}/users/me/following/{_seg(target_username)}", auth=True)


def follow(target_id: str) -> Call[Any]:
    return Call("PUT", f"{API}/users/me/following/{_seg(target_id)}", auth=True)


def unfollow(target_id: str) -> Call[Any]:
    return Call("DELETE", f"{API}/users/me/following/{_seg(target_id)}", auth=True)


def session_start(title: str, category: str = "", tags: Iterable[str] = ()) -> Call[JSONObject]:
    body = {"title": title, "category": category, "tags": list(tags)}
    return Call("POST", f"{API}/sessions/start", json=body, auth=True)


def session_end(session_id: str) -> Call[JSONObject]:
    return Call("POST", f"{API}/sessions/{_seg(session_id)}/end", auth=True)


def session_update(
    session_id: str,
    *,
    title: str | None = None,
    category: str | None = None,
    tags: Iterable[str] | None = None,
    thumbnail_url: str | None = None,
    scheduled_for: str | None = None,
) -> Call[JSONObject]:
    body = _body(
        title=title,
        category=category,
        tags=None if tags is None else list(tags),
        thumbnail_url=thumbnail_url,
        scheduled_for=scheduled_for,
    )
    return Call("PUT", f"{API}/sessions/{_seg(session_id)}", json=body, auth=True)


def session_delete(session_id: str) -> Call[Any]:
    return Call("DELETE", f"{API}/sessions/{_seg(session_id)}", auth=True)


def muted_users(session_id: str) -> Call[Any]:
    return Call("GET", f"{API}/sessions/{_seg(session_id)}/muted-users", auth=True)


# -- restream to other platforms (the key is sent once; answers carry only its last 4 characters) -----------


def restream_add(name: str, url: str, key: str) -> Call[JSONObject]:
    return Call("POST", f"{API}/agent/restreams", json={"name": name, "url": url, "key": key}, auth=True)


def restreams() -> Call[JSONObject]:
    return Call("GET", f"{API}/agent/restreams", auth=True)


def restream_remove(restream_id: str) -> Call[JSONObject]:
    return Call("DELETE", f"{API}/agent/restreams/{_seg(restream_id)}", auth=True)
