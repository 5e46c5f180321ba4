"""Signing keys of the platform's own JWTs: Ed25519 (JWS ``EdDSA``, RFC 8037), one PEM file per key in
``<data_dir>/keys/``.

Each key has a ``kid`` that sorts by creation time; the newest key signs and every key on disk verifies. Rotation
(``retake admin rotate-jwt-key``) adds a newer key, so tokens signed by the old one keep working until an operator
deletes its file. The folder listing is re-read on every use, so a rotation or removal done by the CLI reaches
running servers without a restart (several nodes sharing the data folder see the same keys).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

log = logging.getLogger(__name__)

Jwk = dict[str, str]  # one public key: kty, crv, x, kid, alg, use (RFC 7517, RFC 8037)


class JwkSet(TypedDict):
    keys: list[Jwk]


ALGORITHM = "EdDSA"
_PREFIX = "jwt-"
_SUFFIX = ".pem"


def new_kid(now: datetime | None = None) -> str:
    # Time first so that lexical order is creation order; the random tail keeps two nodes' keys apart.
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%f")
    return f"{stamp}-{secrets.token_hex(3)}"


def write_private_file(path: Path, data: bytes) -> None:
    """Owner-only file written whole: a reader never sees half a key (the temporary name is not listed)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)


class JwtKeyRing:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._names: tuple[str, ...] = ()
        self._private: dict[str, Ed25519PrivateKey] = {}

    # -- files ---------------------------------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the folder and a first key when there is none (first start)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.kids():
            kid = self.rotate()
            log.info("generated the first JWT signing key %s in %s", kid, self.folder)

    def rotate(self) -> str:
        """Add a new key; it signs from now on. Older keys still verify until their files are removed."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        kid = new_kid()
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_private_file(self.folder / f"{_PREFIX}{kid}{_SUFFIX}", pem)
        self._refresh()
        return kid

    def remove(self, kid: str) -> bool:
        path = self.folder / f"{_PREFIX}{kid}{_SUFFIX}"
        if kid not in self.kids() or not path.exists():
            return False
        path.unlink()
        self._refresh()
        return True

    def _refresh(self) -> None:
        try:
            names = tuple(sorted(n for n in os.listdir(self.folder) if n.startswith(_PREFIX) and n.endswith(_SUFFIX)))
        except FileNotFoundError:
            names = ()
        if names == self._names:
            return
        loaded: dict[str, Ed25519PrivateKey] = {}
        for name in names:
            kid = name[len(_PREFIX) : -len(_SUFFIX)]
            key = self._private.get(kid)
            if key is None:
                try:
                    parsed = serialization.load_pem_private_key((self.folder / name).read_bytes(), password=None)
                except (OSError, ValueError) as exc:  # a half-deleted or foreign file must not stop sign-ins
                    log.warning("skipping unreadable JWT key file %s: %s", name, type(exc).__name__)
                    continue
                if not isinstance(parsed, Ed25519PrivateKey):
                    log.warning("skipping JWT key file %s: not an Ed25519 key", name)
                    continue
                key = parsed
            loaded[kid] = key
        self._names = names
        self._private = loaded

    # -- use -----------------------------------------------------------------------------------------------

    def kids(self) -> list[str]:
        """Key ids, oldest first; the last one signs."""
        self._refresh()
        return list(self._private)

    def signing_kid(self) -> str:
        kids = self.kids()
        if not kids:
            raise RuntimeError(f"no JWT signing key in {self.folder}; the server creates one at start")
        return kids[-1]

    def sign(self, claims: Mapping[str, str | int]) -> str:
        kid = self.signing_kid()
        return jwt.encode(dict(claims), self._private[kid], algorithm=ALGORITHM, headers={"kid": kid})

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        self._refresh()
        key = self._private.get(kid)
        return key.public_key() if key is not None else None

    def jwks(self) -> JwkSet:
        """The public half of every key, as a JWK Set (RFC 7517) other services can verify our tokens with."""
        keys: list[Jwk] = []
        for kid in self.kids():
            jwk = OKPAlgorithm.to_jwk(self._private[kid].public_key(), as_dict=True)
            keys.append(
                {**{name: str(value) for name, value in jwk.items()}, "kid": kid, "alg": ALGORITHM, "use": "sig"}
            )
        return {"keys": keys}
