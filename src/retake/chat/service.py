"""Store and read chat events; broadcast each stored message through the event bus."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.chat.ports import NoLedger, OpenGate, SendGate, TransactionLedger
from retake.errors import NotFound, ValidationFailed
from retake.events import EventBus, PlatformEvent
from retake.ratelimit import RateLimiter
from retake.store.tables import ChatEvent, StreamSession, User
from retake.store.types import iso, utcnow

MAX_TEXT = 500
MAX_LIMIT = 100
DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def parse_cursor(value: str | None, field: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise ValidationFailed(f"{field} must be a numeric chat event id", code="invalid_cursor")
    return int(value)


def parse_limit(value: int | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not 1 <= value <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}", code="invalid_limit")
    return value


def pseudo_fid(user_id: str) -> int:
    """Real clients read a numeric Farcaster-style ``fid``; ours is stable and derived from the user id."""
    return int(user_id.replace("-", "")[:7], 16)


def comment_body(event: ChatEvent, sender: User) -> dict[str, Any]:
    """Both field sets of API.md: the skill's (``_id``, ``author``) and the newer ``sender_*`` ones."""
    event_id = str(event.id)
    return {
        "_id": event_id,
        "chat_event_id": event_id,
        "streamId": event.streamer_id,
        "streamer_id": event.streamer_id,
        "session_id": event.session_id,
        "type": event.type,
        "text": event.text,
        "timestamp": iso(event.created_at),
        "author": {
            "walletAddress": sender.wallet_address or "",
            "fusername": sender.username,
            "fid": pseudo_fid(sender.id),
            "favatar": sender.avatar_url or "",
        },
        "sender_user_id": sender.id,
        "sender_username": sender.username,
        "sender_display_name": sender.username,
        "sender_pfp": sender.avatar_url or "",
        "sender_wallet_address": sender.wallet_address or "",
        "sender_streamercoin_holdings": 0,
        "tip_data": event.tip_data,
        "trade_data": event.trade_data,
    }


class ChatService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], events: EventBus, limiter: RateLimiter):
        self._sessions = sessions
        self._events = events
        self._limiter = limiter
        self.gate: SendGate = OpenGate()  # moderation plugs in here: muted senders are refused on every path
        self.transactions: TransactionLedger = NoLedger()  # the ledger confirms tip/trade announcements

    async def send(
        self,
        sender: User,
        destination_user_id: str,
        text: str,
        kind: str = "message",
        *,
        tip_data: dict[str, Any] | None = None,
        trade_data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        text = text.strip()
        if "\x00" in text:
            raise ValidationFailed("message must not contain NUL characters", code="invalid_message")
        if not 1 <= len(text) <= MAX_TEXT:
            raise ValidationFailed(f"message must be 1-{MAX_TEXT} characters", code="invalid_message")
        async with self._sessions() as db:
            streamer = await db.get(User, destination_user_id)
            if streamer is None:
                raise NotFound(f"no streamer with id '{destination_user_id}'", code="streamer_not_found")
            await self.gate.check_send(db, destination_user_id, sender.id)
            # Counted only for messages that would be stored: a typo'd destination does not burn budget.
            self._limiter.hit(sender.id, "chat messages")
            session_id = await db.scalar(
                select(StreamSession.id).where(
                    StreamSession.user_id == destination_user_id, StreamSession.status == "open"
                )
            )
            event = ChatEvent(
                streamer_id=destination_user_id,
                session_id=session_id,
                sender_user_id=sender.id,
                type=kind,
                text=text,
                tip_data=tip_data,
                trade_data=trade_data,
                created_at=utcnow(),
                deleted=False,
            )
            db.add(event)
            await db.commit()
        body = comment_body(event, sender)
        await self._events.publish(PlatformEvent("message", destination_user_id, body))
        return body

    async def history(
        self,
        *,
        streamer_id: str | None = None,
        session_id: str | None = None,
        limit: int = DEFAULT_LIMIT,
        before_id: int | None = None,
    ) -> Page:
        """Newest first; ``before_id`` pages towards older events."""
        async with self._sessions() as db:
            if streamer_id is not None and await db.get(User, streamer_id) is None:
                raise NotFound(f"no streamer with id '{streamer_id}'", code="streamer_not_found")
            query = (
                select(ChatEvent, User)
                .join(User, User.id == ChatEvent.sender_user_id)
                .where(ChatEvent.deleted.is_(False))
            )
            if streamer_id is not None:
                query = query.where(ChatEvent.streamer_id == streamer_id)
            if session_id is not None:
                query = query.where(ChatEvent.session_id == session_id)
            if before_id is not None:
                query = query.where(ChatEvent.id < before_id)
            rows = (await db.execute(query.order_by(ChatEvent.id.desc()).limit(limit + 1))).all()
        items = [comment_body(event, sender) for event, sender in rows[:limit]]
        next_cursor = items[-1]["_id"] if len(rows) > limit else None
        return Page(items, next_cursor)

    async def top_tippers(self, streamer_id: str, limit: int = 10) -> list[dict[str, Any]]:
        """Senders ranked by the total of their ``tip`` events in this streamer's chat (amounts in SOL)."""
        async with self._sessions() as db:
            if await db.get(User, streamer_id) is None:
                raise NotFound(f"no streamer with id '{streamer_id}'", code="streamer_not_found")
            rows = (
                await db.execute(
                    select(ChatEvent.tip_data, User)
                    .join(User, User.id == ChatEvent.sender_user_id)
                    .where(ChatEvent.streamer_id == streamer_id, ChatEvent.type == "tip")
                )
            ).all()
        totals: dict[str, tuple[User, float, int]] = {}
        for tip_data, sender in rows:
            amount = tip_data.get("amount", 0) if isinstance(tip_data, dict) else 0
            value = float(amount) if isinstance(amount, int | float | str) and _is_number(amount) else 0.0
            _user, total, count = totals.get(sender.id, (sender, 0.0, 0))
            totals[sender.id] = (sender, total + value, count + 1)
        ranked = sorted(totals.values(), key=lambda t: (-t[1], -t[2], t[0].username))[:limit]
        return [
            {"user_id": u.id, "username": u.username, "total_amount": total, "tip_count": count, "rank": i}
            for i, (u, total, count) in enumerate(ranked, start=1)
        ]


def _is_number(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True
