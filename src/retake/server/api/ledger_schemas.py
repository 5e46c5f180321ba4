"""Request and response bodies of the ledger endpoints (tokens, trades, wallet, tips).

Raw on-chain quantities (atoms, lamports, sqrt prices) are strings of digits; human values are numbers: ``*_sol``
in SOL, unsuffixed money in USD at ``RETAKE_SOL_PRICE_USD`` (API.md "Tokens, trades and tips")."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, WithJsonSchema

from retake.server.api.schemas import ERRORS, ErrorBody, Lenient

LEDGER_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    403: {"model": ErrorBody, "description": "not allowed (airdrops disabled, muted in that chat)"},
}

DIGITS = r"^[0-9]{1,20}$"
# A JSON integer or a digit string. The service parses it, so every malformed amount gets the same 400
# ``invalid_amount``; the pattern is for the documentation.
RawAmount = StrictInt | Annotated[StrictStr, WithJsonSchema({"type": "string", "pattern": DIGITS})]
Side = Literal["buy", "sell"]
Mode = Literal["exact_in", "partial_fill", "exact_out"]


class Windowed(BaseModel):
    """``{"total", "24h"}``."""

    model_config = ConfigDict(populate_by_name=True)

    total: float
    day: float = Field(alias="24h")


class Counts(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    total: int
    day: int = Field(alias="24h")


class Growth(BaseModel):
    """Fractional price change over each window (0.25 = +25 %)."""

    model_config = ConfigDict(populate_by_name=True)

    hour: float = Field(alias="1h")
    six_hours: float = Field(alias="6h")
    day: float = Field(alias="24h")


class Fees(BaseModel):
    total: str
    trading: str
    protocol: str
    creator: str
    partner: str
    referral: str


class QuoteOut(BaseModel):
    side: str
    mode: str
    amount_in: str = Field(description="what the trader pays, fee included when the fee is on the input")
    amount_in_excluding_fee: str
    amount_out: str
    amount_left: str = Field(description="unused input of a partial fill (kept by the trader)")
    fee: Fees
    fee_token: str = Field(description="quote (SOL) or base (the token)")
    next_sqrt_price: str
    price_sol_after: float
    price_usd_after: float
    completes_curve: bool


class SwapIn(Lenient):
    side: Side
    amount: RawAmount = Field(description="input (exact_in, partial_fill) or wanted output (exact_out), as digits")
    mode: Mode = "exact_in"
    min_out: RawAmount | None = Field(default=None, description="refuse (409) if the output would be smaller")
    max_in: RawAmount | None = Field(default=None, description="refuse (409) if the input would be larger")


class TradeOut(BaseModel):
    id: str
    tx_hash: str = Field(description="base58, 64 bytes")
    token_address: str
    token_ticker: str
    token_name: str
    pool_address: str
    user_id: str
    trader_address: str
    buyer_address: str
    seller_address: str
    is_buy: bool
    side: str
    mode: str
    amount_in: str = Field(description="paid by the trader: lamports for a buy, token atoms for a sell")
    amount_out: str = Field(description="received by the trader: token atoms for a buy, lamports for a sell")
    amount_left: str
    sol_lamports: str = Field(description="quote volume of the trade (token-curve.md §8)")
    token_atoms: str
    amount_sol: float
    amount_tokens: float
    amount_in_usd: float
    fee: Fees
    fee_token: str
    sqrt_price_after: str
    price_sol: float
    price_usd: float
    market_cap_sol: float
    market_cap_usd: float
    quote_reserve_after: str
    bonding_progress: float
    completed: bool = Field(description="this trade completed the bonding curve (the pool graduated)")
    timestamp: str


class TradesPage(BaseModel):
    trades: list[TradeOut]
    next_cursor: str | None


class TopToken(BaseModel):
    user_id: str
    name: str
    ticker: str
    address: str
    current_market_cap: float
    market_cap_sol: float
    graduated: bool
    rank: int


class TrendingToken(BaseModel):
    user_id: str
    username: str
    ticker: str
    token_ticker: str
    address: str
    growth_24h: float
    market_cap: float
    market_cap_sol: float


class PoolOut(BaseModel):
    config: str
    sqrt_price: str
    base_reserve: str
    quote_reserve: str
    migration_quote_threshold: str
    protocol_quote_fee: str
    partner_quote_fee: str
    creator_quote_fee: str
    protocol_base_fee: str
    partner_base_fee: str
    creator_base_fee: str


class TokenStats(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    address: str
    pool_address: str
    user_id: str
    name: str
    ticker: str
    current_price: float = Field(description="USD per whole token")
    price_sol: float
    market_cap: float = Field(description="USD: price × total supply")
    current_market_cap: float
    market_cap_sol: float
    all_time_high: float = Field(description="highest USD price after any trade")
    all_time_high_sol: float
    growth: Growth
    volume: Windowed = Field(description="traded SOL (token-curve.md §8 quote volume), in USD")
    volume_sol: Windowed
    trade_count: Counts
    earnings: Windowed = Field(description="the creator's share of trading fees")
    earnings_sol: Windowed
    bonding_progress: float = Field(description="quote reserve / migration threshold, 0..1")
    graduated: bool
    pool: PoolOut
    created_at: str | None


class TokenActivity(BaseModel):
    rank: int
    address: str
    token_address: str
    user_id: str
    username: str
    name: str
    ticker: str
    volume: float
    volume_sol: float
    volume_lamports: str
    trade_count: int
    buy_count: int
    sell_count: int
    market_cap: float
    market_cap_sol: float


class WalletToken(BaseModel):
    address: str
    ticker: str
    name: str
    amount: str = Field(description="token atoms")
    amount_tokens: float
    value_sol: float
    value_usd: float


class WalletOut(BaseModel):
    user_id: str
    wallet_address: str
    custodial: bool = Field(description="the address was generated by the platform (no wallet on the profile)")
    sol: str = Field(description="lamports")
    sol_amount: float
    sol_usd: float
    tokens: list[WalletToken]


class AirdropIn(Lenient):
    lamports: RawAmount = Field(description="at most 1000 SOL (10^12 lamports) per call")


class TipIn(Lenient):
    receiver_id: str = Field(max_length=64, description="the receiving user's id (a streamer's userDbId)")
    lamports: RawAmount
    message: str | None = Field(default=None, max_length=2000, description="chat text; default 'tipped X SOL'")


class TipOut(BaseModel):
    id: str
    tx_hash: str
    sender_id: str
    sender_username: str
    receiver_id: str
    lamports: str
    amount_sol: float
    amount_usd: float
    chat_event_id: str | None
    timestamp: str | None
