"""The go-live loops' decisions against a mock platform (no processes): who gets answered, what the operator
is told, when the runtime stops by itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from retake.agent.async_client import AsyncRetakeClient
from retake.agent.chat import ChatDesk
from retake.agent.credentials import Credentials
from retake.agent.notify import Notifier
from retake.agent.options import GoLiveOptions, NotVerified
from retake.agent.runtime import GoLive, StopRequest
from retake.agent.screen import Screen
from retake.agent.state import AgentState

BASE = "http://127.0.0.1:8000"
ME = "me-0000"
ENDED_ELSEWHERE = "the platform ended this stream session (stopped elsewhere or by the operator)"


def comment(cid: int, sender: str, text: str, kind: str = "message", **extra: Any) -> dict[str, Any]:
    return {
        "_id": str(cid),
        "chat_event_id": str(cid),
        "type": kind,
        "text": text,
        "sender_user_id": sender,
        "sender_username": sender,
        **extra,
    }


class Platform:
    def __init__(self) -> None:
        self.comments: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.sent: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/agent/stream/comments"):
            return httpx.Response(200, json={"comments": self.comments, "next_cursor": None})
        if path.endswith("/agent/stream/chat/send"):
            self.sent.append(json.loads(request.content)["message"])
            n = str(len(self.sent) + 1000)
            return httpx.Response(200, json={"message_id": n, "chat_event_id": n, "sent_at": "now"})
        if path.endswith("/agent/stream/status"):
            status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
            return httpx.Response(200, json=status)
        return httpx.Response(404, json={"error": "unknown", "code": "not_found"})


def runtime(tmp_path: Path, platform: Callable[[httpx.Request], httpx.Response], **options: Any) -> GoLive:
    """A runtime as it is once the stream is open (session s1, chat desk ready), without processes."""
    client = AsyncRetakeClient(BASE, "rtk_x", transport=httpx.MockTransport(platform))
    creds = Credentials("rtk_x", BASE, agent_name="Nova", userDbId=ME)

    def handler(event: dict[str, Any]) -> str | None:
        return f"re: {event['text']}" if event["type"] == "comment" else "silence breaker"

    go = GoLive(
        client,
        creds,
        GoLiveOptions(**options),
        handler=handler,
        notifier=Notifier(agent="Nova", watch_url=f"{BASE}/Nova"),
        state=AgentState(tmp_path / "state.json"),
    )
    go.screen = Screen(tmp_path / "stream.log")
    go.liveness.session_id = "s1"
    go.chat = ChatDesk(
        client,
        user_id=ME,
        agent_name="Nova",
        options=go.options,
        handler=handler,
        notifier=go.notifier,
        report=go.report,
        show=go.screen_write,
        context=go.context,
    )
    return go


async def test_new_viewer_messages_are_answered_once(tmp_path: Path) -> None:
    platform = Platform()
    go = runtime(tmp_path, platform, large_tip_sol=1.0)
    assert go.chat is not None
    go.chat.last_comment_id = "10"
    platform.comments = [  # newest first
        comment(15, "v2", "big tip", kind="tip", tip_data={"amount": 2.5}),
        comment(14, "system", "", kind="delete"),
        comment(13, ME, "my own message"),
        comment(12, "v1", "hello \x1b[31mthere"),
        comment(9, "v0", "old news"),
    ]
    assert await go.chat.poll() is True
    assert platform.sent == ["re: hello \x1b[31mthere", "re: big tip"]  # oldest first
    assert await go.chat.poll() is False  # nothing new: nothing answered twice
    assert len(platform.sent) == 2
    assert [n["event"] for n in go.notifier.sent] == ["large_tip"]
    assert go.notifier.sent[0]["amount_sol"] == 2.5
    shown = (tmp_path / "stream.log").read_text()
    assert "v1: hello [31mthere" in shown and "\x1b" not in shown  # no terminal escapes reach xterm
    assert "Nova: re: big tip" in shown
    await go.client.aclose()


async def test_silence_is_broken_by_the_handler_or_the_builtin_lines(tmp_path: Path) -> None:
    platform = Platform()
    go = runtime(tmp_path, platform)
    assert go.chat is not None
    await go.chat.break_silence()
    go.chat.handler = None
    await go.chat.break_silence()
    await go.chat.break_silence()
    assert platform.sent == ["silence breaker", *go.options.proactive_messages[:2]]
    await go.client.aclose()


async def test_monitor_reports_viewers_and_warnings_then_stops_when_the_session_ends(tmp_path: Path) -> None:
    platform = Platform()
    warning = {"id": "7", "kind": "warn", "reason": "low effort", "session_id": "s1", "created_at": "t"}
    live = {"is_live": True, "viewers": 6, "uptime_seconds": 5, "token_address": "", "userDbId": ME}
    platform.statuses = [
        {**live, "session_id": "s1", "warnings": []},
        {**live, "viewers": 2, "session_id": "s1", "warnings": [warning]},
        {**live, "is_live": False, "viewers": 0, "session_id": None, "warnings": [warning]},
    ]
    go = runtime(tmp_path, platform, status_interval=0.01, viewer_milestones=(1, 5))
    await asyncio.wait_for(go.monitor.run(), 5)
    events = [(n["event"], n["urgent"]) for n in go.notifier.sent]
    assert events == [
        ("milestone", False),
        ("milestone", False),
        ("shutdown_warning", True),
        ("viewers_falling", False),
        ("session_ended", True),
    ]
    assert "low effort" in go.notifier.sent[2]["message"]
    assert f"{BASE}/Nova" in go.notifier.sent[3]["message"]
    # the session is gone: nothing to stop
    assert go.stop_request == StopRequest(reason=ENDED_ELSEWHERE, call_stop=False)
    # the warning is remembered next to the credentials: a heartbeat will not report it again
    assert AgentState(tmp_path / "state.json").unseen_warnings([warning]) == []
    await go.client.aclose()


@pytest.mark.parametrize("allow", [False, True])
async def test_unverified_agents_need_the_flag(tmp_path: Path, allow: bool) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/verification-status"):
            return httpx.Response(200, json={"verified": False})
        if request.url.path.endswith("/agent/stream/status"):
            body = {"is_live": False, "viewers": 0, "uptime_seconds": 0, "token_address": "", "userDbId": ME}
            return httpx.Response(200, json={**body, "session_id": None})
        return httpx.Response(404, json={"error": "x", "code": "not_found"})

    client = AsyncRetakeClient(BASE, "rtk_x", transport=httpx.MockTransport(answer))
    creds = Credentials("rtk_x", BASE, agent_name="Nova", userDbId=ME)
    go = GoLive(
        client, creds, GoLiveOptions(allow_unverified=allow, skill_check=False), state=AgentState(tmp_path / "s")
    )
    go.work_dir = tmp_path
    if allow:
        await go.preflight()
    else:
        with pytest.raises(NotVerified, match=r"not verified.*--allow-unverified"):
            await go.preflight()
    await client.aclose()


async def test_an_encoder_dropped_because_the_session_ended_is_not_restarted(tmp_path: Path) -> None:
    platform = Platform()
    platform.statuses = [
        {"is_live": False, "viewers": 0, "uptime_seconds": 0, "token_address": "", "userDbId": ME, "session_id": None}
    ]
    asked: list[str] = []
    inner = platform.__call__

    def spy(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return inner(request)

    go = runtime(tmp_path, spy)
    await go.watchdog.recover_encoder("ffmpeg exited with code 1")
    assert asked == ["/api/v1/agent/stream/status"]  # no fresh key, no stream/start: the operator ended it
    assert [n["event"] for n in go.notifier.sent] == ["session_ended"]
    assert go.stop_request == StopRequest(reason=ENDED_ELSEWHERE, call_stop=False)
    assert go.encoder_restarts == 0
    await go.client.aclose()
