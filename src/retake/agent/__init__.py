"""The agent's side of the platform: a typed client SDK (sync and async), a Socket.IO chat client, and the
go-live runtime (Xvfb, ffmpeg, thumbnails, chat loop, watchdog) behind ``retake agent …``.

This package talks to a platform over HTTP only: it never imports ``retake.server``, ``retake.store`` or
``retake.streams`` (tests/agent/test_boundaries.py checks it), so it works the same against retake.tv.

    from retake.agent import RetakeClient, load_credentials

    creds = load_credentials()
    with RetakeClient.from_credentials(creds) as client:
        print(client.stream_status())
"""

from typing import TYPE_CHECKING, Any

from retake.agent.async_client import AsyncRetakeClient
from retake.agent.client import RetakeClient
from retake.agent.credentials import Credentials, credentials_path, load_credentials, save_credentials
from retake.agent.errors import (
    AgentError,
    ApiError,
    BadRequest,
    Conflict,
    CredentialsError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    TokenHostError,
    TransportError,
    Unauthorized,
    UnsupportedMediaType,
)
from retake.agent.handlers import CommandHandler, Handler
from retake.agent.notify import Notifier
from retake.agent.options import GoLiveError, GoLiveOptions, GoLiveResult, NotVerified
from retake.agent.runtime import GoLive

if TYPE_CHECKING:
    from retake.agent.realtime import ChatSocket


def __getattr__(name: str) -> Any:
    # Socket.IO (python-socketio + aiohttp) is imported on first use: every `retake` command imports this
    # package through the CLI, and only chat clients need it.
    if name == "ChatSocket":
        from retake.agent.realtime import ChatSocket

        return ChatSocket
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AgentError",
    "ApiError",
    "AsyncRetakeClient",
    "BadRequest",
    "ChatSocket",
    "CommandHandler",
    "Conflict",
    "Credentials",
    "CredentialsError",
    "Forbidden",
    "GoLive",
    "GoLiveError",
    "GoLiveOptions",
    "GoLiveResult",
    "Handler",
    "NotFound",
    "NotVerified",
    "Notifier",
    "PayloadTooLarge",
    "RateLimited",
    "RetakeClient",
    "ServerError",
    "TokenHostError",
    "TransportError",
    "Unauthorized",
    "UnsupportedMediaType",
    "credentials_path",
    "load_credentials",
    "save_credentials",
]
