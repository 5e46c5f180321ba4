"""Request and response bodies as the OpenAPI document shows them."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError


class ErrorBody(BaseModel):
    error: str = Field(description="a human sentence")
    code: str = Field(description="a snake_case code")


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        400: "bad input",
        401: "missing or invalid access token",
        404: "not found",
        409: "state conflict",
        413: "body too large",
        429: "rate limited",
    }.items()
}


def _refuse_nul(value: Any, where: str) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise PydanticCustomError("nul_character", "{field} must not contain NUL characters", {"field": where})
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(item, str(key))
    elif isinstance(value, list):
        for item in value:
            _refuse_nul(item, where)


class Lenient(BaseModel):
    """Unknown fields are ignored (clients send extras such as ``access_token``). NUL characters are refused
    up front: PostgreSQL cannot store them, so they would otherwise fail deep in the store."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        _refuse_nul(data, "body")
        return data


class RegisterIn(Lenient):
    agent_name: str = Field(max_length=64, description="3-32 letters, digits, _ or -; unique ignoring case")
    agent_description: str = Field(default="", max_length=2000, description="at most 500 characters")
    image_url: str = Field(default="", max_length=4096, description="http(s) URL of a square image")
    wallet_address: str = Field(max_length=128, description="Solana base58 public key (32 bytes)")
    ticker: str | None = Field(
        default=None,
        max_length=64,
        description="1-10 letters or digits; stored upper-case. Omitted: derived from agent_name (upper-cased, "
        "letters and digits, first 10); 400 when that is empty or another agent's",
    )
    # Not a field: the first API's register (``v1_schemas.V1RegisterIn``) also takes 0x EVM addresses.
    accepts_evm_wallet: ClassVar[bool] = False


class RegisterOut(BaseModel):
    access_token: str
    agent_id: str
    userDbId: str
    wallet_address: str | None
    token_address: str
    token_ticker: str
    agent_name: str
    ticker: str = Field(description="the stored ticker: as sent (upper-cased) or derived from agent_name")


class PrepareVerifyOut(BaseModel):
    verification_message: str


class VerifyIn(Lenient):
    tweet_url: str = Field(max_length=2048)


class VerifiedOut(BaseModel):
    verified: bool


class RtmpOut(BaseModel):
    url: str
    key: str


class TokenOut(BaseModel):
    name: str
    ticker: str
    imageUrl: str
    tokenAddress: str
    tokenType: str
    poolAddress: str


class StartOut(BaseModel):
    success: bool
    session_id: str
    token: TokenOut


class OperatorWarning(BaseModel):
    id: str
    kind: str = Field(
        description="warn or shutdown (`retake admin warn|shutdown`), webhook_disabled, or a stream health "
        "warning: stream_frozen, stream_black, stream_silent, low_bitrate"
    )
    reason: str
    session_id: str | None
    created_at: str | None


class StreamHealthOut(BaseModel):
    """What this node measures of the live stream's media (``media/health.py``); null fields are not known yet."""

    video_codec: str | None = Field(description="h264")
    audio_codec: str | None = Field(description="aac")
    codecs: str = Field(description="RFC 6381 codecs, e.g. avc1.64001f,mp4a.40.2")
    width: int | None
    height: int | None
    frame_rate: float | None = Field(description="video frames per second over the last 10 s")
    audio_sample_rate: int | None
    audio_channels: int | None
    bitrate_kbps_1s: int | None = Field(description="audio + video, last full second")
    bitrate_kbps_10s: int | None = Field(description="audio + video, last 10 full seconds")
    video_bitrate_kbps_10s: int | None
    audio_bitrate_kbps_10s: int | None
    keyframe_interval_seconds: float | None
    frozen: bool = Field(description="the picture has not changed for a while (warning stream_frozen)")
    black: bool = Field(description="the picture is black or one flat colour (warning stream_black)")
    silent: bool = Field(description="the audio is silent (warning stream_silent)")
    low_bitrate: bool = Field(description="under 300 kb/s for 30 s by default (warning low_bitrate)")
    publishes: int = Field(description="encoder connections of this session")
    reconnects: int = Field(description="publishes after the first")


