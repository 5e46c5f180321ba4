"""The JavaScript ``socket.io-client`` (from npm, as browsers and Node agents use it) against a real server:
socket → REST and REST → socket round trips with matching ids."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.realtime.support import register

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "js" / "roundtrip.mjs"


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; run `make system-deps`")
    if not (ROOT / "node_modules" / "socket.io-client").is_dir():
        pytest.fail("socket.io-client is not installed; run `make node-deps` (npm ci)")
    return node


async def test_js_client_round_trips(node: Server) -> None:
    async with httpx.AsyncClient(base_url=node.base, timeout=10) as http:
        streamer, viewer = await register(http, "js"), await register(http, "js")
        proc = await asyncio.create_subprocess_exec(
            node_binary(),
            str(SCRIPT),
            node.base,
            streamer.user_id,
            viewer.token,
            viewer.user_id,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        lines: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(30):
                while not lines or lines[-1]["event"] != "ready":
                    raw = await proc.stdout.readline()
                    assert raw, (await proc.stderr.read()).decode()
                    lines.append(json.loads(raw))
                sent = await http.post(
                    "/api/v1/agent/stream/chat/send",
                    json={"message": "from rest", "destination_user_id": streamer.user_id},
                    headers=streamer.headers,
                )
                rest_out, js_err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, js_err.decode()
        lines += [json.loads(line) for line in rest_out.decode().splitlines()]

        [ack] = [entry["data"] for entry in lines if entry["event"] == "ack"]
        messages = {entry["data"]["text"]: entry["data"] for entry in lines if entry["event"] == "message"}
        assert [entry for entry in lines if entry["event"] == "error"] == []
        assert messages["from js"] == ack, "the JS client's own message came back as broadcast, same object"
        assert messages["from rest"]["_id"] == sent.json()["message_id"]
        comments = (await http.get("/api/v1/agent/stream/comments", headers=streamer.headers)).json()["comments"]
        assert comments[0] == messages["from rest"] and comments[1] == messages["from js"]
        assert comments[1]["author"]["fusername"] == viewer.name
