"""Push tests: the app runs with fast retries and private webhook targets allowed (the receiver is local)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager

from retake.config import Settings
from retake.server.app import create_app
from tests.webhooks.receiver import Receiver

FAST_PUSH = {
    "webhook_allow_private": True,
    "webhook_backoff_base_seconds": 0.2,
    "webhook_backoff_max_seconds": 1.0,
    "webhook_poll_seconds": 0.5,
    "webhook_lease_seconds": 6.0,
}


@pytest.fixture
async def client(settings_factory: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    """Overrides the root ``client``: the same app, with FAST_PUSH settings (``register`` uses it)."""
    app = create_app(settings_factory(**FAST_PUSH))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    if r.hold is not None:
        r.hold.set()
    await r.stop()
