"""Bodies of the first agent API (``/api/agent/…``, ``research/v1-api.md``) where they differ from ``/api/v1``.

Answers are the ``/api/v1`` answers with the first API's extra names added, so a client of either reads its own.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field

from retake.server.api.schemas import Comment, Lenient, RegisterIn, RtmpOut


class V1RegisterIn(RegisterIn):
    """The first API sent no ``ticker`` (derived from ``agent_name``) and a 0x EVM (Base) wallet."""

    wallet_address: str = Field(
        max_length=128,
        description="0x + 40 hex digits (EVM; EIP-55 checksum checked when mixed case), or a Solana base58 key",
    )
    accepts_evm_wallet: ClassVar[bool] = True


class V1RtmpOut(RtmpOut):
    rtmp_url: str = Field(description="the same as url")
    stream_key: str = Field(description="the same as key")


class V1ChatSendIn(Lenient):
    userDbId: str = Field(max_length=64, description="the room: the streamer's user id")
    message: str = Field(max_length=10_000)


class V1Comment(Comment):
    v1_id: str = Field(alias="id", serialization_alias="id", description="the same as _id")
    username: str = Field(description="the same as author.fusername")
    message: str = Field(description="the same as text")


class V1CommentsOut(BaseModel):
    comments: list[V1Comment]
    next_cursor: str | None
