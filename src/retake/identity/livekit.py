"""Viewer tokens in LiveKit's JWT format for ``GET /sessions/:id/join/``.

With ``RETAKE_LIVEKIT_API_KEY``/``_SECRET`` set they are signed for that LiveKit deployment; otherwise the
platform generates its own key and secret once into ``<data_dir>/keys/livekit.json`` so tokens stay valid across
restarts (and a LiveKit server can later be configured with that same pair).
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from livekit.api import AccessToken, VideoGrants

from retake.identity.jwt_keys import write_private_file

log = logging.getLogger(__name__)

VIEWER_TTL = timedelta(hours=6)


@dataclass(frozen=True)
class LiveKitCredentials:
    api_key: str
    api_secret: str
    url: str


def load_or_create_credentials(folder: Path) -> tuple[str, str]:
    path = folder / "livekit.json"
    if path.exists():
        data = json.loads(path.read_text())
        return str(data["api_key"]), str(data["api_secret"])
    folder.mkdir(parents=True, exist_ok=True)
    pair = {"api_key": "API" + secrets.token_urlsafe(9), "api_secret": secrets.token_urlsafe(32)}
    write_private_file(path, json.dumps(pair).encode())
    log.info("generated a platform LiveKit API key %s in %s", pair["api_key"], path)
    return pair["api_key"], pair["api_secret"]


class LiveKitIssuer:
    def __init__(self, credentials: LiveKitCredentials) -> None:
        self.credentials = credentials

    @classmethod
    def from_settings(cls, api_key: str | None, api_secret: str | None, url: str | None, keys: Path) -> LiveKitIssuer:
        if api_key and api_secret:
            return cls(LiveKitCredentials(api_key, api_secret, url or ""))
        key, secret = load_or_create_credentials(keys)
        return cls(LiveKitCredentials(key, secret, url or ""))

    def viewer_token(self, room: str, identity: str, name: str) -> str:
        """Watch-only: may subscribe, may not publish media or data."""
        grants = VideoGrants(room_join=True, room=room, can_subscribe=True, can_publish=False, can_publish_data=False)
        token = (
            AccessToken(self.credentials.api_key, self.credentials.api_secret)
            .with_identity(identity)
            .with_name(name)
            .with_grants(grants)
            .with_ttl(VIEWER_TTL)
        )
        return token.to_jwt()
