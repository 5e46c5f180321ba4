"""Chat history pages as JSON bytes: ``GET /agent/stream/comments`` and ``GET /chat/``.

Agents poll their comments every 3 s (1,000 agents: ~333 requests/s), so this is the hottest read of the
platform. A page used to cost ~5.6 ms of CPU (docs/benchmarks.md, "Comment polling"): an ORM select of
``(ChatEvent, User)`` entities (identity map, per-row object construction), a separate lookup of the streamer on
every request, then FastAPI validating and serializing 50 nested response models. Here:

- one Core ``select`` of the twelve columns a comment needs, on a plain connection (no ORM session), built
  once per variant with bound parameters rather than on every request;
- the streamer is looked up only when the page is empty (an unknown id is 404, an empty chat is not);
- the bytes are built directly with pydantic-core's serializer, the one FastAPI's ``response_model`` path uses,
  so the output is byte for byte what it was (``tests/api/test_chat_pages.py`` compares the two).

Pages of one streamer's chat are also kept in memory until that chat changes (``page_cache.py``); pages of a
session (``/chat/?session_id=``) are always read.

The field names are API.md's, and have one definition, at the edge: the comment document is made by the
``CommentShape`` the assembly hands to ``ChatPages`` (``server/realtime/wire.py`` ``comment_json``), the function
that also makes every broadcast comment, here straight from the row's values (no record is built per row). Only
``sender_streamercoin_holdings`` differs: the float the response model made of it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic_core import to_json
from sqlalchemy import Row, Select, String, bindparam, select, type_coerce
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from retake.chat.page_cache import PageCache
from retake.chat.results import ChatItemJson
from retake.errors import NotFound
from retake.store.tables import ChatEvent, User
from retake.store.types import iso

Shape = Literal["comments", "chats"]  # the agent endpoint's items, the public endpoint's items

_COLUMNS = (
    ChatEvent.id,
    ChatEvent.streamer_id,
    ChatEvent.session_id,
    ChatEvent.type,
    ChatEvent.text,
    ChatEvent.created_at,
    ChatEvent.tip_data,
    ChatEvent.trade_data,
    User.id,
    User.username,
    User.avatar_url,
    User.wallet_address,
)
# SQLite hands timestamps and JSON over as text, which SQLAlchemy parses row by row (a regex and a datetime per
# timestamp, a JSON decode even of the ``null`` nearly every row holds): together more than the rest of the
# row. With SQLite these columns are read as stored text and ``_sqlite_rows`` turns them into the same values.
# PostgreSQL (asyncpg) hands over datetimes and decoded JSON itself, so it reads the plain columns.
_SQLITE_COLUMNS = (
    *_COLUMNS[:5],
    type_coerce(ChatEvent.created_at, String),
    type_coerce(ChatEvent.tip_data, String),
    type_coerce(ChatEvent.trade_data, String),
    *_COLUMNS[8:],
)
_SQLITE_DATETIME = SQLITE_DATETIME().result_processor(sqlite_dialect(), None)  # type: ignore[no-untyped-call]
_By = Literal["streamer_id", "session_id"]
# The user columns a page shows: a change to one of them may change any page the user wrote in.
SENDER_COLUMNS = frozenset({"username", "avatar_url", "wallet_address"})


def _page_query(by: _By, before: bool, sqlite: bool) -> Select[Any]:
    query = (
        select(*(_SQLITE_COLUMNS if sqlite else _COLUMNS))
        .join(User, User.id == ChatEvent.sender_user_id)
        .where(ChatEvent.deleted.is_(False), getattr(ChatEvent, by) == bindparam("key"))
    )
    if before:
        query = query.where(ChatEvent.id < bindparam("before_id"))
    return query.order_by(ChatEvent.id.desc()).limit(bindparam("rows"))


_BYS: tuple[_By, ...] = ("streamer_id", "session_id")
_PAGE_QUERIES = {
    (by, before, raw): _page_query(by, before, raw) for by in _BYS for before in (False, True) for raw in (False, True)
}
_STREAMER_EXISTS = select(User.id).where(User.id == bindparam("key"))


def _json(stored: str | None) -> Any:
    """What SQLAlchemy's JSON type makes of the stored text."""
    return None if stored is None or stored == "null" else json.loads(stored)


def _sqlite_iso(stored: str) -> str | None:
    """``iso()`` of a stored SQLite timestamp. SQLAlchemy stores UTC as ``YYYY-MM-DD HH:MM:SS.ffffff`` (always
    six digits), and ``iso`` keeps the milliseconds, truncated: so the text can be cut. Anything else (a row
    written by other means) goes through SQLAlchemy's own parser, as the column type would."""
    if len(stored) == 26 and stored[10] == " " and stored[19] == ".":
        return stored[:10] + "T" + stored[11:23] + "Z"
    parsed = _SQLITE_DATETIME(stored) if _SQLITE_DATETIME is not None else None
    return iso(parsed.replace(tzinfo=UTC)) if isinstance(parsed, datetime) else None


