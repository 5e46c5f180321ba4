"""Operator notifications (command and URL) and chat handlers (callbacks and ``--on-message`` commands)."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from retake.agent.handlers import CommandHandler, HandlerError, ask
from retake.agent.notify import Notifier

PY = sys.executable


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            got.append({"headers": dict(self.headers), "body": json.loads(self.rfile.read(length))})
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()
    server.server_close()


async def test_events_reach_command_and_url_in_order(
    tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETAKE_ACCESS_TOKEN", "rtk_secret_never_leaves")
    url, got = receiver
    log = tmp_path / "events.jsonl"
    script = (
        "import json, os, sys; e = json.loads(sys.stdin.read()); "
        "e['env_token'] = os.environ.get('RETAKE_ACCESS_TOKEN'); "
        f"open({str(log)!r}, 'a').write(json.dumps(e) + '\\n')"
    )
    seen: list[str] = []
    notifier = Notifier(
        command=[PY, "-c", script],
        url=url,
        agent="Nova",
        watch_url="http://127.0.0.1:8000/Nova",
        on_notice=lambda n: seen.append(n.event),
    )
    notifier.emit("live", "I'm live", viewers=0)
    notifier.emit("shutdown_warning", "warned", urgent=True, warning={"id": "1"})
    notifier.emit("encoder_recovered", "back")
    await notifier.aclose(grace=20)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["event"] for e in events] == ["live", "shutdown_warning", "encoder_recovered"]
    assert events[0]["watch_url"] == "http://127.0.0.1:8000/Nova" and events[0]["viewers"] == 0
    assert events[1]["urgent"] is True and events[1]["warning"] == {"id": "1"}
    assert all(e["env_token"] is None for e in events)  # the token is not in the notifier's environment
    assert [g["body"]["event"] for g in got] == ["live", "shutdown_warning", "encoder_recovered"]
    assert all("authorization" not in {k.lower() for k in g["headers"]} for g in got)
    assert seen == ["live", "shutdown_warning", "encoder_recovered"]
    assert [n["event"] for n in notifier.sent] == seen


async def test_a_stuck_or_failing_receiver_does_not_stall(tmp_path: Path) -> None:
    failures: list[str] = []
    slow = Notifier(command=[PY, "-c", "import time; time.sleep(30)"], timeout=0.5, on_failure=failures.append)
    slow.emit("live", "x")
    broken = Notifier(command=["/nonexistent/notify"], url="http://127.0.0.1:9/", on_failure=failures.append)
    broken.emit("live", "x")
    started = asyncio.get_running_loop().time()
    await slow.aclose(grace=10)
    await broken.aclose(grace=10)
    assert asyncio.get_running_loop().time() - started < 8
    assert any("took longer" in f for f in failures)
    assert any("could not start" in f for f in failures)
    assert any("notify URL failed" in f for f in failures)


async def test_command_handler_round_trip(tmp_path: Path) -> None:
    script = tmp_path / "handler.py"
    script.write_text(
        "import json, os, sys\n"
        "e = json.load(sys.stdin)\n"
        "print('hi ' + e['from'] + ' via ' + os.environ['RETAKE_STREAM_LOG'])\n"
    )
    handler = CommandHandler([PY, str(script)], env={"RETAKE_STREAM_LOG": "/tmp/s.log"})
    assert await ask(handler, {"type": "comment", "from": "v1"}, 20) == "hi v1 via /tmp/s.log"

    silent = CommandHandler([PY, "-c", "import sys; sys.stdin.read()"])
    assert await ask(silent, {"type": "silence"}, 20) is None

    failing = CommandHandler([PY, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"])
    with pytest.raises(HandlerError, match="exited with 3: boom"):
        await ask(failing, {}, 20)

    slow = CommandHandler([PY, "-c", "import time; time.sleep(30)"])
    with pytest.raises(HandlerError, match="longer than"):
        await ask(slow, {}, 0.5)


async def test_python_callbacks_plain_and_async() -> None:
    def plain(event: dict[str, Any]) -> str:
        return f"  plain {event['text']}  "

    async def coroutine(event: dict[str, Any]) -> str | None:
        await asyncio.sleep(0)
        return None

    def broken(event: dict[str, Any]) -> str:
        raise RuntimeError("bad")

    assert await ask(plain, {"text": "x"}, 5) == "plain x"
    assert await ask(coroutine, {"text": "x"}, 5) is None
    with pytest.raises(HandlerError, match="bad"):
        await ask(broken, {}, 5)
