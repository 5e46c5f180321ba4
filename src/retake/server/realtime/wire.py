"""What the platform sends: the JSON of every platform event, and the comment document REST shares with it.

The one place that knows the wire names of events (API.md "Socket.IO"): a comment's ``_id``, ``streamId`` and
``author{fusername, walletAddress, …}`` next to the newer ``sender_*`` fields, the ``type`` of a moderation
notice, ``newtrade``'s camelCase, ``agent_verified``'s ``userDbId``. Services publish frozen records
(``retake.events``); ``wire_payload`` turns one into its payload. Its users:

- the Socket.IO relay (``gateway.py``) emits it, and acknowledges a sent chat line with ``comment`` of the same
  record;
- push to agents (``webhooks``) gets ``wire_payload`` from the assembly as its encoder: an agent event's ``data``;
- REST answers that are also a broadcast (the ``pinned`` state, a sent comment) are made by the same functions;
- the comment pages (``chat/pages.py``, the polling hot path) are rendered from rows by ``comment_json``, handed to
  ``ChatPages`` by the assembly, so a page and a broadcast cannot spell a field differently.

Records whose snake_case fields already are API.md's names (a trade, a tip, a follow, a session) are sent as they
are, field for field in their declared order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any, TypedDict

from retake.accounts.results import AgentVerified, NewFollower
from retake.chat.raids import Raid, RaidParty
from retake.chat.results import ChatCleared, Comment, JailState, MessageDeleted, OperatorNotice, PinState
from retake.clips.service import ClipInfo
from retake.events import PlatformEvent, Record
from retake.ledger.results import TipRecord, TradeRecord
from retake.store.types import iso
from retake.streams.records import EncoderDisconnected, SessionEnded, SessionStarted
from retake.webhooks.mapping import AGENT_EVENT, AgentPush

Payload = dict[str, Any]


class Author(TypedDict):
    walletAddress: str
    fusername: str
    fid: int
    favatar: str
    walletType: str  # "EVM" (a 0x address, registered through the first API), "SOL", or "" without a wallet
    userDbId: str  # the sender's user id, under the names clients of the first API read (API.md "Compatibility")
    _id: str


class CommentJson(TypedDict):
    _id: str
    chat_event_id: str
    streamId: str
    streamer_id: str
    session_id: str | None
    type: str
    text: str
    timestamp: str | None
    author: Author
    sender_user_id: str
    sender_username: str
    sender_display_name: str
    sender_pfp: str
    sender_wallet_address: str
    sender_streamercoin_holdings: int | float
    tip_data: Mapping[str, Any] | None
    trade_data: Mapping[str, Any] | None


def pseudo_fid(user_id: str) -> int:
    """Real clients read a numeric Farcaster-style ``fid``; ours is stable and derived from the user id."""
    return int(user_id.replace("-", "")[:7], 16)


def wallet_type(wallet: str) -> str:
    """Told by the address itself: a base58 Solana key never starts with ``0x`` (``0`` is not in its alphabet), so
    no stored column is needed and the two cannot disagree."""
    if not wallet:
        return ""
    return "EVM" if wallet.startswith("0x") else "SOL"


def comment_json(
    *,
    event_id: int | str,
    streamer_id: str,
    session_id: str | None,
    kind: str,
    text: str,
    timestamp: str | None,
    tip_data: Mapping[str, Any] | None,
    trade_data: Mapping[str, Any] | None,
    sender_id: str,
    username: str,
    avatar_url: str | None,
    wallet_address: str | None,
    holdings: int | float,
) -> CommentJson:
    """Both field sets of API.md: the skill's (``_id``, ``author``) and the newer ``sender_*`` ones. Takes plain
    values, not a ``Comment``, so the page renderer (``chat.pages.CommentShape``) calls it per row directly."""
    key = str(event_id)
    avatar = avatar_url or ""
    wallet = wallet_address or ""
    return {
        "_id": key,
        "chat_event_id": key,
        "streamId": streamer_id,
        "streamer_id": streamer_id,
        "session_id": session_id,
        "type": kind,
        "text": text,
        "timestamp": timestamp,
        "author": {
            "walletAddress": wallet,
            "fusername": username,
            "fid": pseudo_fid(sender_id),
            "favatar": avatar,
            "walletType": wallet_type(wallet),
            "userDbId": sender_id,
            "_id": sender_id,
        },
        "sender_user_id": sender_id,
        "sender_username": username,
        "sender_display_name": username,
        "sender_pfp": avatar,
        "sender_wallet_address": wallet,
        "sender_streamercoin_holdings": holdings,
        "tip_data": tip_data,
        "trade_data": trade_data,
    }


def comment(record: Comment) -> CommentJson:
    """A comment as Socket.IO broadcasts it (and acknowledges it to its sender): holdings are the integer 0 there,
    the float 0.0 only in the REST pages (their response model's type)."""
    sender = record.sender
    return comment_json(
        event_id=record.chat_event_id,
        streamer_id=record.streamer_id,
        session_id=record.session_id,
        kind=record.kind,
        text=record.text,
        timestamp=record.timestamp,
        tip_data=record.tip_data,
        trade_data=record.trade_data,
        sender_id=sender.user_id,
        username=sender.username,
        avatar_url=sender.avatar_url,
        wallet_address=sender.wallet_address,
        holdings=0,
    )


def pin_state(state: PinState) -> Payload:
    """The ``pinned`` event, and the body of the pin/unpin/pinned REST answers (``PinnedOut``)."""
    return {
        "streamer_id": state.streamer_id,
        "session_id": state.session_id,
        "pinned": state.pinned,
        "chat_event_id": state.chat_event_id,
        "message": comment(state.message) if state.message is not None else None,
        "timestamp": state.timestamp,
    }


def _where(streamer_id: str, session_id: str | None, timestamp: str | None) -> Payload:
    """Where a moderation notice applies, in both spellings of API.md (``streamId`` is the skill's)."""
    return {"streamer_id": streamer_id, "streamId": streamer_id, "session_id": session_id, "timestamp": timestamp}


def message_deleted(record: MessageDeleted) -> Payload:
    key = record.chat_event_id
    return {"type": "delete", "_id": key, "chat_event_id": key} | _where(
        record.streamer_id, record.session_id, record.timestamp
    )


def chat_cleared(record: ChatCleared) -> Payload:
    return {"type": "delete_all", "count": record.count} | _where(
        record.streamer_id, record.session_id, record.timestamp
    )


def jail(record: JailState) -> Payload:
    kind = "jail" if record.muted else "unjail"
    head = {"type": kind, "user_id": record.user_id, "username": record.username, "muted": record.muted}
    return head | _where(record.streamer_id, record.session_id, record.timestamp)


def newtrade(record: TradeRecord) -> Payload:
    """The ``newtrade`` event: the skill's camelCase fields plus a few more from the record."""
    return {
        "address": record.token_address,
        "action": record.side,
        "usdAmount": record.amount_in_usd,
        "tokenTicker": record.token_ticker,
        "solAmount": record.amount_sol,
        "tokenAmount": record.amount_tokens,
        "txHash": record.tx_hash,
        "trader": record.trader_address,
        "userId": record.user_id,
        "priceSol": record.price_sol,
        "marketCapUsd": record.market_cap_usd,
        "timestamp": record.timestamp,
    }


def agent_verified(record: AgentVerified) -> Payload:
    return {
        "userDbId": record.user_id,
        "agent_id": record.agent_id,
        "verified": True,
        "verified_via": record.verified_via,
    }


def _as_is(record: Record) -> Payload:
    return asdict(record)


def _agent_push(record: AgentPush) -> Payload:
    return record.envelope  # already the wire form: push built it with this module's encoder


def _message(record: Record) -> Payload:
    if isinstance(record, Comment):
        return dict(comment(record))
    if isinstance(record, MessageDeleted):
        return message_deleted(record)
    if isinstance(record, ChatCleared):
        return chat_cleared(record)
    if isinstance(record, JailState):
        return jail(record)
    raise TypeError(f"a message event cannot carry a {type(record).__name__}")


def clip(info: ClipInfo) -> Payload:
    """A clip as the API, the socket and webhooks show it."""
    return {
        "clip_id": info.clip_id,
        "session_id": info.session_id,
        "streamer_id": info.streamer_id,
        "username": info.username,
        "created_by": info.created_by,
        "title": info.title,
        "duration_seconds": info.duration_seconds,
        "size_bytes": info.size_bytes,
        "created_at": iso(info.created_at),
        "video_url": info.video_url,
        "thumbnail_url": info.thumbnail_url,
        "url": info.page_url,
    }


def _party(party: RaidParty) -> Payload:
    return {"userDbId": party.user_id, "agent_name": party.agent_name, "url": party.url}


def raid(record: Raid) -> Payload:
    """A raid as the API answers it, the raider's watch pages get it (``raid``) and both agents are pushed it."""
    return {
        "raid_id": record.raid_id,
        "raider": _party(record.raider),
        "target": _party(record.target),
        "url": record.target.url,
        "viewers": record.viewers,
        "seconds": record.seconds,
        "moves_at": iso(record.moves_at),
    }


def _typed(kind: type[Any], encode: Callable[[Any], Payload]) -> Callable[[Record], Payload]:
    def checked(record: Record) -> Payload:
        if not isinstance(record, kind):  # a service published the wrong record: a bug, never a client's fault
            raise TypeError(f"expected a {kind.__name__}, got a {type(record).__name__}")
        return encode(record)

    return checked


# Every event name services publish, and how its record becomes its payload.
ENCODERS: dict[str, Callable[[Record], Payload]] = {
    "message": _message,  # Comment, MessageDeleted, ChatCleared, JailState (the ``type`` tells them apart)
    "pinned": _typed(PinState, pin_state),
    "rawtrade": _typed(TradeRecord, _as_is),
    "newtrade": _typed(TradeRecord, newtrade),
    "tip_received": _typed(TipRecord, _as_is),
    "user_followed": _typed(NewFollower, _as_is),
    "session_started": _typed(SessionStarted, _as_is),
    "clip_created": _typed(ClipInfo, clip),
    "raid": _typed(Raid, raid),  # chat/raids.py RAID
    # internal events (``retake.events.INTERNAL_EVENTS``): the relay does not emit them, push maps them
    "session_ended": _typed(SessionEnded, _as_is),
    "encoder_disconnected": _typed(EncoderDisconnected, _as_is),
    "operator_action": _typed(OperatorNotice, _as_is),
    "agent_verified": _typed(AgentVerified, agent_verified),
    # push's own event to an agent's private room
    AGENT_EVENT: _typed(AgentPush, _agent_push),
}


def wire_payload(event: PlatformEvent) -> Payload:
    """The JSON payload of ``event``, as Socket.IO emits it and push to agents sends it as ``data``."""
    encode = ENCODERS.get(event.name)
    if encode is None:
        raise TypeError(f"no wire form for platform event {event.name!r}")
    return encode(event.record)
