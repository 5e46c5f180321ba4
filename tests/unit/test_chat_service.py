"""The chat services called directly on a migrated store (SQLite and PostgreSQL), without the HTTP layer: sending,
the rate limit, the mute gate, moderation (pin, delete, jail) and the operator desk, and the fields of what they
answer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.chat.moderation import ModerationService
from retake.chat.operator import SYSTEM_USERNAME, OperatorDesk
from retake.chat.ports import TransactionKind
from retake.chat.results import ChatCleared, Comment, JailState, MessageDeleted, PinState, PostedComment, Sender, Tipper
from retake.chat.service import ChatService
from retake.errors import Conflict, Forbidden, NotFound, RateLimited, ValidationFailed
from retake.events import EventBus, PlatformEvent
from retake.ratelimit import RateLimiter
from retake.store.engine import create_engine, migrate, session_factory
from retake.store.nudges import Nudges
from retake.store.tables import Agent, ChatEvent, StreamSession, User
from retake.store.types import utcnow


@dataclass
class RecordingStopper:
    """The operator desk's ``SessionStopper`` port; the stream service behind it is not what is tested here."""

    stopped: list[tuple[str, str]] = field(default_factory=list)

    async def force_stop(self, session_id: str, agent_id: str) -> None:
        self.stopped.append((session_id, agent_id))


@dataclass
class Chat:
    sessions: async_sessionmaker[AsyncSession]
    events: list[PlatformEvent]
    chat: ChatService
    moderation: ModerationService
    desk: OperatorDesk
    stopper: RecordingStopper

    def named(self, name: str) -> list[PlatformEvent]:
        return [e for e in self.events if e.name == name]


class NoTransactions:
    """The ledger is not under test here: every tip/trade announcement is refused, as for an unknown tx_hash."""

    async def confirm(self, kind: TransactionKind, tx_hash: str, sender_id: str, streamer_id: str) -> None:
        return None


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Chat]:
    engine = create_engine(database_url)
    await migrate(engine)
    sessions = session_factory(engine)
    bus = EventBus()
    events: list[PlatformEvent] = []

    async def record(event: PlatformEvent) -> None:
        events.append(event)

    bus.subscribe(record)
    moderation = ModerationService(sessions, bus)
    # As the platform assembles it: muted senders are refused on every path.
    chat = ChatService(sessions, bus, RateLimiter("3/minute"), gate=moderation, transactions=NoTransactions())
    stopper = RecordingStopper()
    yield Chat(sessions, events, chat, moderation, OperatorDesk(sessions, bus, stopper, Nudges()), stopper)
    await engine.dispose()


async def add_user(store: Chat, name: str, *, agent: bool = False) -> User:
    user = User(
        id=str(uuid.uuid4()),
        username=name,
        username_key=name.lower(),
        kind="agent" if agent else "viewer",
        avatar_url=f"https://example.com/{name}.png",
        wallet_address=None,
        created_at=utcnow(),
    )
    async with store.sessions() as db:
        db.add(user)
        await db.flush()  # the agents row refers to it
        if agent:
            db.add(Agent(id=f"agent_{name}", user_id=user.id, token_hash=uuid.uuid4().hex, ticker="TST"))
        await db.commit()
    return user


async def open_session(store: Chat, streamer: User) -> str:
    session_id = str(uuid.uuid4())
    async with store.sessions() as db:
        db.add(StreamSession(id=session_id, user_id=streamer.id, status="open", started_at=utcnow()))
        await db.commit()
    return session_id


async def test_send_stores_and_broadcasts_one_typed_comment(store: Chat) -> None:
    streamer, viewer = await add_user(store, "streamer"), await add_user(store, "viewer")
    session_id = await open_session(store, streamer)
    posted = await store.chat.send(viewer, streamer.id, "  hello there  ")
    assert isinstance(posted, PostedComment)
    comment = posted.comment
    assert posted.chat_event_id == comment.chat_event_id and posted.chat_event_id.isdigit()
    assert posted.timestamp == comment.timestamp and posted.timestamp is not None
    assert posted.timestamp.endswith("Z")
    assert comment.text == "hello there", "stored stripped"
    assert (comment.session_id, comment.streamer_id, comment.kind) == (session_id, streamer.id, "message")
    assert comment.sender == Sender(viewer.id, "viewer", "https://example.com/viewer.png", None)
    assert comment.tip_data is None and comment.trade_data is None
    [event] = store.named("message")
    assert event.room == streamer.id and event.record == comment, "the broadcast is the comment"
    async with store.sessions() as db:
        stored = await db.get(ChatEvent, int(posted.chat_event_id))
    assert stored is not None and stored.text == "hello there" and stored.type == "message"


