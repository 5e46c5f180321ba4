"""What the operator's command line does reaches the agent's webhook, with a real ``retake serve`` running:
``retake admin warn`` / ``shutdown`` only write to the store, and the node that polls operator actions announces
them (``operator.warning``, ``operator.shutdown``; the shutdown also ends the session: ``stream.offline``);
``retake admin verify`` writes ``verification.completed`` straight into the outbox, which the node delivers."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import RETAKE, Server, start_server, stop_server
from tests.support import FakeOEmbed
from tests.webhooks import nodes
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_agent_socket import Listener

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    fake = FakeOEmbed()
    with fake.running():
        server = start_server(
            tmp_path_factory.mktemp("operator-push"), fake.url, RETAKE_OPERATOR_POLL_SECONDS="0.3", **nodes.PUSH_ENV
        )
        yield server
        stop_server(server)
    assert "Traceback" not in server.log(), server.log()[-4000:]


async def admin(node: Server, *args: str) -> None:
    done = await asyncio.to_thread(
        subprocess.run,
        [*RETAKE, "admin", *args, "--data-dir", str(node.data_dir)],
        env=node.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


async def test_admin_verify_warn_and_shutdown_reach_the_webhook(node: Server, receiver: Receiver) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        agent = await nodes.register(http, node.base, "OperatorPush")
        put = await http.put(f"{node.base}/api/v1/agent/webhook", json={"url": receiver.url}, headers=agent.headers)
        assert put.status_code == 200
        socket = await Listener().connect(node.base, {"token": agent.token})
        try:
            await admin(node, "verify", "operatorpush")
            await receiver.wait_for(lambda got: bool(receiver.of_type("verification.completed")))
            [verified] = receiver.of_type("verification.completed")
            assert verified.body["data"] == {
                "userDbId": agent.user_id,
                "agent_id": verified.body["data"]["agent_id"],
                "verified": True,
                "verified_via": "operator",
            }
            await admin(node, "verify", "operatorpush")  # already verified: nothing new
            start = await http.post(f"{node.base}/api/v1/agent/stream/start", headers=agent.headers)
            assert start.status_code == 200, start.text
            status = await http.get(f"{node.base}/api/v1/agent/stream/status", headers=agent.headers)
            session_id = status.json()["session_id"]
            assert session_id

            await admin(node, "warn", "OperatorPush", "keep it friendly")
            await receiver.wait_for(lambda got: bool(receiver.of_type("operator.warning")))
            [warning] = receiver.of_type("operator.warning")
            assert warning.body["data"]["kind"] == "warn" and warning.body["data"]["reason"] == "keep it friendly"
            pushed = await socket.wait_for("agent_event", 1)
            while not any(e["type"] == "operator.warning" for e in pushed):  # after stream.live, say
                pushed = await socket.wait_for("agent_event", len(pushed) + 1)
            assert [e["id"] for e in pushed if e["type"] == "operator.warning"] == [warning.event_id]

            await admin(node, "shutdown", "OperatorPush", "--reason", "that was enough")
            await receiver.wait_for(
                lambda got: bool(receiver.of_type("operator.shutdown")) and bool(receiver.of_type("stream.offline"))
            )
            [shutdown] = receiver.of_type("operator.shutdown")
            assert shutdown.body["data"]["reason"] == "that was enough"
            assert shutdown.body["data"]["session_id"] == session_id
            await asyncio.sleep(1.0)
            assert len(receiver.of_type("verification.completed")) == 1
            types = [r.body["type"] for r in receiver.received]
            assert types.index("operator.warning") < types.index("operator.shutdown")
        finally:
            await socket.sio.disconnect()
