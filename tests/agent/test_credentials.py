"""Credentials as the skill keeps them: mode 600, RETAKE_ACCESS_TOKEN first, the base URL stored with the token."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from retake.agent.credentials import (
    DEFAULT_BASE_URL,
    Credentials,
    credentials_path,
    load_credentials,
    loose_permissions,
    resolve_base_url,
    save_credentials,
)
from retake.agent.errors import CredentialsError
from retake.agent.state import AgentState

CREDS = Credentials(
    access_token="rtk_file",
    base_url="http://127.0.0.1:8000",
    agent_name="Nova",
    agent_id="agent_x",
    userDbId="u-1",
    wallet_address="1111",
    ticker="NOVA",
)


def test_saved_with_mode_600_in_a_private_folder(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "retake" / "credentials.json"
    save_credentials(CREDS, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    data = json.loads(path.read_text())
    # the skill's fields, plus the platform that issued the token
    assert data == {
        "access_token": "rtk_file",
        "base_url": "http://127.0.0.1:8000",
        "agent_name": "Nova",
        "agent_id": "agent_x",
        "userDbId": "u-1",
        "wallet_address": "1111",
        "ticker": "NOVA",
        "token_address": "",
        "token_ticker": "",
    }
    assert not loose_permissions(path)
    path.chmod(0o644)
    assert loose_permissions(path)
    assert not list(path.parent.glob(".credentials.json.*")), "no temporary file left behind"


def test_path_is_overridable(tmp_path: Path) -> None:
    assert credentials_path({"RETAKE_CREDENTIALS": str(tmp_path / "c.json")}) == tmp_path / "c.json"
    assert credentials_path({}).parts[-3:] == (".config", "retake", "credentials.json")


def test_environment_token_takes_precedence(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    assert load_credentials(path, env={}) is None
    save_credentials(CREDS, path)
    assert load_credentials(path, env={}) == CREDS
    creds = load_credentials(path, env={"RETAKE_ACCESS_TOKEN": "rtk_env"})
    assert creds is not None
    assert creds.access_token == "rtk_env" and creds.token_from_env
    assert creds.base_url == CREDS.base_url and creds.userDbId == "u-1"  # the rest still comes from the file
    # without a file the variable alone is enough (the base URL then comes from flag/env)
    alone = load_credentials(tmp_path / "none.json", env={"RETAKE_ACCESS_TOKEN": "rtk_env"})
    assert alone is not None and alone.access_token == "rtk_env" and alone.base_url == ""


def test_a_token_from_the_environment_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    save_credentials(CREDS, path)
    creds = load_credentials(path, env={"RETAKE_ACCESS_TOKEN": "rtk_env"})
    assert creds is not None
    save_credentials(creds.with_updates(token_address="Tok"), path)
    data = json.loads(path.read_text())
    assert data["access_token"] == "rtk_file" and data["token_address"] == "Tok"


def test_unreadable_files_are_explained(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(CredentialsError, match="not valid JSON"):
        load_credentials(path, env={})
    path.write_text("[1]")
    with pytest.raises(CredentialsError, match="JSON object"):
        load_credentials(path, env={})
    path.write_text('{"agent_name": "x"}')  # no token: as good as no credentials
    assert load_credentials(path, env={}) is None


def test_base_url_order_flag_env_file_default() -> None:
    env = {"RETAKE_BASE_URL": "http://env.example/"}
    assert resolve_base_url("http://flag.example", CREDS, env) == "http://flag.example"
    assert resolve_base_url(None, CREDS, env) == "http://env.example"
    assert resolve_base_url(None, CREDS, {}) == "http://127.0.0.1:8000"
    assert resolve_base_url(None, None, {}) == DEFAULT_BASE_URL
    assert resolve_base_url("https://retake.tv/api/v1", None, {}) == "https://retake.tv"
    with pytest.raises(CredentialsError):
        resolve_base_url("ftp://x", None, {})


def test_state_next_to_the_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAKE_CREDENTIALS", str(tmp_path / "agent" / "credentials.json"))
    state = AgentState()
    assert state.path == tmp_path / "agent" / "state.json"
    state.set_skill_version("http://a", "2.1.2")
    state.heartbeat_last_id = "42"
    first = state.unseen_warnings([{"id": "2", "kind": "warn", "reason": "b"}, {"id": "1", "reason": "a"}])
    assert [w["id"] for w in first] == ["1", "2"]  # oldest first
    state.save()
    again = AgentState()
    assert again.skill_version("http://a") == "2.1.2" and again.skill_version("http://b") is None
    assert again.heartbeat_last_id == "42"
    assert again.unseen_warnings([{"id": "3", "kind": "shutdown"}, {"id": "2"}]) == [{"id": "3", "kind": "shutdown"}]
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o600
