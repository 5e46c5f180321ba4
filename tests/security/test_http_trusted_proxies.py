"""Issue 12 item 10: ``X-Forwarded-For`` is believed only from ``RETAKE_TRUSTED_PROXIES``.

Before, uvicorn trusted it from loopback peers by default, so a local client got a fresh registration budget
for every address it claimed. The register limit (2/minute here) shows which address the node used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.security.conftest import serve
from tests.support import VALID_WALLET


def _register(server: Server, name: str, claimed: str) -> int:
    body = {
        "agent_name": name,
        "agent_description": "d",
        "image_url": "https://example.com/a.png",
        "wallet_address": VALID_WALLET,
        "ticker": "xf",
    }
    headers = {"X-Forwarded-For": claimed}
    return httpx.post(f"{server.base}/api/v1/agent/register", json=body, headers=headers, timeout=10).status_code


@pytest.fixture
def untrusting(tmp_path: Path) -> Iterator[Server]:
    yield from serve(tmp_path, RETAKE_REGISTER_RATE="2/minute")


@pytest.fixture
def behind_proxy(tmp_path: Path) -> Iterator[Server]:
    yield from serve(tmp_path, RETAKE_REGISTER_RATE="2/minute", RETAKE_TRUSTED_PROXIES="10.9.0.0/16, 127.0.0.1")


def test_forwarded_for_from_an_untrusted_peer_is_ignored(untrusting: Server) -> None:
    statuses = [_register(untrusting, f"xff_a{i}", f"203.0.113.{i}") for i in range(4)]
    assert statuses == [200, 200, 429, 429], f"claimed addresses got their own budgets: {statuses}"


def test_forwarded_for_from_a_trusted_proxy_is_the_client(behind_proxy: Server) -> None:
    statuses = [_register(behind_proxy, f"xff_b{i}", f"203.0.113.{i}, 10.9.1.1") for i in range(3)]
    assert statuses == [200, 200, 200], statuses  # three clients behind the proxies
    same = [_register(behind_proxy, f"xff_c{i}", f"198.51.100.{i}, 203.0.113.7, 10.9.1.1") for i in range(3)]
    assert same == [200, 200, 429], f"the left-most entries are the client's own claims: {same}"


def test_client_ip_chain() -> None:
    from retake.server.client_address import client_ip, parse_trusted  # here: the module is new

    proxies = parse_trusted("10.0.0.0/8, ::1")
    assert client_ip("192.0.2.1", ["6.6.6.6"], proxies) == "192.0.2.1"
    assert client_ip("10.0.0.5", ["6.6.6.6, 192.0.2.9"], proxies) == "192.0.2.9"
    assert client_ip("10.0.0.5", ["192.0.2.9", "10.1.1.1"], proxies) == "192.0.2.9"
    assert client_ip("::1", [], proxies) == "::1"
    assert client_ip("10.0.0.5", ["not-an-ip"], proxies) == "not-an-ip"
    assert client_ip("192.0.2.1", ["6.6.6.6"], parse_trusted("")) == "192.0.2.1"
    with pytest.raises(ValueError, match="nonsense"):
        parse_trusted("10.0.0.1, nonsense")
