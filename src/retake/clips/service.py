"""Making, listing and deleting clips.

A clip is made on the node that records the session (the recording folder is on its disk): the latest whole
segments covering the asked seconds are remuxed by ffmpeg into an MP4 (packets copied) and a JPEG. Files live
under ``<data-dir>/media/clips/<id>.mp4|.jpg`` (served at ``/media/clips/…``) and a row in ``clips`` names them,
so clips survive restarts; deleting a session deletes its clips (rows and files).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.clips.remux import ClipFailed, Remuxer
from retake.clips.window import (
    JOURNAL_TAIL_BYTES,
    MAX_SECONDS,
    MIN_SECONDS,
    Segment,
    concat_input,
    parse_journal_tail,
    pick_segments,
    remux_argv,
)
from retake.errors import Conflict, NotFound, ValidationFailed
from retake.events import EventBus, PlatformEvent
from retake.identity.validation import check_text
from retake.live import LiveRegistry
from retake.media.journal import JOURNAL_NAME
from retake.ratelimit import RateLimiter
from retake.store.tables import Clip, StreamSession, User
from retake.store.types import utcnow

MAX_TITLE = 100
CLIP_CREATED = "clip_created"  # bus event, room live_<streamer_id> (webhooks map it to clip.created)
CLIPS_KIND = "clips"  # <data-dir>/media/clips/


@dataclass(frozen=True)
class ClipInfo:
    clip_id: str
    session_id: str
    streamer_id: str
    username: str
    created_by: str | None
    title: str
    duration_seconds: float
    size_bytes: int
    created_at: datetime
    video_url: str
    thumbnail_url: str
    page_url: str


@dataclass(frozen=True)
class ClipPage:
    items: tuple[ClipInfo, ...]
    next_cursor: str | None


def check_seconds(value: float) -> float:
    if not MIN_SECONDS <= value <= MAX_SECONDS:
        raise ValidationFailed(f"seconds must be {MIN_SECONDS}-{MAX_SECONDS}", code="invalid_seconds")
    return float(value)


def check_clip_title(value: str | None, username: str) -> str:
    title = check_text(value or "", "title").strip()
    if len(title) > MAX_TITLE:
        raise ValidationFailed(f"title must be at most {MAX_TITLE} characters", code="invalid_title")
    return title or f"{username} clip"


class ClipService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        live: LiveRegistry,
        events: EventBus,
        *,
        recordings_dir: Path,
        media_dir: Path,
        public_url: str,
        limiter: RateLimiter,
        flush_recordings: Callable[[], bool],
        remuxer: Remuxer,
        ffmpeg: str = "ffmpeg",
    ) -> None:
        self._sessions = sessions
        self._live = live
        self._events = events
        self._recordings = recordings_dir
        self._dir = media_dir / CLIPS_KIND
        self._public_url = public_url
        self._limiter = limiter
        self._flush = flush_recordings  # segments still queued for the disk are part of "the last seconds"
        self._remuxer = remuxer
        self._ffmpeg = ffmpeg

    @property
    def directory(self) -> Path:
        return self._dir

    async def create(self, session_id: str, creator_id: str, seconds: float, title: str | None) -> ClipInfo:
        """A clip of the last ``seconds`` of live session ``session_id``, made by user ``creator_id``."""
        seconds = check_seconds(seconds)
        title_text = check_text(title or "", "title")  # length checked below with the streamer's name
        async with self._sessions() as db:
            row = await db.get(StreamSession, session_id)
            user = await db.get(User, row.user_id) if row is not None else None
        if row is None or user is None:
            raise NotFound(f"no session with id '{session_id}'", code="session_not_found")
        final_title = check_clip_title(title_text, user.username)
        self._limiter.hit(creator_id, "clips")
        if row.status != "open" or not self._live.is_live(session_id):
            raise Conflict("the session is not live: clips are made of a live stream", code="not_live")
        clip_id = str(uuid.uuid4())
        duration = await self._make(session_id, clip_id, seconds)
        clip = Clip(
            id=clip_id,
            session_id=session_id,
            streamer_id=row.user_id,
            created_by=creator_id,
            title=final_title,
            duration_ms=round(duration * 1000),
            size_bytes=(self._dir / f"{clip_id}.mp4").stat().st_size,
            created_at=utcnow(),
        )
        async with self._sessions() as db:
            db.add(clip)
            try:
                await db.commit()
            except IntegrityError as exc:
                self._unlink(clip_id)  # the session was deleted meanwhile: no orphan files
                raise NotFound(f"no session with id '{session_id}'", code="session_not_found") from exc
        info = self._info(clip, user.username)
        await self._events.publish(PlatformEvent(CLIP_CREATED, f"live_{row.user_id}", info))
        return info

    async def _make(self, session_id: str, clip_id: str, seconds: float) -> float:
        directory = self._recordings / session_id
        if directory.parent != self._recordings:
            raise NotFound(f"no session with id '{session_id}'", code="session_not_found")
        await asyncio.to_thread(self._flush)
        segments = pick_segments(await asyncio.to_thread(_journal_segments, directory), seconds)
        if not segments:
            raise Conflict("nothing of this stream is recorded on this node yet; try again shortly", code="no_media")
        await asyncio.to_thread(self._dir.mkdir, parents=True, exist_ok=True)
        video, thumb = self._dir / f"{clip_id}.mp4", self._dir / f"{clip_id}.jpg"
        tmp_video, tmp_thumb = video.with_suffix(".mp4.tmp"), thumb.with_suffix(".jpg.tmp")
        try:
            source = concat_input(directory, segments)
        except ValueError as exc:
            raise ClipFailed(str(exc)) from exc
        duration = min(seconds, sum(s.duration for s in segments))
        await self._remuxer.run(
            remux_argv(self._ffmpeg, source, duration, tmp_video, tmp_thumb), (tmp_video, tmp_thumb)
        )
        os.replace(tmp_thumb, thumb)
        os.replace(tmp_video, video)
        return duration

    async def get(self, clip_id: str) -> ClipInfo:
        async with self._sessions() as db:
            found = (await db.execute(_with_username().where(Clip.id == clip_id))).first()
        if found is None:
            raise NotFound(f"no clip with id '{clip_id}'", code="clip_not_found")
        return self._info(found[0], found[1])

    async def of_streamer(self, streamer_id: str, limit: int, cursor: str | None) -> ClipPage:
        """Clips of ``streamer_id``'s streams, newest first; ``cursor`` from the previous page."""
        query = _with_username().where(Clip.streamer_id == streamer_id)
        if cursor:
            when, ident = _decode_cursor(cursor)
            query = query.where(or_(Clip.created_at < when, and_(Clip.created_at == when, Clip.id < ident)))
        async with self._sessions() as db:
            if await db.get(User, streamer_id) is None:
                raise NotFound(f"no user with id '{streamer_id}'", code="user_not_found")
            rows = (await db.execute(query.order_by(Clip.created_at.desc(), Clip.id.desc()).limit(limit + 1))).all()
        items = tuple(self._info(clip, name) for clip, name in rows[:limit])
        last = rows[limit - 1][0] if len(rows) > limit else None
        return ClipPage(items, _encode_cursor(last.created_at, last.id) if last is not None else None)

    async def discard_session(self, session_id: str) -> None:
        """The session was deleted: its clips go with it (the rows by cascade, or here; the files here)."""
        async with self._sessions() as db:
            rows = (await db.scalars(select(Clip).where(Clip.session_id == session_id))).all()
            for row in rows:
                await db.delete(row)
            await db.commit()
        for row in rows:
            await asyncio.to_thread(self._unlink, row.id)

    def _unlink(self, clip_id: str) -> None:
        for suffix in (".mp4", ".jpg"):
            with contextlib.suppress(OSError):
                os.unlink(self._dir / f"{clip_id}{suffix}")

    def _info(self, clip: Clip, username: str) -> ClipInfo:
        base = f"{self._public_url}/media/{CLIPS_KIND}/{clip.id}"
        return ClipInfo(
            clip_id=clip.id,
            session_id=clip.session_id,
            streamer_id=clip.streamer_id,
            username=username,
            created_by=clip.created_by,
            title=clip.title,
            duration_seconds=clip.duration_ms / 1000,
            size_bytes=clip.size_bytes,
            created_at=clip.created_at,
            video_url=f"{base}.mp4",
            thumbnail_url=f"{base}.jpg",
            page_url=f"{self._public_url}/clip/{clip.id}",
        )


def _with_username() -> Select[tuple[Clip, str]]:
    return select(Clip, User.username).join(User, User.id == Clip.streamer_id)


def _journal_segments(directory: Path) -> list[Segment]:
    path = directory / JOURNAL_NAME
    try:
        with path.open("rb") as file:
            size = file.seek(0, os.SEEK_END)
            start = max(0, size - JOURNAL_TAIL_BYTES)
            file.seek(start)
            tail = file.read()
    except FileNotFoundError:
        return []
    return parse_journal_tail(tail, cut_first=start > 0)


def _encode_cursor(when: datetime, ident: str) -> str:
    # The exact microseconds (a float of POSIX seconds has too few digits to compare equal again).
    return base64.urlsafe_b64encode(f"{when.isoformat()}|{ident}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, ident = raw.split("|", 1)
        when = datetime.fromisoformat(stamp)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("cursor is not one this server issued", code="invalid_cursor") from exc
    if when.tzinfo is None:
        raise ValidationFailed("cursor is not one this server issued", code="invalid_cursor")
    return when, ident
