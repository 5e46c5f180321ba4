"""Which webhook URLs the platform may call.

A webhook URL is chosen by an agent, so without a guard the server could be made to POST into the operator's
own network. Loopback, private, link-local and other non-global addresses are refused unless the operator
allows them (``RETAKE_WEBHOOK_ALLOW_PRIVATE=1``). The check runs at registration and again at each delivery in
the HTTP client's resolver (:class:`GuardedResolver`), which checks every address a name resolves to and then
connects only to those addresses, so a name that later resolves elsewhere (DNS rebinding) is still refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from retake.errors import ValidationFailed

MAX_URL = 2000


class RefusedTarget(OSError):
    """The URL's host is (or resolves to) an address webhooks may not reach."""


def check_url_shape(url: Any) -> str:
    if not isinstance(url, str) or not 1 <= len(url) <= MAX_URL:
        raise ValidationFailed(f"url must be an http(s) URL of at most {MAX_URL} characters", code="invalid_url")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationFailed("url must be an absolute http:// or https:// URL", code="invalid_url")
    if parts.username or parts.password:
        raise ValidationFailed("url must not carry credentials", code="invalid_url")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ValidationFailed("url has an invalid port", code="invalid_url") from exc
    return url


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_address(address: str, allow_private: bool) -> None:
    if not allow_private and not is_public(address):
        raise RefusedTarget(f"webhook target {address} is a loopback, private or link-local address")


async def check_host(host: str, port: int, allow_private: bool) -> None:
    """Resolve ``host`` and refuse it if any of its addresses is not public (at registration)."""
    if allow_private:
        return
    try:
        check_address(host, allow_private)
        return
    except ValueError:
        pass  # not an IP literal: resolve it
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValidationFailed(f"url host '{host}' does not resolve", code="invalid_url") from exc
    for info in infos:
        check_address(str(info[4][0]), allow_private)


async def check_target(url: str, allow_private: bool) -> None:
    parts = urlsplit(check_url_shape(url))
    host = parts.hostname or ""
    try:
        await check_host(host, parts.port or (443 if parts.scheme == "https" else 80), allow_private)
    except RefusedTarget as exc:
        raise ValidationFailed(
            f"url must not point at a loopback, private or link-local address ({exc})", code="private_url"
        ) from exc


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that refuses names resolving to any non-public address (IP literals never reach a
    resolver; the worker checks those with :func:`check_address` before connecting)."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = DefaultResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            check_address(result["host"], self._allow_private)
        return results

    async def close(self) -> None:
        await self._inner.close()
