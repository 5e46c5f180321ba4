"""``retake agent restream add|list|remove`` against a real ``retake serve`` (Typer's runner, in process)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.agent.test_cli_e2e import cli
from tests.agent.test_go_live_e2e import agent_env
from tests.e2e.conftest import start_server, stop_server
from tests.support import VALID_WALLET, FakeOEmbed

KEY = "cli_secret_key_QRST"


def test_restream_commands(tmp_path: Path) -> None:
    with FakeOEmbed().running() as oembed:
        server = start_server(tmp_path, oembed.url)
        try:
            env = {**agent_env(tmp_path), "COLUMNS": "200"}
            register = ["agent", "register", "--name", "RestreamCli", "--wallet", VALID_WALLET, "--ticker", "rst"]
            assert cli(env, *register, "--base-url", server.base).returncode == 0

            added = cli(
                {**env, "RETAKE_RESTREAM_KEY": KEY}, "agent", "restream", "add", "yt", "rtmp://a.rtmp.youtube.com/live2"
            )
            assert added.returncode == 0, added.stderr
            assert "…QRST" in added.stdout and KEY not in added.stdout

            listed = cli(env, "agent", "restream", "list", "--json")
            assert listed.returncode == 0, listed.stderr
            rows = json.loads(listed.stdout)["restreams"]
            assert [(r["name"], r["key_last4"], r["status"]) for r in rows] == [("yt", "QRST", "idle")]
            table = cli(env, "agent", "restream", "list")
            assert "yt" in table.stdout and "idle" in table.stdout and KEY not in table.stdout

            bad = cli({**env, "RETAKE_RESTREAM_KEY": KEY}, "agent", "restream", "add", "x", "http://example.com/a")
            assert bad.returncode == 1 and "invalid_url" in bad.stderr

            removed = cli(env, "agent", "restream", "remove", rows[0]["id"])
            assert removed.returncode == 0 and "removed" in removed.stdout
            assert json.loads(cli(env, "agent", "restream", "list", "--json").stdout) == {"restreams": []}
            missing = cli(env, "agent", "restream", "remove", rows[0]["id"])
            assert missing.returncode == 1 and "restream_not_found" in missing.stderr
        finally:
            stop_server(server)
    assert KEY not in server.log()
