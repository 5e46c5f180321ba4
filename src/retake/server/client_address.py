"""The client address of a request: the one function every per-address decision goes through.

uvicorn's own proxy-header support was on with its default trust (``FORWARDED_ALLOW_IPS``, loopback), so any
local peer could claim any address in ``X-Forwarded-For`` and get a fresh registration and sign-in budget with
each. Now uvicorn's support is off (``server/runner.py``) and ``ClientAddressMiddleware`` puts the resolved
address into ``scope["client"]`` before anything reads it: the rate limits (``api/deps.client_address``), the
per-address in-flight limit, anonymous viewer ids and the access log all see the same address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted(text: str) -> tuple[Network, ...]:
    """``"10.0.0.1, 192.168.0.0/16"`` into networks; a bad entry raises ValueError naming it."""
    found: list[Network] = []
    for part in text.split(","):
        entry = part.strip()
        if not entry:
            continue
        try:
            found.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"RETAKE_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR range") from exc
    return tuple(found)


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(peer: str, forwarded_for: Sequence[str], networks: Sequence[Network]) -> str:
    """The address that sent the request: ``peer`` unless it is a trusted proxy, then the right-most entry of
    the ``X-Forwarded-For`` chain that is not a trusted proxy itself (entries left of it are the client's own
    claims, which anybody can write)."""
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop
    return hops[0] if hops else peer


class ClientAddressMiddleware:
    def __init__(self, app: ASGIApp, trusted: str) -> None:
        self.app = app
        self.networks = parse_trusted(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if self.networks and client and scope["type"] in {"http", "websocket"}:
            forwarded: list[str] = []
            proto = None
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    forwarded.append(value.decode("latin-1"))
                elif name == b"x-forwarded-proto":
                    proto = value.decode("latin-1").split(",")[-1].strip().lower()
            address = client_ip(client[0], forwarded, self.networks)
            if address != client[0]:
                # In place, as uvicorn's proxy support did: its access log reads this same scope.
                scope["client"] = (address, 0)
                if proto in {"http", "https"}:
                    secure = proto == "https"
                    ws = scope["type"] == "websocket"
                    scope["scheme"] = ("wss" if secure else "ws") if ws else proto
        await self.app(scope, receive, send)
