"""A ticker for a registration that sent none (API.md "Compatibility with older clients").

The first API had no ``ticker`` (the token's symbol was the name, upper-cased) and some ``/api/v1`` clients omit
it, so one is derived: the name upper-cased, letters and digits only, the first 10. Chosen tickers may repeat (two
agents can pick "AI"), but a derived one is the platform's choice, so it must not silently copy another agent's
symbol: look-alike names ("Nova_Bot", "nova-bot", "NovaBot2000x" vs "NovaBot2000y…") would otherwise get the same
token symbol. Then, and when nothing is left of the name, the answer is a 400 asking for an explicit ``ticker``.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from retake.errors import ValidationFailed
from retake.store.tables import Agent

_NOT_TICKER = re.compile(r"[^A-Z0-9]")
TICKER_LENGTH = 10


def derive_ticker(agent_name: str) -> str:
    ticker = _NOT_TICKER.sub("", agent_name.upper())[:TICKER_LENGTH]
    if not ticker:
        raise ValidationFailed(
            f"ticker is required: agent_name '{agent_name}' has no letters or digits to derive one from; "
            "send a ticker of 1-10 letters or digits",
            code="ticker_required",
        )
    return ticker


async def require_unused(db: AsyncSession, ticker: str, agent_name: str) -> None:
    """Inside the registering transaction. Tickers are stored upper-case, as derived ones are."""
    if await db.scalar(select(Agent.id).where(Agent.ticker == ticker).limit(1)) is not None:
        raise ValidationFailed(
            f"ticker '{ticker}' (derived from agent_name '{agent_name}') is already another agent's; "
            "send a ticker of 1-10 letters or digits",
            code="ticker_taken",
        )
