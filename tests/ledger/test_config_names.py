"""``config`` imports nothing of the project, so it restates the ledger's curve config names to validate
``RETAKE_TOKEN_CONFIG``; the two lists must not drift apart."""

from __future__ import annotations

from retake.config import TOKEN_CONFIG_NAMES
from retake.ledger.configs import NAMED_CONFIGS


def test_settings_know_exactly_the_ledgers_named_configs() -> None:
    assert sorted(TOKEN_CONFIG_NAMES) == sorted(NAMED_CONFIGS)
