"""Store and read chat events; broadcast each stored message through the event bus."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.chat.ports import SendGate, TransactionLedger, TransactionNote
from retake.chat.results import Comment, PostedComment, Sender, Tipper
from retake.errors import NotFound, ValidationFailed
from retake.events import EventBus, PlatformEvent
from retake.ids import parse_id
from retake.principal import Principal
from retake.ratelimit import RateLimiter
from retake.store.tables import ChatEvent, StreamSession, User
from retake.store.types import iso, utcnow
from retake.store.writer import run_write

MAX_TEXT = 500
MAX_LIMIT = 100
DEFAULT_LIMIT = 50


def parse_cursor(value: str | None, field: str) -> int | None:
    if value is None or value == "":
        return None
    return parse_id(value, field, code="invalid_cursor", message="must be a numeric chat event id")


def parse_limit(value: int | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not 1 <= value <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}", code="invalid_limit")
    return value


def comment_record(event: ChatEvent, sender: User | Principal) -> Comment:
    """A just-stored comment, as REST answers and Socket.IO broadcasts it (in API.md's JSON at the edge)."""
    return Comment(
        chat_event_id=str(event.id),
        streamer_id=event.streamer_id,
        session_id=event.session_id,
        kind=event.type,
        text=event.text,
        timestamp=iso(event.created_at),
        tip_data=event.tip_data,
        trade_data=event.trade_data,
        sender=Sender(sender.id, sender.username, sender.avatar_url, sender.wallet_address),
    )


class ChatService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        events: EventBus,
        limiter: RateLimiter,
        *,
        gate: SendGate,
        transactions: TransactionLedger,
    ) -> None:
        self._sessions = sessions
        self._engine = sessions.kw["bind"]
        self._events = events
        self._limiter = limiter
        self.gate = gate  # moderation: muted senders are refused on every path (REST and Socket.IO)
        self.transactions = transactions  # the ledger confirms tip/trade announcements

    async def send(
        self,
        sender: Principal,
        destination_user_id: str,
        text: str,
        kind: str = "message",
        *,
        note: TransactionNote | None = None,
    ) -> PostedComment:
        """Store and broadcast one chat line. ``note`` is the confirmed ledger record a ``tip`` or ``trade`` line
        announces, stored as its ``tip_data`` or ``trade_data``."""
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
        values: dict[str, Any] = {
            "streamer_id": destination_user_id,
            "session_id": session_id,
            "sender_user_id": sender.id,
            "type": kind,
            "text": text,
            "tip_data": dict(note) if note is not None and kind == "tip" else None,
            "trade_data": dict(note) if note is not None and kind == "trade" else None,
            "created_at": utcnow(),
            "deleted": False,
        }
        # One hop-free write (store/writer.py): on SQLite a chat line never holds the write lock across loop turns.
        row = insert(ChatEvent).values(values).returning(ChatEvent.id)
        new_id = await run_write(self._engine, lambda conn: conn.execute(row).scalar_one())
        event = ChatEvent(id=new_id, **values)
        comment = comment_record(event, sender)
        await self._events.publish(PlatformEvent("message", destination_user_id, comment))
        return PostedComment(comment.chat_event_id, comment.timestamp, comment)

    async def top_tippers(self, streamer_id: str, limit: int = 10) -> list[Tipper]:
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
            Tipper(user_id=u.id, username=u.username, total_amount=total, tip_count=count, rank=i)
            for i, (u, total, count) in enumerate(ranked, start=1)
        ]


def _is_number(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True
