"""A client of the first retake.tv agent API (research/v1-api.md), as its author wrote it, with only the base URL
changed, against a real ``retake serve``: registers (no ticker, a 0x wallet), gets RTMP credentials with GET,
starts, goes live with ffmpeg, chats with ``{userDbId, message}``, reads comments under v1 and v2 names, hears its
message on the v1 realtime chat (Socket.IO, ``joinRoom``), and stops. Plain HTTP calls, not our SDK."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from typing import Any

import httpx

from tests.e2e.conftest import RETAKE, Server
from tests.e2e.media_support import codecs, ffprobe, lavfi_publisher, running
from tests.realtime.support import Probe

WALLET = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"  # EIP-55's first example, all lower-case as many tools print it


class FirstApiAgent:
    """The old client: every path under ``<base>/api/agent``, the token as a Bearer header."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/") + "/api/agent", timeout=15)
        self.access_token = ""
        self.user_db_id = ""

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"} if self.access_token else {}

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, headers=self._auth(), **kwargs)
        assert response.status_code == 200, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    async def register(self, name: str, description: str, image_url: str, wallet: str) -> dict[str, Any]:
        body = {"agent_name": name, "agent_description": description, "image_url": image_url, "wallet_address": wallet}
        answer: dict[str, Any] = await self._json("POST", "/register", json=body)
        self.access_token, self.user_db_id = answer["access_token"], answer["userDbId"]
        return answer

    async def rtmp_target(self) -> str:
        creds = await self._json("GET", "/rtmp")
        return f"{creds['rtmp_url']}/{creds['stream_key']}"

    async def start(self) -> dict[str, Any]:
        started: dict[str, Any] = await self._json("POST", "/stream/start")
        return started

    async def status(self) -> dict[str, Any]:
        status: dict[str, Any] = await self._json("GET", "/stream/status")
        return status

    async def say(self, message: str) -> str:
        sent = await self._json("POST", "/chat/send", json={"userDbId": self.user_db_id, "message": message})
        return str(sent["message_id"])

    async def comments(self, limit: int = 50) -> list[dict[str, Any]]:
        response = await self.http.get(
            "/stream/comments", params={"userDbId": self.user_db_id, "limit": limit}, headers=self._auth()
        )
        if response.status_code == 404:  # the first API's "never live yet": nothing to read
            return []
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["comments"]
        return found

    async def stop(self) -> dict[str, Any]:
        stopped: dict[str, Any] = await self._json("POST", "/stream/stop")
        return stopped

    async def close(self) -> None:
        await self.http.aclose()


async def until(check: Any, seconds: float) -> float:
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        if await check():
            return time.monotonic() - began
        await asyncio.sleep(0.25)
    raise AssertionError(f"condition not met within {seconds} s")


def admin_verify(server: Server, name: str) -> None:
    done = subprocess.run(
        [*RETAKE, "admin", "verify", name, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=server.env,
    )
    assert done.returncode == 0, done.stderr


async def test_first_api_client_goes_live_chats_and_stops(server: Server) -> None:
    agent = FirstApiAgent(server.base)
    chat = Probe()
    try:
        reg = await agent.register("OldSchoolBot", "written for the first API", "https://example.com/o.png", WALLET)
        assert reg["agent_name"] == "OldSchoolBot" and reg["ticker"] == "OLDSCHOOLB"
        assert reg["wallet_address"].lower() == WALLET and reg["agent_id"].startswith("agent_")
        assert await agent.comments() == [], "nothing yet, whether answered 404 (first API) or an empty page"

        target = await agent.rtmp_target()
        assert target.startswith(f"rtmp://127.0.0.1:{server.rtmp_port}/live/sk_")
        started = await agent.start()
        # API.md: an unverified agent starts with empty token fields (the first API answered 400 here).
        assert started["success"] is True and started["token"]["tokenAddress"] == ""

        # The first API's realtime chat: Socket.IO with its query parameters, joinRoom, `message` events.
        await chat.connect(server.base, f"?Client-ID={uuid.uuid4()}&Client-Type=streamer")
        await chat.join(agent.user_db_id)

        with running(lavfi_publisher(target)) as encoder:
            took = await until(lambda: _is_live(agent), seconds=20)
            assert encoder.poll() is None and took < 15, f"is_live after {took:.1f} s"
            flv = ffprobe(f"{server.base}/live/{agent.user_db_id}.flv", "-read_intervals", "%+1")
            assert codecs(flv) == {"h264", "aac"}

            message_id = await agent.say("gm from the first API")
            _name, heard = await chat.wait_for(lambda e: e[0] == "message" and e[1].get("_id") == message_id)
            assert heard["text"] == "gm from the first API"
            assert heard["author"]["userDbId"] == heard["author"]["_id"] == agent.user_db_id

            comments = await agent.comments()
            mine = [c for c in comments if c["author"]["userDbId"] == agent.user_db_id]  # how it skips its own
            assert [c["id"] for c in mine] == [message_id]
            [comment] = mine
            assert (comment["username"], comment["message"]) == ("OldSchoolBot", "gm from the first API")
            assert (comment["_id"], comment["text"], comment["author"]["fusername"]) == (
                message_id,
                "gm from the first API",
                "OldSchoolBot",
            )
            assert comment["chat_event_id"] == message_id and comment["sender_user_id"] == agent.user_db_id
            assert comment["author"]["walletType"] == "EVM"
            assert {k: comment[k] for k in heard} == heard, "the broadcast is the comment REST pages show"

            admin_verify(server, "OldSchoolBot")  # then start (idempotent while live) hands out the token
            again = await agent.start()
            assert again["session_id"] == started["session_id"] and again["token"]["ticker"] == "OLDSCHOOLB"
            assert (await agent.status())["token_address"] == again["token"]["tokenAddress"] != ""

            stopped = await agent.stop()
            assert stopped["status"] == "stopped" and stopped["duration_seconds"] >= 0
        assert (await agent.status())["is_live"] is False
    finally:
        await chat.close()
        await agent.close()
    log = server.log()
    assert agent.access_token not in log and target.rsplit("/", 1)[1] not in log, "secrets never reach the log"


async def _is_live(agent: FirstApiAgent) -> bool:
    return bool((await agent.status())["is_live"])
