"""Which addresses webhooks may reach, checked where the connection is made (the resolver), not only at PUT."""

from __future__ import annotations

from typing import Any, cast

import pytest

from retake.webhooks.outbox import Claimed
from retake.webhooks.targets import is_public
from retake.webhooks.worker import DeliveryWorker
from tests.webhooks.receiver import Receiver


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
        ("224.0.0.1", False),
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert is_public(address) is public


def _claimed(url: str) -> Claimed:
    return Claimed(1, 1, "u", "evt_x", "ping", "{}", 1, url, "whsec_x")


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_delivery_time_refusal(receiver: Receiver, host: str) -> None:
    """A name that resolves to loopback (or a loopback literal) is refused when sending, so a webhook whose DNS
    changed after the PUT still cannot reach the operator's network."""
    worker = DeliveryWorker(cast(Any, None), allow_private=False)
    worker.start()
    try:
        outcome = await worker.send(_claimed(f"http://{host}:{receiver.port}/hook"))
    finally:
        await worker.stop()
    assert outcome.status_code is None and outcome.error and "private" in outcome.error
    assert receiver.received == []
    allowed = DeliveryWorker(cast(Any, None), allow_private=True)
    allowed.start()
    try:
        outcome = await allowed.send(_claimed(f"http://{host}:{receiver.port}/hook"))
    finally:
        await allowed.stop()
    assert outcome.status_code == 200 and len(receiver.received) == 1


async def test_redirects_are_not_followed_and_are_final(receiver: Receiver) -> None:
    receiver.status = 302
    worker = DeliveryWorker(cast(Any, None), allow_private=True)
    worker.start()
    try:
        outcome = await worker.send(_claimed(receiver.url))
    finally:
        await worker.stop()
    assert outcome.status_code == 302 and not outcome.ok and not outcome.retryable
    assert len(receiver.received) == 1
