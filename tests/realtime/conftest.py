"""One real ``retake serve`` process shared by the Socket.IO tests of this folder (a start takes seconds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Server, start_server, stop_server
from tests.support import FakeOEmbed

# Operator actions are polled every 0.2 s here instead of 2 s, so the CLI tests do not wait.
FAST_OPERATOR = {"RETAKE_OPERATOR_POLL_SECONDS": "0.2"}


@pytest.fixture(scope="package")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    fake = FakeOEmbed()
    with fake.running():
        # The faucet lets a test viewer buy a token, so a real trade can be announced over the socket.
        server = start_server(tmp_path_factory.mktemp("node"), fake.url, RETAKE_ENABLE_AIRDROP="true", **FAST_OPERATOR)
        yield server
        stop_server(server)
    assert "Traceback" not in server.log(), server.log()[-4000:]
