"""External JWTs (as Privy issues them) checked against a JWKS served by a real local HTTP server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from retake.config import Settings
from retake.errors import UpstreamFailed
from retake.identity.jwks import JwksVerifier
from retake.server.app import create_app
from tests.identity.support import JwksServer, platform_of, row_counts
from tests.support import free_port

AUDIENCE = "app-123"
ISSUER = "privy.io"


class Provider:
    """Signs tokens with ES256 keys whose public halves it publishes on the JWKS server."""

    def __init__(self, server: JwksServer) -> None:
        self.server = server
        self.keys: dict[str, ec.EllipticCurvePrivateKey] = {}

    def add_key(self, kid: str) -> None:
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1())
        jwks = []
        for name, key in self.keys.items():
            jwk: dict[str, Any] = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
            jwks.append({**jwk, "kid": name, "alg": "ES256", "use": "sig"})
        self.server.jwks = {"keys": jwks}

    def token(self, sub: str, kid: str = "k1", key: Any = None, **overrides: Any) -> str:
        now = int(time.time())
        claims = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 3600, **overrides}
        return jwt.encode(claims, key or self.keys[kid], algorithm="ES256", headers={"kid": kid})


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    with server.running():
        yield server


@pytest.fixture
def provider(jwks_server: JwksServer) -> Provider:
    provider = Provider(jwks_server)
    provider.add_key("k1")
    return provider


@pytest.fixture
async def ext_client(
    settings_factory: Callable[..., Settings], jwks_server: JwksServer
) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_factory(jwks_url=jwks_server.url, jwks_audience=AUDIENCE, jwks_issuer=ISSUER)
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_external_subject_becomes_one_platform_user(ext_client: httpx.AsyncClient, provider: Provider) -> None:
    before = await row_counts(ext_client)
    first = await ext_client.get("/api/v1/users/me", headers=bearer(provider.token("did:privy:abc")))
    assert first.status_code == 200, first.text
    assert first.json()["kind"] == "external" and first.json()["username"].startswith("viewer-")
    second = await ext_client.get("/api/v1/users/me", headers=bearer(provider.token("did:privy:abc")))
    assert second.json()["user_id"] == first.json()["user_id"]
    after = await row_counts(ext_client)
    assert after["users"] == before["users"] + 1 and after["identity_links"] == before["identity_links"] + 1
    # External users use every JWT route, e.g. a profile edit.
    bio = await ext_client.patch(
        "/api/v1/users/me/bio", json={"bio": "hi"}, headers=bearer(provider.token("did:privy:abc"))
    )
    assert bio.status_code == 200 and bio.json()["bio"] == "hi"
    # Platform tokens keep working beside external ones.
    guest = (await ext_client.post("/api/v1/auth/guest", json={})).json()
    assert (await ext_client.get("/api/v1/users/me", headers=bearer(guest["token"]))).status_code == 200


async def test_bad_external_tokens_are_401(ext_client: httpx.AsyncClient, provider: Provider) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    bad = {
        "wrong audience": provider.token("did:privy:x", aud="other-app"),
        "wrong issuer": provider.token("did:privy:x", iss="evil.example"),
        "expired": provider.token("did:privy:x", iat=now - 7200, exp=now - 3600),
        "foreign key, known kid": provider.token("did:privy:x", key=stranger),
        "unknown kid": provider.token("did:privy:x", kid="nope", key=stranger),
        "alg none": jwt.encode(
            {"sub": "did:privy:x", "aud": AUDIENCE, "iss": ISSUER, "exp": now + 60}, None, algorithm="none"
        ),
        "no subject": provider.token("", aud=AUDIENCE),
        "unstorable subject": provider.token("did:\x00"),
    }
    before = await row_counts(ext_client)
    for label, token in bad.items():
        response = await ext_client.get("/api/v1/users/me", headers=bearer(token))
        assert response.status_code == 401, label
        assert response.json()["code"] in {"invalid_token", "token_expired"}, label
    assert await row_counts(ext_client) == before


async def test_provider_key_rotation_is_picked_up(ext_client: httpx.AsyncClient, provider: Provider) -> None:
    assert (await ext_client.get("/api/v1/users/me", headers=bearer(provider.token("did:privy:r")))).status_code == 200
    external = platform_of(ext_client).identity.external
    assert external is not None and provider.server.hits == 1
    provider.add_key("k2")
    rotated = provider.token("did:privy:r", kid="k2")
    # Within the refetch interval an unknown kid does not reach the provider (no request flood)...
    assert (await ext_client.get("/api/v1/users/me", headers=bearer(rotated))).status_code == 401
    assert provider.server.hits == 1
    # ...after it, the new key set is fetched and the token accepted.
    started = time.monotonic()
    external.clock = lambda: started + 31
    assert (await ext_client.get("/api/v1/users/me", headers=bearer(rotated))).status_code == 200
    assert provider.server.hits == 2


async def test_unreachable_jwks_is_502_not_500() -> None:
    verifier = JwksVerifier(f"http://127.0.0.1:{free_port()}/jwks", timeout=2)
    token = jwt.encode({"sub": "x"}, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": "a"})
    with pytest.raises(UpstreamFailed) as caught:
        await verifier.verify(token)
    assert caught.value.status == 502 and caught.value.code == "jwks_unavailable"