def _sqlite_rows(rows: Sequence[Row[Any]]) -> list[tuple[Any, ...]]:
    return [(*row[:5], _sqlite_iso(row[5]), _json(row[6]), _json(row[7]), *row[8:]) for row in rows]


def _postgres_rows(rows: Sequence[Row[Any]]) -> list[tuple[Any, ...]]:
    return [(*row[:5], iso(row[5]), *row[6:]) for row in rows]


@dataclass(frozen=True)
class RenderedPage:
    body: bytes  # the JSON document
    etag: str  # strong validator of ``body`` (RFC 9110 §8.8.3), quoted

    @classmethod
    def of(cls, body: bytes) -> RenderedPage:
        return cls(body, '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"')


class CommentShape(Protocol):
    """API.md's comment document from a comment's values (``server/realtime/wire.py`` ``comment_json``)."""

    def __call__(
        self,
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
    ) -> object: ...


def comment_item(row: Sequence[Any], comment: CommentShape) -> object:
    """One comment from a row of ``read_rows`` (``_COLUMNS``, the timestamp already in API.md's format)."""
    event_id, streamer_id, session_id, kind, text, timestamp, tip_data, trade_data = row[:8]
    sender_id, username, avatar_url, wallet_address = row[8:]
    return comment(
        event_id=event_id,
        streamer_id=streamer_id,
        session_id=session_id,
        kind=kind,
        text=text,
        timestamp=timestamp,
        tip_data=tip_data,
        trade_data=trade_data,
        sender_id=sender_id,
        username=username,
        avatar_url=avatar_url,
        wallet_address=wallet_address,
        holdings=0.0,  # a float, as the response model (schemas.Comment) declares it
    )


def chat_item(row: Sequence[Any]) -> ChatItemJson:
    """The public ``/chat/`` item (schemas.ChatItem, in its field order)."""
    event_id, _streamer_id, _session_id, kind, text, timestamp, tip_data, trade_data, sender_id, username = row[:10]
    return {
        "chat_event_id": str(event_id),
        "sender_user_id": sender_id,
        "sender_username": username,
        "text": text,
        "type": kind,
        "tip_data": tip_data,
        "trade_data": trade_data,
        "timestamp": timestamp,
    }


def render(shape: Shape, rows: Sequence[Sequence[Any]], limit: int, comment: CommentShape) -> RenderedPage:
    """``rows``: up to ``limit + 1`` rows newest first; the extra one only tells that there is a next page."""
    items: list[object] | list[ChatItemJson]
    if shape == "comments":
        items = [comment_item(row, comment) for row in rows[:limit]]
    else:
        items = [chat_item(row) for row in rows[:limit]]
    next_cursor = str(rows[limit - 1][0]) if len(rows) > limit else None
    return RenderedPage.of(to_json({shape: items, "next_cursor": next_cursor}))


async def read_rows(
    conn: AsyncConnection, *, streamer_id: str | None, session_id: str | None, limit: int, before_id: int | None
) -> Sequence[Sequence[Any]]:
    """Newest first, ``limit + 1`` rows of one streamer's or one session's chat (exactly one of the two ids);
    an unknown streamer is ``NotFound`` (checked only for an empty page)."""
    by: _By = "streamer_id" if streamer_id is not None else "session_id"
    params: dict[str, str | int | None] = {
        "key": streamer_id if streamer_id is not None else session_id,
        "rows": limit + 1,
    }
    if before_id is not None:
        params["before_id"] = before_id
    sqlite = conn.dialect.name == "sqlite"
    found = (await conn.execute(_PAGE_QUERIES[by, before_id is not None, sqlite], params)).all()
    rows = _sqlite_rows(found) if sqlite else _postgres_rows(found)
    if not rows and streamer_id is not None and await conn.scalar(_STREAMER_EXISTS, {"key": streamer_id}) is None:
        raise NotFound(f"no streamer with id '{streamer_id}'", code="streamer_not_found")
    return rows


class ChatPages:
    def __init__(self, engine: AsyncEngine, comment: CommentShape, cache: PageCache | None = None) -> None:
        self._engine = engine
        self._comment = comment  # the edge's comment document: API.md's names are not this package's
        self.cache = cache

    async def page(
        self,
        shape: Shape,
        *,
        streamer_id: str | None = None,
        session_id: str | None = None,
        limit: int,
        before_id: int | None = None,
    ) -> RenderedPage:
        async def read() -> RenderedPage:
            async with self._engine.connect() as conn:
                rows = await read_rows(
                    conn, streamer_id=streamer_id, session_id=session_id, limit=limit, before_id=before_id
                )
            return render(shape, rows, limit, self._comment)

        if self.cache is None or streamer_id is None:
            return await read()
        page: RenderedPage = await self.cache.get_or_fill(
            (shape, streamer_id, limit, before_id), read, lambda value: len(value.body)
        )
        return page