async def test_send_refuses_bad_text_and_unknown_streamers_before_counting(store: Chat) -> None:
    streamer, viewer = await add_user(store, "streamer"), await add_user(store, "viewer")
    for text in ("", "   ", "x" * 501, "nul\x00byte"):
        with pytest.raises(ValidationFailed) as refused:
            await store.chat.send(viewer, streamer.id, text)
        assert refused.value.code == "invalid_message"
    with pytest.raises(NotFound) as missing:
        await store.chat.send(viewer, str(uuid.uuid4()), "anyone there?")
    assert missing.value.code == "streamer_not_found"
    # None of the refusals used the budget of 3 per minute.
    for i in range(3):
        await store.chat.send(viewer, streamer.id, f"line {i}")
    with pytest.raises(RateLimited) as limited:
        await store.chat.send(viewer, streamer.id, "one too many")
    assert limited.value.code == "rate_limited" and (limited.value.retry_after or 0) >= 1
    assert len(store.named("message")) == 3


async def test_a_jailed_sender_is_refused_until_unjailed(store: Chat) -> None:
    streamer, viewer = await add_user(store, "streamer"), await add_user(store, "viewer")
    session_id = await open_session(store, streamer)
    jailed = await store.moderation.jail(streamer, session_id, viewer.id)
    assert isinstance(jailed, JailState)
    assert (jailed.user_id, jailed.username, jailed.muted) == (viewer.id, "viewer", True)
    assert (jailed.streamer_id, jailed.session_id) == (streamer.id, session_id) and jailed.timestamp
    [announced] = store.named("message")
    assert announced.record == jailed, "the broadcast is the answer"
    with pytest.raises(Forbidden) as muted:
        await store.chat.send(viewer, streamer.id, "let me out")
    assert muted.value.code == "muted"
    assert (await store.moderation.jail(streamer, session_id, viewer.id)).muted, "idempotent"
    assert len(store.named("message")) == 1, "a repeated jail is not broadcast again"
    listed = await store.moderation.muted_users(streamer, session_id)
    assert [(m.user_id, m.username, m.muted_by, m.session_id) for m in listed.muted_users] == [
        (viewer.id, "viewer", streamer.id, session_id)
    ]
    await store.chat.send(streamer, streamer.id, "the owner is never muted in their own chat")
    unjailed = await store.moderation.unjail(streamer, session_id, viewer.id)
    assert unjailed.muted is False and store.named("message")[-1].record == unjailed
    await store.chat.send(viewer, streamer.id, "thanks")
    assert (await store.moderation.muted_users(streamer, session_id)).muted_users == ()


async def test_only_the_owner_moderates(store: Chat) -> None:
    streamer, viewer = await add_user(store, "streamer"), await add_user(store, "viewer")
    session_id = await open_session(store, streamer)
    posted = await store.chat.send(viewer, streamer.id, "pin me")
    for attempt in (
        store.moderation.pin(viewer, posted.chat_event_id),
        store.moderation.delete_message(viewer, posted.chat_event_id),
        store.moderation.jail(viewer, session_id, streamer.id),
        store.moderation.muted_users(viewer, session_id),
    ):
        with pytest.raises(Forbidden) as refused:
            await attempt
        assert refused.value.code == "not_owner"
    with pytest.raises(ValidationFailed) as owner:
        await store.moderation.jail(streamer, session_id, streamer.id)
    assert owner.value.code == "cannot_jail_owner"
    with pytest.raises(ValidationFailed) as bad_id:
        await store.moderation.pin(streamer, "12a")
    assert bad_id.value.code == "invalid_chat_event_id"


