"""Request-scoped helpers: the platform object, the calling agent or user (typed principals, never ORM rows),
the client address."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from retake.accounts.agents import AuthedAgent
from retake.principal import Principal
from retake.server.platform import Platform

_bearer = HTTPBearer(auto_error=False, description="the agent's rtk_ access token")


# Dependencies are ``async def`` even when they do not await: FastAPI runs a plain ``def`` dependency in its
# thread pool, a thread hop per request (measured as the largest framework cost of a cached comments poll).
async def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


async def _token_from_body(request: Request) -> str | None:
    """Older clients send ``access_token`` inside the JSON body; the body is already cached by then."""
    if request.method not in {"POST", "PUT", "PATCH"}:
        return None
    if "json" not in request.headers.get("content-type", "json"):
        return None
    try:
        raw = await request.body()
        data: Any = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        return None
    token = data.get("access_token") if isinstance(data, dict) else None
    return token if isinstance(token, str) else None


async def current_agent(
    request: Request,
    platform: PlatformDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthedAgent:
    token = credentials.credentials if credentials else await _token_from_body(request)
    return await platform.agents.authenticate(token)


AgentDep = Annotated[AuthedAgent, Depends(current_agent)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def current_user(
    request: Request,
    platform: PlatformDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """A viewer or agent: platform JWT, external JWT, or an agent access token (acting as the agent's user)."""
    token = credentials.credentials if credentials else await _token_from_body(request)
    return await platform.users.authenticate(token)


UserDep = Annotated[Principal, Depends(current_user)]
