"""Chat moderation by the stream owner: pin/unpin, delete one or all messages, jail/unjail (mute).

The owner is whoever the bearer names (an agent token or the owner's JWT both arrive as a ``Principal``); the owner
of a message is the streamer whose chat it is in, the owner of a session is its streamer. Every change is
broadcast through the event bus: pins on ``pinned`` to ``<streamer_id>/<session_id>``, the rest on the
``message`` channel of ``<streamer_id>`` with ``type`` ``delete``, ``delete_all``, ``jail`` or ``unjail``
(API.md, Socket.IO; the records are in ``results.py``, their JSON, ``type`` included, is made at the edge).
Deletion is soft (``ChatEvent.deleted``): history reads already skip deleted rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.chat.operator import SYSTEM_USER_ID
from retake.chat.results import (
    ChatCleared,
    Comment,
    Deleted,
    DeletedAll,
    JailState,
    MessageDeleted,
    MutedUser,
    MutedUsers,
    PinState,
)
from retake.chat.service import comment_record
from retake.errors import Conflict, Forbidden, NotFound, ValidationFailed
from retake.events import EventBus, PlatformEvent
from retake.ids import parse_id
from retake.principal import Principal
from retake.store.tables import Agent, ChatEvent, ChatMute, ChatPin, StreamSession, User
from retake.store.types import iso, utcnow


def parse_event_id(value: str) -> int:
    """Chat event ids are numeric strings (API.md, Conventions); anything else cannot name one."""
    return parse_id(value, "chat_event_id", code="invalid_chat_event_id", message="must be a numeric chat event id")


def pin_room(streamer_id: str, session_id: str) -> str:
    return f"{streamer_id}/{session_id}"


def _require_owner(actor: Principal, streamer_id: str, what: str) -> None:
    # The platform's system user acts for the operator console in every chat (server/console).
    if actor.id != streamer_id and actor.id != SYSTEM_USER_ID:
        raise Forbidden(f"only the stream owner can {what}", code="not_owner")


class ModerationService:
    """Also the chat service's ``SendGate``: a jailed sender is refused wherever chat is stored."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], events: EventBus) -> None:
        self._sessions = sessions
        self._events = events

    # -- the gate ------------------------------------------------------------------------------------------

    async def check_send(self, db: AsyncSession, streamer_id: str, sender_id: str) -> None:
        # An agent suspended by the operator (console) writes nowhere, its own chat included.
        if await db.scalar(select(Agent.suspended_at).where(Agent.user_id == sender_id)) is not None:
            raise Forbidden("this agent is suspended by the platform operator", code="suspended")
        if sender_id == streamer_id:  # an owner cannot be jailed in their own chat
            return
        muted = await db.scalar(
            select(ChatMute.id).where(ChatMute.streamer_id == streamer_id, ChatMute.user_id == sender_id)
        )
        if muted is not None:
            raise Forbidden("you are muted in this chat", code="muted")

    # -- pins ----------------------------------------------------------------------------------------------

    async def pin(self, actor: Principal, chat_event_id: str) -> PinState:
        event_id = parse_event_id(chat_event_id)
        async with self._sessions() as db:
            event, sender = await self._message(db, event_id)
            _require_owner(actor, event.streamer_id, "pin messages")
            if event.session_id is None:
                raise Conflict("only a message sent during a session can be pinned", code="not_in_session")
            pin = await db.get(ChatPin, event.session_id)
            now = utcnow()
            if pin is None:
                db.add(
                    ChatPin(
                        session_id=event.session_id,
                        streamer_id=event.streamer_id,
                        chat_event_id=event.id,
                        pinned_by=actor.id,
                        pinned_at=now,
                    )
                )
            else:  # one pin per session: pinning another message replaces it
                pin.chat_event_id, pin.pinned_by, pin.pinned_at = event.id, actor.id, now
            try:
                await db.commit()
            except IntegrityError as exc:  # a concurrent first pin of the same session won
                raise Conflict("the pin changed meanwhile; try again", code="pin_conflict") from exc
        state = _pin_state(event.streamer_id, event.session_id, event.id, comment_record(event, sender), now)
        await self._events.publish(PlatformEvent("pinned", pin_room(event.streamer_id, event.session_id), state))
        return state

    async def unpin(self, actor: Principal, chat_event_id: str) -> PinState:
        """Idempotent: unpinning a message that is not pinned answers ``pinned: false`` and broadcasts nothing."""
        event_id = parse_event_id(chat_event_id)
        async with self._sessions() as db:
            event, _sender = await self._message(db, event_id)
            _require_owner(actor, event.streamer_id, "unpin messages")
            removed = await self._drop_pins(db, ChatPin.chat_event_id == event.id)
            await db.commit()
        state = _pin_state(event.streamer_id, event.session_id, event.id, None, utcnow())
        await self._announce_unpins(removed)
        return state

    async def pinned_of(self, session_id: str) -> PinState:
        """The session's pinned message (public: viewers joining late need it), or ``message: null``."""
        async with self._sessions() as db:
            session = await db.get(StreamSession, session_id)
            if session is None:
                raise NotFound(f"no session with id '{session_id}'", code="session_not_found")
            row = (
                await db.execute(
                    select(ChatPin, ChatEvent, User)
                    .join(ChatEvent, ChatEvent.id == ChatPin.chat_event_id)
                    .join(User, User.id == ChatEvent.sender_user_id)
                    .where(ChatPin.session_id == session_id, ChatEvent.deleted.is_(False))
                )
            ).first()
        if row is None:
            return _pin_state(session.user_id, session_id, None, None, None)
        pin, event, sender = row
        return _pin_state(session.user_id, session_id, event.id, comment_record(event, sender), pin.pinned_at)

    # -- deletion ------------------------------------------------------------------------------------------

    async def delete_message(self, actor: Principal, chat_event_id: str) -> Deleted:
        event_id = parse_event_id(chat_event_id)
        async with self._sessions() as db:
            event, _sender = await self._message(db, event_id)
            _require_owner(actor, event.streamer_id, "delete messages")
            event.deleted = True
            removed = await self._drop_pins(db, ChatPin.chat_event_id == event.id)
            await db.commit()
        event_key = str(event.id)
        deleted = MessageDeleted(event_key, event.streamer_id, event.session_id, iso(utcnow()))
        await self._events.publish(PlatformEvent("message", event.streamer_id, deleted))
        await self._announce_unpins(removed)
        return Deleted(deleted=1, chat_event_id=event_key)

    async def delete_all(self, actor: Principal, streamer_id: str | None, session_id: str | None) -> DeletedAll:
        """Every message of the owner's chat, or only those of one of the owner's sessions."""
        streamer_id = streamer_id or actor.id
        async with self._sessions() as db:
            if await db.get(User, streamer_id) is None:
                raise NotFound(f"no streamer with id '{streamer_id}'", code="streamer_not_found")
            _require_owner(actor, streamer_id, "delete messages")
            if session_id is not None:
                session = await db.get(StreamSession, session_id)
                if session is None or session.user_id != streamer_id:
                    raise NotFound(f"no session '{session_id}' of this streamer", code="session_not_found")
            matching = [ChatEvent.streamer_id == streamer_id, ChatEvent.deleted.is_(False)]
            pins = [ChatPin.streamer_id == streamer_id]
            if session_id is not None:
                matching.append(ChatEvent.session_id == session_id)
                pins.append(ChatPin.session_id == session_id)
            count = int(await db.scalar(select(func.count()).select_from(ChatEvent).where(*matching)) or 0)
            await db.execute(update(ChatEvent).where(*matching).values(deleted=True))
            removed = await self._drop_pins(db, *pins)
            await db.commit()
        cleared = ChatCleared(count, streamer_id, session_id, iso(utcnow()))
        await self._events.publish(PlatformEvent("message", streamer_id, cleared))
        await self._announce_unpins(removed)
        return DeletedAll(deleted=count, streamer_id=streamer_id, session_id=session_id)

    # -- jail ----------------------------------------------------------------------------------------------

    async def jail(self, actor: Principal, session_id: str, user_id: str) -> JailState:
        """Mute ``user_id`` in the chat of the session's streamer (until unjailed). Idempotent."""
        async with self._sessions() as db:
            session, target = await self._owned_session_and_user(db, actor, session_id, user_id, "jail users")
            if target.id == session.user_id:
                raise ValidationFailed("the stream owner cannot be jailed in their own chat", code="cannot_jail_owner")
            existing = await db.scalar(
                select(ChatMute).where(ChatMute.streamer_id == session.user_id, ChatMute.user_id == target.id)
            )
            created = existing is None
            if created:
                db.add(
                    ChatMute(
                        streamer_id=session.user_id,
                        user_id=target.id,
                        session_id=session.id,
                        muted_by=actor.id,
                        created_at=utcnow(),
                    )
                )
                try:
                    await db.commit()
                except IntegrityError:  # jailed concurrently: the outcome is the same
                    created = False
        return await self._jail_outcome(session, target, muted=True, announce=created)

    async def unjail(self, actor: Principal, session_id: str, user_id: str) -> JailState:
        async with self._sessions() as db:
            session, target = await self._owned_session_and_user(db, actor, session_id, user_id, "unjail users")
            result = await db.execute(
                delete(ChatMute).where(ChatMute.streamer_id == session.user_id, ChatMute.user_id == target.id)
            )
            await db.commit()
        removed = bool(getattr(result, "rowcount", 0))
        return await self._jail_outcome(session, target, muted=False, announce=removed)

    async def muted_users(self, actor: Principal, session_id: str) -> MutedUsers:
        async with self._sessions() as db:
            session = await db.get(StreamSession, session_id)
            if session is None:
                raise NotFound(f"no session with id '{session_id}'", code="session_not_found")
            _require_owner(actor, session.user_id, "see who is muted")
            rows = (
                await db.execute(
                    select(ChatMute, User)
                    .join(User, User.id == ChatMute.user_id)
                    .where(ChatMute.streamer_id == session.user_id)
                    .order_by(ChatMute.id)
                )
            ).all()
        return MutedUsers(
            session_id=session.id,
            streamer_id=session.user_id,
            muted_users=tuple(
                MutedUser(
                    user_id=user.id,
                    username=user.username,
                    avatar_url=user.avatar_url or "",
                    muted_at=iso(mute.created_at),
                    muted_by=mute.muted_by,
                    session_id=mute.session_id,
                )
                for mute, user in rows
            ),
        )

    # -- helpers -------------------------------------------------------------------------------------------

    async def _message(self, db: AsyncSession, event_id: int) -> tuple[ChatEvent, User]:
        row = (
            await db.execute(
                select(ChatEvent, User)
                .join(User, User.id == ChatEvent.sender_user_id)
                .where(ChatEvent.id == event_id, ChatEvent.deleted.is_(False))
            )
        ).first()
        if row is None:
            raise NotFound(f"no chat message with id '{event_id}'", code="chat_event_not_found")
        return row[0], row[1]

    async def _owned_session_and_user(
        self, db: AsyncSession, actor: Principal, session_id: str, user_id: str, what: str
    ) -> tuple[StreamSession, User]:
        session = await db.get(StreamSession, session_id)
        if session is None:
            raise NotFound(f"no session with id '{session_id}'", code="session_not_found")
        _require_owner(actor, session.user_id, what)
        target = await db.get(User, user_id)
        if target is None:
            raise NotFound(f"no user with id '{user_id}'", code="user_not_found")
        return session, target

    async def _drop_pins(self, db: AsyncSession, *where: Any) -> list[ChatPin]:
        pins = list((await db.scalars(select(ChatPin).where(*where))).all())
        for pin in pins:
            await db.delete(pin)
        return pins

    async def _announce_unpins(self, pins: list[ChatPin]) -> None:
        now = utcnow()
        for pin in pins:
            state = _pin_state(pin.streamer_id, pin.session_id, pin.chat_event_id, None, now)
            await self._events.publish(PlatformEvent("pinned", pin_room(pin.streamer_id, pin.session_id), state))

    async def _jail_outcome(self, session: StreamSession, target: User, *, muted: bool, announce: bool) -> JailState:
        state = JailState(
            user_id=target.id,
            username=target.username,
            muted=muted,
            streamer_id=session.user_id,
            session_id=session.id,
            timestamp=iso(utcnow()),
        )
        if announce:  # repeating a jail/unjail changes nothing, so it is not broadcast again
            await self._events.publish(PlatformEvent("message", session.user_id, state))
        return state


def _pin_state(
    streamer_id: str, session_id: str | None, event_id: int | None, message: Comment | None, at: datetime | None
) -> PinState:
    return PinState(
        streamer_id=streamer_id,
        session_id=session_id,
        pinned=message is not None,
        chat_event_id=str(event_id) if event_id is not None else None,
        message=message,
        timestamp=iso(at) if at is not None else None,
    )