async def test_pin_replace_unpin_and_delete(store: Chat) -> None:
    streamer, viewer = await add_user(store, "streamer"), await add_user(store, "viewer")
    before = await store.chat.send(viewer, streamer.id, "before the session")
    with pytest.raises(Conflict) as outside:
        await store.moderation.pin(streamer, before.chat_event_id)
    assert outside.value.code == "not_in_session"
    session_id = await open_session(store, streamer)
    first = await store.chat.send(viewer, streamer.id, "first")
    second = await store.chat.send(viewer, streamer.id, "second")

    pinned = await store.moderation.pin(streamer, first.chat_event_id)
    assert isinstance(pinned, PinState) and pinned.pinned and pinned.chat_event_id == first.chat_event_id
    assert pinned.message == first.comment and pinned.session_id == session_id and pinned.timestamp
    assert store.named("pinned")[-1].room == f"{streamer.id}/{session_id}"
    assert store.named("pinned")[-1].record == pinned, "the broadcast is the answer"
    replaced = await store.moderation.pin(streamer, second.chat_event_id)
    assert (await store.moderation.pinned_of(session_id)) == replaced, "one pin per session"

    unpinned = await store.moderation.unpin(streamer, second.chat_event_id)
    assert (unpinned.pinned, unpinned.message, unpinned.chat_event_id) == (False, None, second.chat_event_id)
    empty = await store.moderation.pinned_of(session_id)
    assert (empty.pinned, empty.chat_event_id, empty.message, empty.timestamp) == (False, None, None, None)

    await store.moderation.pin(streamer, first.chat_event_id)
    deleted = await store.moderation.delete_message(streamer, first.chat_event_id)
    assert (deleted.deleted, deleted.chat_event_id) == (1, first.chat_event_id)
    gone_line, unpinned_again = (e.record for e in store.events[-2:])
    assert isinstance(gone_line, MessageDeleted) and isinstance(unpinned_again, PinState)
    assert (gone_line.chat_event_id, gone_line.streamer_id, gone_line.session_id) == (
        first.chat_event_id,
        streamer.id,
        session_id,
    )
    assert not unpinned_again.pinned, "deleting a pinned message unpins it"
    assert not (await store.moderation.pinned_of(session_id)).pinned
    with pytest.raises(NotFound) as gone:
        await store.moderation.delete_message(streamer, first.chat_event_id)
    assert gone.value.code == "chat_event_not_found"

    cleared = await store.moderation.delete_all(streamer, None, session_id)
    assert (cleared.deleted, cleared.streamer_id, cleared.session_id) == (1, streamer.id, session_id)
    everything = await store.moderation.delete_all(streamer, None, None)
    assert (everything.deleted, everything.session_id) == (1, None), "the message sent before the session"
    last = store.named("message")[-1].record
    assert isinstance(last, ChatCleared) and (last.count, last.streamer_id, last.session_id) == (1, streamer.id, None)


async def test_top_tippers_ranks_tip_totals(store: Chat) -> None:
    streamer, rich, poor = [await add_user(store, n) for n in ("streamer", "rich", "poor")]
    async with store.sessions() as db:
        for sender, amount in ((poor, 0.5), (rich, 1.0), (rich, 2.0), (poor, "bogus")):
            db.add(
                ChatEvent(
                    streamer_id=streamer.id,
                    sender_user_id=sender.id,
                    type="tip",
                    text="tipped",
                    tip_data={"amount": amount},
                    created_at=utcnow(),
                    deleted=False,
                )
            )
        await db.commit()
    assert await store.chat.top_tippers(streamer.id) == [
        Tipper(user_id=rich.id, username="rich", total_amount=3.0, tip_count=2, rank=1),
        Tipper(user_id=poor.id, username="poor", total_amount=0.5, tip_count=2, rank=2),
    ]
    with pytest.raises(NotFound):
        await store.chat.top_tippers(str(uuid.uuid4()))


async def test_operator_warning_and_shutdown(store: Chat) -> None:
    agent = await add_user(store, "agent_x", agent=True)
    session_id = await open_session(store, agent)
    with pytest.raises(NotFound) as unknown:
        await store.desk.warn("nobody_here", "hello")
    assert unknown.value.code == "agent_not_found"
    with pytest.raises(ValidationFailed):
        await store.desk.warn("agent_x", "   ")

    cursor = await store.desk.newest_id()
    action = await store.desk.warn("Agent_X", "keep it friendly")
    assert (action.kind, action.session_id, action.agent_id) == ("warn", session_id, "agent_agent_x")
    cursor = await store.desk.apply_since(cursor)
    assert cursor == action.id
    [notice] = store.named("message")
    assert notice.room == agent.id and isinstance(notice.record, Comment) and notice.record.kind == "system"
    assert notice.record.text == "Operator warning: keep it friendly"
    assert notice.record.sender.username == SYSTEM_USERNAME and notice.record.session_id == session_id
    assert await store.desk.apply_since(0) == action.id and len(store.named("message")) == 1, "announced once"

    shutdown = await store.desk.shutdown("agent_x", "off-topic")
    await store.desk.apply_since(cursor)
    assert store.stopper.stopped == [(session_id, "agent_agent_x")]
    last = store.named("message")[-1].record
    assert isinstance(last, Comment) and last.text == "This stream was shut down by the operator: off-topic"

    notices = await store.desk.warnings_for("agent_agent_x")
    assert [(n.id, n.kind, n.reason, n.session_id) for n in notices] == [
        (str(shutdown.id), "shutdown", "off-topic", session_id),
        (str(action.id), "warn", "keep it friendly", session_id),
    ]
    assert all(n.created_at and n.created_at.endswith("Z") for n in notices)

    async with store.sessions() as db:
        session = await db.get(StreamSession, session_id)
        assert session is not None
        session.status = "ended"
        await db.commit()
    with pytest.raises(Conflict) as idle:
        await store.desk.shutdown("agent_x")
    assert idle.value.code == "no_active_session"
