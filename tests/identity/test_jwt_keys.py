"""Platform JWT keys: first-start generation, rotation (new key signs, old keys verify until removed), the CLI,
and rotation reaching a running server."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from typer.testing import CliRunner

from retake.cli import app as cli_app
from retake.errors import Unauthorized
from retake.identity.jwt_keys import ALGORITHM, JwtKeyRing
from tests.identity.support import guest, platform_of


def test_first_start_creates_one_private_key(tmp_path: Path) -> None:
    ring = JwtKeyRing(tmp_path / "keys")
    ring.ensure()
    ring.ensure()
    files = list((tmp_path / "keys").iterdir())
    assert len(files) == 1 and len(ring.kids()) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in files[0].read_bytes()


def test_rotation_signs_with_the_new_key_and_old_keys_verify_until_removed(tmp_path: Path) -> None:
    ring = JwtKeyRing(tmp_path / "keys")
    ring.ensure()
    first = ring.signing_kid()
    old_token = ring.sign({"sub": "u1"})
    # Another process (the CLI) rotates: this ring sees the new file without a restart.
    second = JwtKeyRing(tmp_path / "keys").rotate()
    assert second > first and ring.kids() == [first, second] and ring.signing_kid() == second
    new_token = ring.sign({"sub": "u2"})
    assert jwt.get_unverified_header(new_token)["kid"] == second
    assert jwt.get_unverified_header(old_token)["kid"] == first
    for token, kid in ((old_token, first), (new_token, second)):
        key = ring.public_key(kid)
        assert key is not None
        assert jwt.decode(token, key, algorithms=[ALGORITHM])["sub"] in {"u1", "u2"}
    assert {k["kid"] for k in ring.jwks()["keys"]} == {first, second}
    assert ring.remove(first) and not ring.remove(first)
    assert ring.public_key(first) is None and ring.kids() == [second]


def test_cli_rotate_jwt_key(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli_app, ["admin", "rotate-jwt-key", "--data-dir", str(tmp_path)])
    assert first.exit_code == 0, first.output
    second = runner.invoke(cli_app, ["admin", "rotate-jwt-key", "--data-dir", str(tmp_path)])
    assert second.exit_code == 0, second.output
    kids = JwtKeyRing(tmp_path / "keys").kids()
    assert len(kids) == 2 and kids[-1] in second.stdout and kids[0] in first.stdout


async def test_rotation_on_a_running_server(client: httpx.AsyncClient, tmp_path: Path) -> None:
    before = await guest(client)
    identity = platform_of(client).identity
    old_kid = identity.keys.signing_kid()
    new_kid = JwtKeyRing(identity.keys.folder).rotate()  # as `retake admin rotate-jwt-key` would
    after = await guest(client)
    assert jwt.get_unverified_header(after.token)["kid"] == new_kid
    for viewer in (before, after):
        me = await client.get("/api/v1/users/me", headers=viewer.headers)
        assert me.status_code == 200 and me.json()["user_id"] == viewer.id
    jwks = (await client.get("/api/v1/auth/jwks")).json()
    assert {k["kid"] for k in jwks["keys"]} == {old_kid, new_kid}
    assert identity.keys.remove(old_kid)
    gone = await client.get("/api/v1/users/me", headers=before.headers)
    assert gone.status_code == 401 and gone.json()["code"] == "invalid_token"
    assert (await client.get("/api/v1/users/me", headers=after.headers)).status_code == 200


async def test_platform_tokens_with_wrong_claims_are_refused(client: httpx.AsyncClient) -> None:
    viewer = await guest(client)
    identity = platform_of(client).identity
    claims = jwt.decode(viewer.token, options={"verify_signature": False})
    wrong: dict[str, dict[str, Any]] = {
        "audience": {**claims, "aud": "someone-else"},
        "issuer": {**claims, "iss": "http://evil.example"},
        "expired": {**claims, "exp": claims["iat"] - 10},
        "no exp": {k: v for k, v in claims.items() if k != "exp"},
        "no sub": {k: v for k, v in claims.items() if k != "sub"},
    }
    for label, bad in wrong.items():
        forged = identity.keys.sign(bad)
        with pytest.raises(Unauthorized):
            await identity.user_id_for(forged)
        response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401, label
        assert response.json()["code"] == ("token_expired" if label == "expired" else "invalid_token"), label
