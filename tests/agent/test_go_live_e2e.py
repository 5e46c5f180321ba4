"""The whole system on this machine: a real ``retake serve``, real Xvfb, xterm and ffmpeg, and the CLI as an
operator would run it. register → operator verify → go-live is live (thumbnail, opening message) → a viewer's
comment reaches the ``--on-message`` handler and its answer appears in chat → a killed ffmpeg is repaired by
the watchdog → SIGINT stops the session and leaves no process behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RETAKE, Server, start_server, stop_server
from tests.e2e.media_support import wait_until
from tests.support import VALID_WALLET, FakeOEmbed

pytestmark = pytest.mark.e2e

HANDLER = """\
import json, sys
event = json.load(sys.stdin)
with open(sys.argv[1], "a") as log:
    log.write(json.dumps(event) + "\\n")
if event["type"] == "comment":
    print("echo for " + event["from"] + ": " + event["text"])
"""

NOTIFY = """\
import sys
with open(sys.argv[1], "a") as log:
    log.write(sys.stdin.read().strip() + "\\n")
"""


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Server]:
    fake = FakeOEmbed()
    with fake.running():
        server = start_server(tmp_path, fake.url)
        try:
            yield server
        finally:
            stop_server(server)


def agent_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RETAKE_ACCESS_TOKEN", "RETAKE_BASE_URL")}
    env["RETAKE_CREDENTIALS"] = str(tmp_path / "agent" / "credentials.json")
    env["HOME"] = str(tmp_path / "home")  # nothing may touch the real ~/.config
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RETAKE, *args], env=env, capture_output=True, text=True, timeout=timeout)


def processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (ppid, state, comm) for every process, read from /proc."""
    table: dict[int, tuple[int, str, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        state, ppid = raw[raw.rindex(")") + 2 :].split()[:2]
        table[int(entry)] = (int(ppid), state, comm)
    return table


def descendants(pid: int) -> dict[int, str]:
    table = processes()
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, state, comm) in table.items():
            if ppid == parent and state != "Z" and child not in found:
                found[child] = comm
                frontier.append(child)
    return found


def running(pid: int) -> bool:
    entry = processes().get(pid)
    return entry is not None and entry[1] != "Z"


def test_register_verify_go_live_chat_recover_stop(platform: Server, tmp_path: Path) -> None:
    started = time.monotonic()
    env = agent_env(tmp_path)
    creds_path = Path(env["RETAKE_CREDENTIALS"])

    reg = cli(
        env, "agent", "register",
        "--name", "LiveRuntime", "--description", "streams from a test",
        "--image-url", "https://example.com/a.png", "--wallet", VALID_WALLET, "--ticker", "lrt",
        "--base-url", platform.base,
    )  # fmt: skip
    assert reg.returncode == 0, reg.stderr
    assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
    creds = json.loads(creds_path.read_text())
    assert creds["base_url"] == platform.base and creds["agent_name"] == "LiveRuntime"
    token, me = creds["access_token"], creds["userDbId"]
    assert token not in reg.stdout + reg.stderr
    auth = {"Authorization": f"Bearer {token}"}

    verify = cli(platform.env, "admin", "verify", "liveruntime", "--data-dir", str(platform.data_dir))
    assert verify.returncode == 0, verify.stderr
    status = cli(env, "agent", "status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["verified"] is True

    handler_log, notices = tmp_path / "handler.jsonl", tmp_path / "notices.jsonl"
    (tmp_path / "handler.py").write_text(HANDLER)
    (tmp_path / "notify.py").write_text(NOTIFY)
    output = (tmp_path / "go-live.log").open("w")
    go_live = subprocess.Popen(
        [
            *RETAKE, "agent", "go-live",
            "--size", "640x360", "--text-window", "xterm",
            "--on-message", f"{sys.executable} {tmp_path / 'handler.py'} {handler_log}",
            "--notify", f"{sys.executable} {tmp_path / 'notify.py'} {notices}",
            "--work-dir", str(tmp_path / "work"),
        ],
        env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
    )  # fmt: skip

    def log() -> str:
        return (tmp_path / "go-live.log").read_text(errors="replace")

    def events() -> list[dict[str, Any]]:
        if not notices.exists():
            return []
        return [json.loads(line) for line in notices.read_text().splitlines() if line.strip()]

    try:
        with httpx.Client(base_url=platform.base, timeout=10) as http:

            def stream_status() -> dict[str, Any]:
                body: dict[str, Any] = http.get("/api/v1/agent/stream/status", headers=auth).json()
                return body

            def chat_texts() -> list[str]:
                page = http.get("/api/v1/agent/stream/comments", headers=auth, params={"userDbId": me}).json()
                return [c["text"] for c in page["comments"]]

            # live, with a thumbnail and the opening message
            def live() -> bool:
                assert go_live.poll() is None, f"go-live exited {go_live.returncode}:\n{log()}"
                return bool(stream_status()["is_live"])

            wait_until(live, timeout=45, interval=0.5)
            session = stream_status()["session_id"]
            wait_until(lambda: "I'm live. What should we explore today?" in chat_texts(), timeout=20, interval=0.5)
            active = http.get(f"/api/v1/sessions/active/{me}/").json()
            assert active["session_id"] == session and active["thumbnail_url"], active
            thumb = httpx.get(active["thumbnail_url"], timeout=10)
            assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
            wait_until(lambda: any(e["event"] == "live" for e in events()), timeout=15, interval=0.3)
            announced = next(e for e in events() if e["event"] == "live")
            assert announced["watch_url"] == f"{platform.base}/LiveRuntime" and announced["viewers"] == 0
            assert (creds_path.parent / "state.json").exists()  # the skill version seen, next to the credentials

            # a viewer (another agent, over REST) writes; the handler answers in chat
            viewer = http.post(
                "/api/v1/agent/register",
                json={"agent_name": "ChattyViewer", "wallet_address": VALID_WALLET, "ticker": "CV"},
            ).json()
            sent = http.post(
                "/api/v1/agent/stream/chat/send",
                headers={"Authorization": f"Bearer {viewer['access_token']}"},
                json={"message": "what are you building?", "destination_user_id": me},
            )
            assert sent.status_code == 200, sent.text
            answer = "echo for ChattyViewer: what are you building?"
            wait_until(lambda: answer in chat_texts(), timeout=25, interval=0.5)
            handled = [json.loads(line) for line in handler_log.read_text().splitlines()]
            comment_events = [e for e in handled if e["type"] == "comment"]
            assert [e["text"] for e in comment_events] == ["what are you building?"]
            assert comment_events[0]["stream"]["watch_url"] == f"{platform.base}/LiveRuntime"
            assert comment_events[0]["agent"]["userDbId"] == me

            # the watchdog repairs a killed encoder
            children = descendants(go_live.pid)
            assert sorted(set(children.values()) & {"Xvfb", "xterm", "ffmpeg", "tail"}) == [
                "Xvfb", "ffmpeg", "tail", "xterm",
            ]  # fmt: skip
            old_ffmpeg = next(pid for pid, comm in children.items() if comm == "ffmpeg")
            os.kill(old_ffmpeg, signal.SIGKILL)
            killed_at = time.monotonic()

            def repaired() -> bool:
                fresh = [p for p, c in descendants(go_live.pid).items() if c == "ffmpeg" and p != old_ffmpeg]
                return bool(fresh) and bool(stream_status()["is_live"])

            wait_until(repaired, timeout=15, interval=0.3)
            assert time.monotonic() - killed_at < 15
            assert stream_status()["session_id"] == session  # the same session resumed
            wait_until(lambda: any(e["event"] == "encoder_recovered" for e in events()), timeout=10, interval=0.3)
            assert [e["event"] for e in events()][:3] == ["live", "encoder_crashed", "encoder_recovered"]

            # Ctrl-C: the session is stopped and every process the runtime started is gone
            before = descendants(go_live.pid)
            go_live.send_signal(signal.SIGINT)
            assert go_live.wait(timeout=30) == 0, log()
            left = {pid: comm for pid, comm in before.items() if running(pid)}
            assert left == {}, f"processes left behind: {left}"
            final = stream_status()
            assert final["is_live"] is False and final["session_id"] is None
            recorded = http.get(f"/api/v1/sessions/recorded/{me}/").json()["sessions"]
            assert recorded[0]["session_id"] == session
            assert events()[-1]["event"] == "stopped"

        text = log()
        assert token not in text and token not in notices.read_text(), "the access token is never printed"
        assert "encoder down" in text and "stopped after" in text
        assert time.monotonic() - started < 90, f"the whole run took {time.monotonic() - started:.0f} s"
    finally:
        if go_live.poll() is None:
            for pid in descendants(go_live.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            go_live.kill()
            go_live.wait(timeout=10)
        output.close()
