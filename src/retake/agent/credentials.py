"""Credentials as the skill keeps them: ``~/.config/retake/credentials.json``, mode 600, with
``RETAKE_ACCESS_TOKEN`` taking precedence over the file's token.

Besides the skill's fields the file stores ``base_url``: the platform that issued the token. The clients
refuse to send the token anywhere else (see ``client.py``), so a typo in ``--base-url`` or a hostile
``RETAKE_BASE_URL`` cannot leak it. ``RETAKE_CREDENTIALS`` moves the file (tests, several agents on one
machine); small state files (the last skill version seen, the heartbeat's cursor) live beside it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from retake.agent.errors import CredentialsError

ENV_CREDENTIALS = "RETAKE_CREDENTIALS"
ENV_ACCESS_TOKEN = "RETAKE_ACCESS_TOKEN"
ENV_BASE_URL = "RETAKE_BASE_URL"
DEFAULT_PATH = "~/.config/retake/credentials.json"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"  # `retake serve` on this machine


@dataclass(frozen=True)
class Credentials:
    access_token: str
    base_url: str = ""
    agent_name: str = ""
    agent_id: str = ""
    userDbId: str = ""
    wallet_address: str = ""
    ticker: str = ""
    token_address: str = ""
    token_ticker: str = ""
    # True when the token came from RETAKE_ACCESS_TOKEN rather than the file (never written out).
    token_from_env: bool = False

    def to_json(self) -> dict[str, str]:
        data = asdict(self)
        data.pop("token_from_env")
        return data

    def with_updates(self, **changes: str) -> Credentials:
        return replace(self, **changes)  # type: ignore[arg-type]  # only str fields are passed


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get(ENV_CREDENTIALS) or DEFAULT_PATH).expanduser()


def state_path(name: str, env: Mapping[str, str] | None = None) -> Path:
    """A state file next to the credentials (``skill-version.json``, ``heartbeat.json``, …)."""
    return credentials_path(env).with_name(name)


def read_credentials_file(path: Path) -> Credentials | None:
    """The file as stored (no environment override); ``None`` when there is no file."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CredentialsError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise CredentialsError(f"{path} must hold a JSON object")
    known = {f.name for f in fields(Credentials)} - {"token_from_env"}
    values: dict[str, Any] = {k: str(v) for k, v in data.items() if k in known and v is not None}
    values.setdefault("access_token", "")
    return Credentials(**values)


def load_credentials(path: Path | None = None, env: Mapping[str, str] | None = None) -> Credentials | None:
    """The agent's credentials: the file's fields with ``RETAKE_ACCESS_TOKEN`` over its token. ``None`` when
    there is neither a file nor the variable."""
    env = os.environ if env is None else env
    path = path or credentials_path(env)
    stored = read_credentials_file(path)
    env_token = env.get(ENV_ACCESS_TOKEN, "").strip()
    if env_token:
        base = stored if stored is not None else Credentials(access_token="")
        return replace(base, access_token=env_token, token_from_env=True)
    if stored is None or not stored.access_token:
        return None
    return stored


def save_credentials(creds: Credentials, path: Path | None = None) -> Path:
    """Write atomically with mode 600 (directory 700); a token that came from the environment is not written
    to disk, the file's own token is kept instead."""
    path = path or credentials_path()
    data: dict[str, Any] = creds.to_json()
    if creds.token_from_env:
        stored = read_credentials_file(path)
        data["access_token"] = stored.access_token if stored else ""
    write_private_json(path, data)
    return path


def write_private_json(path: Path, data: Any) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkstemp creates the file 600 from the start: the token is never readable by others, not even briefly.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_json(path: Path) -> dict[str, Any]:
    """A small state file, or ``{}`` when it is missing or unreadable (state is a cache, never required)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def loose_permissions(path: Path) -> bool:
    """True when group or others may read the file (the skill asks for ``chmod 600``)."""
    try:
        return bool(path.stat().st_mode & 0o077)
    except OSError:
        return False


def resolve_base_url(flag: str | None, creds: Credentials | None, env: Mapping[str, str] | None = None) -> str:
    """``--base-url``, then ``RETAKE_BASE_URL``, then the credentials file, then this machine's server."""
    env = os.environ if env is None else env
    for candidate in (flag, env.get(ENV_BASE_URL), creds.base_url if creds else None):
        if candidate and candidate.strip():
            return normalize_base_url(candidate)
    return DEFAULT_BASE_URL


def normalize_base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if url.endswith("/api/v1"):  # people paste the API base; the site root is what we keep
        url = url[: -len("/api/v1")]
    if not url.startswith(("http://", "https://")):
        raise CredentialsError(f"base URL must start with http:// or https:// (got {url!r})")
    return url