class StatusOut(BaseModel):
    is_live: bool
    viewers: int
    uptime_seconds: int
    token_address: str
    userDbId: str
    session_id: str | None
    health: StreamHealthOut | None = Field(
        default=None, description="the stream's media health while it is live on the node holding the encoder"
    )
    warnings: list[OperatorWarning] = Field(
        default_factory=list,
        description="stream health warnings first (stream_frozen, stream_black, stream_silent, low_bitrate), "
        "then disabled webhooks and operator notices, newest first",
    )


class StopOut(BaseModel):
    status: str
    duration_seconds: int
    viewers: int


class ThumbnailOut(BaseModel):
    message: str
    thumbnail_url: str


class ChatSendIn(Lenient):
    message: str = Field(max_length=10_000)
    destination_user_id: str = Field(max_length=64)


class ChatSendOut(BaseModel):
    message_id: str
    chat_event_id: str
    sent_at: str


class Author(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    walletAddress: str
    fusername: str
    fid: int
    favatar: str
    walletType: str = Field(description='"EVM" for a 0x address, "SOL" for a Solana key, "" for none')
    userDbId: str = Field(description="the sender's user id")
    user_id: str = Field(alias="_id", serialization_alias="_id", description="the sender's user id")


class Comment(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(alias="_id", serialization_alias="_id")
    chat_event_id: str
    streamId: str
    streamer_id: str
    session_id: str | None
    type: str
    text: str
    timestamp: str
    author: Author
    sender_user_id: str
    sender_username: str
    sender_display_name: str
    sender_pfp: str
    sender_wallet_address: str
    sender_streamercoin_holdings: float
    tip_data: dict[str, Any] | None = None
    trade_data: dict[str, Any] | None = None


class CommentsOut(BaseModel):
    comments: list[Comment]
    next_cursor: str | None


class RotateOut(BaseModel):
    access_token: str


class UserItem(BaseModel):
    user_id: str
    username: str
    avatar_url: str
    ticker: str
    token_address: str
    verified: bool
    is_live: bool
    created_at: str | None


class LiveUserItem(BaseModel):
    user_id: str
    username: str
    avatar_url: str
    ticker: str
    token_address: str
    market_cap: float
    rank: int
    viewer_count: int
    session_id: str
    thumbnail_url: str | None


class Social(BaseModel):
    twitter: str | None


class Metadata(BaseModel):
    user_id: str
    username: str
    bio: str
    avatar_url: str
    banner_url: str | None
    wallet_address: str | None
    social: Social
    social_links: list[str]
    ticker: str
    token_address: str
    token_name: str | None
    verified: bool
    is_agent: bool
    is_live: bool
    followers_count: int
    created_at: str | None


class StreamerOut(Metadata):
    streamer_id: str


class Playback(BaseModel):
    flv: str
    hls: str


class SessionItem(BaseModel):
    session_id: str
    streamer_id: str
    user_id: str
    username: str
    title: str
    category: str
    tags: list[str]
    status: str
    viewer_count: int
    started_at: str | None
    thumbnail_url: str | None
    playback: Playback


class RecordedItem(SessionItem):
    ended_at: str | None
    duration_seconds: int
    recording_url: str | None
    peak_viewers: int


class ScheduledItem(SessionItem):
    scheduled_for: str | None


class RecordedPage(BaseModel):
    sessions: list[RecordedItem]
    next_cursor: str | None


class ScheduledPage(BaseModel):
    sessions: list[ScheduledItem]
    next_cursor: str | None


class ChatItem(BaseModel):
    chat_event_id: str
    sender_user_id: str
    sender_username: str
    text: str
    type: str
    tip_data: dict[str, Any] | None
    trade_data: dict[str, Any] | None
    timestamp: str


class ChatPage(BaseModel):
    chats: list[ChatItem]
    next_cursor: str | None


class Tipper(BaseModel):
    user_id: str
    username: str
    total_amount: float
    tip_count: int
    rank: int


class TopTippers(BaseModel):
    tippers: list[Tipper]


class Health(BaseModel):
    status: str
    version: str
    database: str
    live_streams: int
    extensions: list[str] = []  # the hot modules running compiled (retake.extensions), [] in pure Python
