"""PreviewService against the real store (SQLite and PostgreSQL): a preview fills an empty thumbnail or replaces
an older preview, at most once per interval and only when somebody looks (or at the slow idle interval); an
uploaded thumbnail always wins, even one that lands while a preview is being made. Decoding is faked here
(tests/media/test_media_preview.py and tests/e2e cover it)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select, update

from retake.media.stream import Keyframe, LiveStream
from retake.server.preview_looks import looked_at
from retake.store.tables import StreamSession
from retake.streams.previews import PREVIEW_KIND, PreviewService
from tests.api.test_streams import platform_of
from tests.api.test_thumbnail import image_bytes
from tests.media.conftest import make_messages


async def thumbnail_of(client: httpx.AsyncClient, session_id: str) -> str | None:
    async with platform_of(client).sessions() as db:
        url: str | None = await db.scalar(select(StreamSession.thumbnail_url).where(StreamSession.id == session_id))
    return url


def publish_gop(stream: LiveStream, start_ms: int) -> None:
    for message in make_messages(1000, gop_ms=1000, start_ms=start_ms, headers=start_ms == 0):
        stream.publish(message)


class OneStream:
    """A started session of a fresh agent with one GOP published, and a PreviewService on a fake clock whose
    renders are recorded (keyframe timestamps)."""

    def __init__(self, client: httpx.AsyncClient, agent: Any, session_id: str, **options: float) -> None:
        self.agent, self.session_id = agent, session_id
        self.stream = LiveStream(agent.user_id)
        publish_gop(self.stream, 0)
        self.now = [0.0]
        self.rendered: list[int] = []
        platform = platform_of(client)
        self.previews = PreviewService(
            platform.sessions,
            platform.images,
            lambda: [(agent.user_id, session_id, self.stream)],
            interval_seconds=10,
            clock=lambda: self.now[0],
            render=self._render,
            **options,  # type: ignore[arg-type]
        )

    def _render(self, keyframe: Keyframe, width: int) -> bytes:
        self.rendered.append(keyframe.timestamp_ms)
        return b"\xff\xd8fake jpeg\xff\xd9"

    @classmethod
    async def start(cls, client: httpx.AsyncClient, register: Any, **options: float) -> OneStream:
        agent = await register()
        session_id = (await client.post("/api/v1/agent/stream/start", headers=agent.headers)).json()["session_id"]
        return cls(client, agent, session_id, **options)


async def test_previews_fill_empty_thumbnails_and_uploads_win(client: httpx.AsyncClient, register: Any) -> None:
    platform = platform_of(client)
    one = await OneStream.start(client, register)
    agent, session_id, stream, now, rendered, previews = (
        one.agent, one.session_id, one.stream, one.now, one.rendered, one.previews
    )  # fmt: skip
    prefix = platform.images.url_prefix(PREVIEW_KIND, agent.user_id)
    assert await previews.refresh() == 1
    first = await thumbnail_of(client, session_id)
    assert first is not None and first.startswith(prefix) and first.endswith(".jpg")
    served = await client.get(first.removeprefix("http://testserver"))
    assert served.status_code == 200 and served.content == b"\xff\xd8fake jpeg\xff\xd9"

    publish_gop(stream, 1000)
    now[0] = 5.0
    assert await previews.refresh() == 0, "a new keyframe within the interval waits"
    now[0] = 10.0
    previews.looked_at()
    assert await previews.refresh() == 1
    second = await thumbnail_of(client, session_id)
    assert second != first and second is not None and second.startswith(prefix)
    now[0] = 30.0
    assert await previews.refresh() == 0, "the same keyframe is not rendered twice"
    assert rendered == [0, 1000]

    files = {"image": ("t.png", image_bytes("PNG"), "image/png")}
    uploaded = (await client.post("/api/v1/agent/update-thumbnail", files=files, headers=agent.headers)).json()
    publish_gop(stream, 2000)
    now[0] = 45.0
    assert await previews.refresh() == 0
    assert rendered == [0, 1000], "no decode is spent while an upload is shown"
    assert await thumbnail_of(client, session_id) == uploaded["thumbnail_url"]

    # an upload that lands between the check and the UPDATE still wins, and the orphan file is removed
    keyframe = stream.latest_keyframe()
    assert keyframe is not None
    before = set((platform.images.root / PREVIEW_KIND / agent.user_id).iterdir())
    assert not await previews._make(agent.user_id, session_id, keyframe)
    assert await thumbnail_of(client, session_id) == uploaded["thumbnail_url"]
    assert set((platform.images.root / PREVIEW_KIND / agent.user_id).iterdir()) == before

    # the owner clears the thumbnail: previews come back at the next interval
    async with platform.sessions() as db:
        await db.execute(update(StreamSession).where(StreamSession.id == session_id).values(thumbnail_url=None))
        await db.commit()
    publish_gop(stream, 3000)
    now[0] = 60.0
    previews.looked_at(agent.user_id)
    assert await previews.refresh() == 1
    assert (await thumbnail_of(client, session_id) or "").startswith(prefix)

    # an ended session is never touched
    last = await thumbnail_of(client, session_id)
    assert (await client.post("/api/v1/agent/stream/stop", headers=agent.headers)).status_code == 200
    publish_gop(stream, 4000)
    now[0] = 80.0
    assert await previews.refresh() == 0
    assert await thumbnail_of(client, session_id) == last


async def test_previews_only_when_somebody_looks_or_at_the_idle_interval(
    client: httpx.AsyncClient, register: Any
) -> None:
    one = await OneStream.start(client, register, idle_interval_seconds=60)
    other = await register()
    agent, stream, now, rendered, previews = one.agent, one.stream, one.now, one.rendered, one.previews
    assert await previews.refresh() == 1, "a new session's first preview comes unasked"
    publish_gop(stream, 1000)
    now[0] = 15.0
    assert await previews.refresh() == 0, "nobody looked: no decode"
    previews.looked_at(other.user_id)
    assert await previews.refresh() == 0, "a look at another stream is not a look at this one"
    now[0] = 16.0
    previews.looked_at(agent.user_id)
    assert await previews.refresh() == 1
    assert rendered == [0, 1000]
    publish_gop(stream, 2000)
    now[0] = 30.0
    assert await previews.refresh() == 0, "the look was answered; none since"
    now[0] = 75.0
    assert await previews.refresh() == 0
    now[0] = 76.0
    assert await previews.refresh() == 1, "unlooked, a preview still comes every idle interval"
    assert rendered == [0, 1000, 2000]

    previews.idle_interval = 0  # only when somebody looks
    publish_gop(stream, 3000)
    now[0] = 500.0
    assert await previews.refresh() == 0
    previews.looked_at()  # the home page: every stream's
    assert await previews.refresh() == 1
    assert rendered == [0, 1000, 2000, 3000]


async def test_loop_starts_and_stops_and_forgets_finished_streams(client: httpx.AsyncClient) -> None:
    platform = platform_of(client)
    playing: list[tuple[str, str, LiveStream]] = []
    previews = PreviewService(platform.sessions, platform.images, lambda: playing, poll_seconds=0.01)
    previews.start()
    previews.start()  # idempotent
    await previews.stop()
    await previews.stop()
    assert await previews.refresh() == 0


async def test_previews_per_pass_are_capped_most_overdue_first(client: httpx.AsyncClient, register: Any) -> None:
    platform = platform_of(client)
    playing: list[tuple[str, str, LiveStream]] = []
    for _ in range(3):
        agent = await register()
        session_id = (await client.post("/api/v1/agent/stream/start", headers=agent.headers)).json()["session_id"]
        stream = LiveStream(agent.user_id)
        publish_gop(stream, 0)
        playing.append((agent.user_id, session_id, stream))
    now = [0.0]
    previews = PreviewService(
        platform.sessions,
        platform.images,
        lambda: playing,
        interval_seconds=10,
        poll_seconds=1,
        max_per_second=1,
        clock=lambda: now[0],
        render=lambda keyframe, width: b"\xff\xd8fake jpeg\xff\xd9",
    )
    for step in range(3):
        now[0] = float(step)
        assert await previews.refresh() == 1, "one preview per pass at 1/s with a 1 s poll"
    thumbnails = [await thumbnail_of(client, session_id) for _, session_id, _ in playing]
    assert all(thumbnails), "every stream got its turn"
    for _, _, stream in playing:
        publish_gop(stream, 1000)
    now[0] = 10.5  # every stream has a new keyframe, but only the one previewed at 0 s is due again
    previews.looked_at()
    assert await previews.refresh() == 1
    again = [await thumbnail_of(client, session_id) for _, session_id, _ in playing]
    assert [a != b for a, b in zip(again, thumbnails, strict=True)] == [True, False, False]


def test_which_requests_are_looks_at_previews() -> None:
    assert looked_at("/") == (True, None)
    assert looked_at("/api/v1/users/live/") == (True, None)
    assert looked_at("/api/v1/sessions/active/") == (True, None)
    assert looked_at("/api/v1/cards/u123.jpg") == (True, "u123")
    assert looked_at("/media/previews/u123/abc.jpg") == (True, "u123")
    assert looked_at("/api/v1/sessions/active/u123/")[0] is False
    assert looked_at("/media/thumbnails/u123/abc.png")[0] is False
    assert looked_at("/api/v1/cards/a/b.jpg")[0] is False
    assert looked_at("/live/u123.flv")[0] is False
