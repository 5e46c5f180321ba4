"""The agent's token as the stream lifecycle hands it out: a leaf both sides import.

The ledger makes it (``ledger.records.token_info``) and the lifecycle returns it from ``stream/start`` through
its ``TokenLauncher`` port (``streams/ports.py``); living here, neither package imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TokenInfo:
    name: str
    ticker: str
    image_url: str
    token_address: str
    token_type: str
    pool_address: str
