"""The issue's "done when": with only HTTP, an agent registers, is verified by the operator command, gets RTMP
credentials, starts, uploads a thumbnail, chats, reads comments and stops, against a real server process."""

from __future__ import annotations

import io
import signal
import subprocess

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import RETAKE, Server, stop_server
from tests.support import VALID_WALLET


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (128, 72), (10, 200, 40)).save(out, format="PNG")
    return out.getvalue()


def test_agent_journey_over_http(server: Server) -> None:
    with httpx.Client(base_url=server.base, timeout=10) as http:
        reg = http.post(
            "/api/v1/agent/register",
            json={
                "agent_name": "JourneyBot",
                "agent_description": "walks the whole path",
                "image_url": "https://example.com/j.png",
                "wallet_address": VALID_WALLET,
                "ticker": "jrny",
            },
        )
        assert reg.status_code == 200, reg.text
        creds = reg.json()
        auth = {"Authorization": f"Bearer {creds['access_token']}"}
        assert http.get("/api/v1/agent/verification-status", headers=auth).json() == {"verified": False}

        message = http.post("/api/v1/agent/prepare-verify", headers=auth).json()["verification_message"]
        assert "Code:" in message
        verify = subprocess.run(
            [*RETAKE, "admin", "verify", "journeybot", "--data-dir", str(server.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env=server.env,
        )
        assert verify.returncode == 0, verify.stderr
        assert "verified" in verify.stderr
        assert http.get("/api/v1/agent/verification-status", headers=auth).json() == {"verified": True}
        unknown = subprocess.run(
            [*RETAKE, "admin", "verify", "nobody_at_all", "--data-dir", str(server.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env=server.env,
        )
        assert unknown.returncode == 1 and "no agent named" in unknown.stderr

        rtmp = http.post("/api/v1/agent/rtmp", headers=auth).json()
        assert rtmp["url"] == f"rtmp://127.0.0.1:{server.rtmp_port}/live" and rtmp["key"].startswith("sk_")
        start = http.post("/api/v1/agent/stream/start", headers=auth).json()
        assert start["success"] is True and start["session_id"]

        thumb = http.post(
            "/api/v1/agent/update-thumbnail", headers=auth, files={"image": ("t.png", png(), "image/png")}
        )
        assert thumb.status_code == 200, thumb.text
        served = httpx.get(thumb.json()["thumbnail_url"], timeout=10)
        assert served.status_code == 200 and served.headers["content-type"] == "image/png"

        sent = http.post(
            "/api/v1/agent/stream/chat/send",
            headers=auth,
            json={
                "message": "I'm live. What should we explore today?",
                "destination_user_id": creds["userDbId"],
            },
        ).json()
        comments = http.get(
            "/api/v1/agent/stream/comments", headers=auth, params={"userDbId": creds["userDbId"], "limit": 50}
        ).json()["comments"]
        assert comments[0]["_id"] == sent["message_id"] and comments[0]["author"]["fusername"] == "JourneyBot"

        status = http.get("/api/v1/agent/stream/status", headers=auth).json()
        assert status["session_id"] == start["session_id"] and status["userDbId"] == creds["userDbId"]
        stop = http.post("/api/v1/agent/stream/stop", headers=auth).json()
        assert stop["status"] == "stopped" and isinstance(stop["duration_seconds"], int)
        assert http.post("/api/v1/agent/stream/stop", headers=auth).status_code == 409

        assert creds["access_token"] not in server.log(), "secrets never reach the log"
        assert rtmp["key"] not in server.log()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_shutdown(server: Server, sig: signal.Signals) -> None:
    assert stop_server(server, sig) == 0
    assert "Application shutdown complete" in server.log()
