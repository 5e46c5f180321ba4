"""Small interfaces the chat service calls out through: the moderation gate and the ledger's transaction lookup.

They follow ``streams/ports.py``: the service names what it needs, the platform assembly passes the real
implementation to its constructor (``server/platform.py``), and chat imports nothing of moderation's users or the
ledger.
"""

from __future__ import annotations

from typing import Literal, Protocol, TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

TransactionKind = Literal["tip", "trade"]


class TipData(TypedDict):
    """``tip_data`` of a ``tip`` chat message, as stored with it (API.md Socket.IO); ``amount`` is in SOL."""

    receiver_id: str
    amount: float
    lamports: str
    amount_usd: float
    tx_hash: str


class TradeData(TypedDict):
    """``trade_data`` of a ``trade`` chat message, as stored with it (API.md Socket.IO: ``{amount, type, tx_hash}``
    and a few more)."""

    amount: float
    type: str
    tx_hash: str
    token_address: str
    token_ticker: str
    amount_tokens: float
    amount_usd: float


TransactionNote = TipData | TradeData


class SendGate(Protocol):
    """Implemented by moderation: raise ``Forbidden`` (code ``muted``) when ``sender_id`` may not write into
    ``streamer_id``'s chat. Called inside the sending transaction, before the message counts against the rate
    limit, so a refused message is neither stored nor billed."""

    async def check_send(self, db: AsyncSession, streamer_id: str, sender_id: str) -> None: ...


class TransactionLedger(Protocol):
    """Implemented by the ledger: confirm that ``tx_hash`` is a tip or trade record made by ``sender_id``
    (for a tip: received by ``streamer_id``) that has not been announced in chat yet, and return the
    ``tip_data``/``trade_data`` to store and broadcast. ``None`` refuses the announcement."""

    async def confirm(
        self, kind: TransactionKind, tx_hash: str, sender_id: str, streamer_id: str
    ) -> TransactionNote | None: ...
