"""Destination stream keys at rest: AES-256-GCM with a node key in ``<data-dir>/keys/restream.key`` (0600).

A key must be given back to the destination as is, so it cannot be hashed like an access token; it is
encrypted instead, with the restream's id as associated data (a ciphertext copied onto another row does not
decrypt). Every node of a deployment shares the data folder's keys, as it does for JWT signing keys.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE: Final = "restream.key"
_NONCE: Final = 12


def _write_private_file(path: Path, data: bytes) -> None:
    """Owner-only, written whole under a temporary name (as identity/jwt_keys.py keeps its keys), and linked
    into place only if no other process (a sibling worker) made the file first: every worker reads one key."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


class KeyBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the restream key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def load_or_create(cls, folder: Path) -> KeyBox:
        """The node key in ``folder``, created (owner-only) on first use."""
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / KEY_FILE
        if not path.exists():
            _write_private_file(path, base64.b64encode(AESGCM.generate_key(bit_length=256)))
        return cls(base64.b64decode(path.read_bytes().strip()))

    def seal(self, secret: str, context: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, secret.encode(), context.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        """The secret, or ``ValueError`` if the data was not sealed by this key for ``context``."""
        raw = base64.b64decode(sealed)
        try:
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode()).decode()
        except InvalidTag:
            raise ValueError("the stored key cannot be decrypted with this node's restream key") from None
