"""Every other ``retake agent`` command against a real ``retake serve``: register (and its refusal to overwrite),
verify through a tweet (fake oEmbed), status, chat, comments, thumbnail, stop, heartbeat, the token rules.

The commands run in this process through Typer's runner (a fresh interpreter per command costs seconds on a
busy machine); ``verify``, which talks with the operator over stdin, runs as a real subprocess."""

from __future__ import annotations

import io
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from retake.cli import app
from tests.agent.test_go_live_e2e import agent_env
from tests.e2e.conftest import RETAKE, Server, start_server, stop_server
from tests.support import VALID_WALLET, FakeOEmbed

pytestmark = pytest.mark.e2e


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def cli(env: dict[str, str], *args: str) -> Ran:
    overrides: dict[str, str | None] = {"RETAKE_ACCESS_TOKEN": None, "RETAKE_BASE_URL": None, **env}
    result = CliRunner().invoke(app, list(args), env=overrides)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def oembed() -> Iterator[FakeOEmbed]:
    fake = FakeOEmbed()
    with fake.running():
        yield fake


@pytest.fixture
def platform(tmp_path: Path, oembed: FakeOEmbed) -> Iterator[Server]:
    server = start_server(tmp_path, oembed.url)
    yield server
    stop_server(server)


def test_agent_commands(platform: Server, oembed: FakeOEmbed, tmp_path: Path) -> None:
    env = {**agent_env(tmp_path), "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    register = ["agent", "register", "--name", "CliBot", "--wallet", VALID_WALLET, "--ticker", "cli"]
    reg = cli(env, *register, "--base-url", platform.base)
    assert reg.returncode == 0, reg.stderr
    again = cli(env, *register, "--base-url", platform.base)
    assert again.returncode == 1 and "--force" in again.stderr
    creds = json.loads(Path(env["RETAKE_CREDENTIALS"]).read_text())
    me = creds["userDbId"]

    # verify: the command shows the text, the operator tweets it, the URL goes in on stdin
    proc = subprocess.Popen(
        [*RETAKE, "agent", "verify"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        message = ""
        for line in proc.stdout:
            found = re.search(r"(Claiming my Livestreaming Agent on @\S+\. Code: \S+)", line)
            if found:
                message = found.group(1)
                break
        assert message, "verify printed the text to tweet"
        oembed.tweets["1234567890"] = f"{message} #retake"
        _, stderr = proc.communicate("https://x.com/operator/status/1234567890\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, stderr
    assert "verified" in stderr
    assert cli(env, "agent", "verify").stderr.count("already verified") == 1

    status = json.loads(cli(env, "agent", "status", "--json").stdout)
    assert status["verified"] is True and status["userDbId"] == me and status["agent"] == "CliBot"
    assert status["is_live"] is False and status["token_source"] == "file"

    # the token stays with the platform that issued it
    localhost = platform.base.replace("127.0.0.1", "localhost")
    refused = cli(env, "agent", "status", "--base-url", localhost)
    assert refused.returncode == 1 and "refusing to send the access token" in refused.stderr
    refused_env = cli({**env, "RETAKE_BASE_URL": localhost}, "agent", "status")
    assert refused_env.returncode == 1 and "refusing" in refused_env.stderr

    first = json.loads(cli(env, "agent", "heartbeat", "--json").stdout)
    assert first["first_heartbeat"] is True and first["live"] is False and first["new_comments"] == 0

    # chat in our own stream and in another agent's, by name
    with httpx.Client(base_url=platform.base, timeout=10) as http:
        other = http.post(
            "/api/v1/agent/register",
            json={"agent_name": "OtherBot", "wallet_address": VALID_WALLET, "ticker": "OB"},
        ).json()
        other_auth = {"Authorization": f"Bearer {other['access_token']}"}
        assert cli(env, "agent", "chat", "hello from the cli").returncode == 0
        assert cli(env, "agent", "chat", "visiting", "--to", "OtherBot").returncode == 0
        posted = http.post(
            "/api/v1/agent/stream/chat/send",
            headers=other_auth,
            json={"message": "hi CliBot", "destination_user_id": me},
        )
        assert posted.status_code == 200, posted.text
        theirs = http.get(
            "/api/v1/agent/stream/comments", headers=other_auth, params={"userDbId": other["userDbId"]}
        ).json()["comments"]
        assert [c["text"] for c in theirs] == ["visiting"]

    listed = cli(env, "agent", "comments")
    assert listed.returncode == 0
    assert listed.stdout.index("hello from the cli") < listed.stdout.index("hi CliBot")  # oldest first
    as_json = json.loads(cli(env, "agent", "comments", "--json", "--limit", "1").stdout)
    assert [c["text"] for c in as_json["comments"]] == ["hi CliBot"]

    second = json.loads(cli(env, "agent", "heartbeat", "--json").stdout)
    assert second["first_heartbeat"] is False and second["new_comments"] == 1  # our own message does not count
    assert second["latest_comments"][0] == {"from": "OtherBot", "text": "hi CliBot", "type": "message", "id": "3"}
    assert json.loads(cli(env, "agent", "heartbeat", "--json").stdout)["new_comments"] == 0
    human = cli(env, "agent", "heartbeat")
    assert human.returncode == 0 and "not live" in human.stdout and "0 new comments" in human.stdout

    # thumbnails need an open session; stop is idempotent
    image = tmp_path / "thumb.png"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), (0, 200, 0)).save(buffer, format="PNG")
    image.write_bytes(buffer.getvalue())
    no_session = cli(env, "agent", "thumbnail", str(image))
    assert no_session.returncode == 1 and "no open session" in no_session.stderr
    with httpx.Client(base_url=platform.base, timeout=10) as http:
        started = http.post("/api/v1/agent/stream/start", headers={"Authorization": f"Bearer {creds['access_token']}"})
        assert started.status_code == 200
    uploaded = cli(env, "agent", "thumbnail", str(image))
    assert uploaded.returncode == 0 and uploaded.stdout.strip().startswith(f"{platform.base}/media/")
    stopped = cli(env, "agent", "stop")
    assert stopped.returncode == 0 and "stopped after" in stopped.stderr
    nothing = cli(env, "agent", "stop")
    assert nothing.returncode == 0 and "nothing to stop" in nothing.stderr

    # RETAKE_ACCESS_TOKEN wins over the file, and the platform says whose it is
    as_other = json.loads(
        cli({**env, "RETAKE_ACCESS_TOKEN": other["access_token"]}, "agent", "status", "--json").stdout
    )
    assert as_other["userDbId"] == other["userDbId"] and as_other["agent"] == "OtherBot"
    assert as_other["token_source"] == "RETAKE_ACCESS_TOKEN"

    missing = cli({**env, "RETAKE_CREDENTIALS": str(tmp_path / "nobody.json")}, "agent", "status")
    assert missing.returncode == 1 and "retake agent register" in missing.stderr
    for result in (reg, listed, human):
        assert creds["access_token"] not in result.stdout + result.stderr
