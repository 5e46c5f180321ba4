"""Persistence and presentation of ledger state: the pool state as JSON, and the bodies the API and the realtime
events show (API.md "Tokens, trades and tips": raw quantities as digit strings, human values as numbers).

Every float here is for display only and is derived from the stored integers (ARCHITECTURE convention 4,
token-curve.md §8: price and market cap via ``Fraction`` first).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from retake.chat.ports import TipData, TradeData
from retake.store.tables import Tip, Token, Trade
from retake.store.types import iso
from retake.token_info import TokenInfo

from .configs import NAMED_CONFIGS
from .edge import MODE_NAMES
from .enums import FeeToken, Side
from .model import PoolConfig, PoolState, SwapResult
from .results import FeeSplit, Quote, TipRecord, TradeRecord
from .stats import market_cap_lamports, price_fraction

TOKEN_TYPE = "meteora-dbc"
"""``token.tokenType`` of ``/agent/stream/start``: every token is a Dynamic Bonding Curve token (skill §9)."""


def state_to_json(state: PoolState) -> dict[str, Any]:
    """``PoolState.to_dict()`` with integers as digit strings: u128 sqrt prices do not survive every JSON reader
    (JavaScript numbers, some database JSON functions) as numbers."""
    return _ints_to_text(state.to_dict())


def state_from_json(data: dict[str, Any]) -> PoolState:
    return PoolState.from_dict(_text_to_ints(data))


def _ints_to_text(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out[key] = _ints_to_text(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            out[key] = str(value)
        else:
            out[key] = value
    return out


def _text_to_ints(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out[key] = _text_to_ints(value)
        elif isinstance(value, str):
            out[key] = int(value)
        else:
            out[key] = value
    return out


def config_of(token: Token) -> PoolConfig:
    return NAMED_CONFIGS[token.config_name]


def token_info(token: Token) -> TokenInfo:
    return TokenInfo(
        name=token.name,
        ticker=token.ticker,
        image_url=token.image_url,
        token_address=token.address,
        token_type=TOKEN_TYPE,
        pool_address=token.pool_address,
    )


@dataclass(frozen=True)
class Pricing:
    """Display conversions for one pool config at one SOL price."""

    config: PoolConfig
    sol_price_usd: float

    def sol(self, lamports: int) -> float:
        return float(Fraction(lamports, 10**self.config.quote_decimal))

    def usd(self, lamports: int) -> float:
        return float(Fraction(lamports, 10**self.config.quote_decimal) * Fraction(self.sol_price_usd))

    def tokens(self, atoms: int) -> float:
        return float(Fraction(atoms, 10**self.config.token_decimal))

    def price(self, sqrt_price: int) -> Fraction:
        """SOL per whole token (token-curve.md §1, §8)."""
        return price_fraction(sqrt_price, self.config.token_decimal, self.config.quote_decimal)

    def price_sol(self, sqrt_price: int) -> float:
        return float(self.price(sqrt_price))

    def price_usd(self, sqrt_price: int) -> float:
        return float(self.price(sqrt_price) * Fraction(self.sol_price_usd))

    def market_cap(self, sqrt_price: int) -> int:
        """Lamports: price × total supply (§8, the SDK's convention)."""
        return market_cap_lamports(sqrt_price, self.config.initial_base_supply)

    def base_value(self, atoms: int, sqrt_price: int) -> int:
        """Lamports that ``atoms`` of the token are worth at ``sqrt_price`` (price per atom = sqrt²/2^128, §1)."""
        return atoms * sqrt_price * sqrt_price >> 128

    def progress(self, quote_reserve: int) -> float:
        """Bonding progress, 0..1 (§8: quote_reserve / migration_quote_threshold; graduated at 1)."""
        return float(min(Fraction(quote_reserve, self.config.migration_quote_threshold), Fraction(1)))


def trade_volume(side: Side, result: SwapResult) -> int:
    """Quote volume of a trade (§8): a buy counts the quote paid, a sell the gross quote leaving the curve."""
    if side is Side.BUY:
        return result.amount_in
    return result.amount_out + (result.fees.total if result.fees.token is FeeToken.QUOTE else 0)


def fee_split(total: int, trading: int, protocol: int, creator: int, partner: int, referral: int) -> FeeSplit:
    return FeeSplit(str(total), str(trading), str(protocol), str(creator), str(partner), str(referral))


def quote_of(result: SwapResult, pricing: Pricing) -> Quote:
    fees = result.fees
    return Quote(
        side=result.side.value,
        mode=MODE_NAMES[result.mode],
        amount_in=str(result.amount_in),
        amount_in_excluding_fee=str(result.amount_in_excluding_fee),
        amount_out=str(result.amount_out),
        amount_left=str(result.amount_left),
        fee=fee_split(fees.total, fees.trading, fees.protocol, fees.creator, fees.partner, fees.referral),
        fee_token=fees.token.value,
        next_sqrt_price=str(result.next_sqrt_price),
        price_sol_after=pricing.price_sol(result.next_sqrt_price),
        price_usd_after=pricing.price_usd(result.next_sqrt_price),
        completes_curve=result.completed,
    )


def trade_record(trade: Trade, token: Token, pricing: Pricing) -> TradeRecord:
    """The trade as ``/trades/recent/``, the swap response and ``rawtrade`` show it."""
    sqrt_after = int(trade.sqrt_price_after)
    pool = token.pool_address
    return TradeRecord(
        id=str(trade.id),
        tx_hash=trade.tx_hash,
        token_address=trade.token_address,
        token_ticker=token.ticker,
        token_name=token.name,
        pool_address=pool,
        user_id=trade.user_id,
        trader_address=trade.trader_address,
        buyer_address=trade.trader_address if trade.is_buy else pool,
        seller_address=pool if trade.is_buy else trade.trader_address,
        is_buy=trade.is_buy,
        side="buy" if trade.is_buy else "sell",
        mode=trade.mode,
        amount_in=str(trade.amount_in),
        amount_out=str(trade.amount_out),
        amount_left=str(trade.amount_left),
        sol_lamports=str(trade.sol_amount),
        token_atoms=str(trade.token_amount),
        amount_sol=pricing.sol(trade.sol_amount),
        amount_tokens=pricing.tokens(trade.token_amount),
        amount_in_usd=pricing.usd(trade.sol_amount),
        fee=fee_split(
            trade.fee_total,
            trade.fee_trading,
            trade.fee_protocol,
            trade.fee_creator,
            trade.fee_partner,
            trade.fee_referral,
        ),
        fee_token=trade.fee_token,
        sqrt_price_after=trade.sqrt_price_after,
        price_sol=pricing.price_sol(sqrt_after),
        price_usd=pricing.price_usd(sqrt_after),
        market_cap_sol=pricing.sol(trade.market_cap_after),
        market_cap_usd=pricing.usd(trade.market_cap_after),
        quote_reserve_after=str(trade.quote_reserve_after),
        bonding_progress=pricing.progress(trade.quote_reserve_after),
        completed=trade.completed,
        timestamp=iso(trade.created_at),
    )


def trade_data(trade: Trade, token: Token, pricing: Pricing) -> TradeData:
    """``trade_data`` of a ``trade`` chat message (API.md Socket.IO: ``{amount, type, tx_hash?}``)."""
    return {
        "amount": pricing.sol(trade.sol_amount),
        "type": "buy" if trade.is_buy else "sell",
        "tx_hash": trade.tx_hash,
        "token_address": trade.token_address,
        "token_ticker": token.ticker,
        "amount_tokens": pricing.tokens(trade.token_amount),
        "amount_usd": pricing.usd(trade.sol_amount),
    }


def tip_data(tip: Tip, pricing: Pricing) -> TipData:
    """``tip_data`` of a ``tip`` chat message; ``amount`` is in SOL, which ``/chat/top-tippers`` sums."""
    return {
        "receiver_id": tip.receiver_user_id,
        "amount": pricing.sol(tip.lamports),
        "lamports": str(tip.lamports),
        "amount_usd": pricing.usd(tip.lamports),
        "tx_hash": tip.tx_hash,
    }


def tip_record(tip: Tip, sender_username: str, pricing: Pricing) -> TipRecord:
    return TipRecord(
        id=str(tip.id),
        tx_hash=tip.tx_hash,
        sender_id=tip.sender_user_id,
        sender_username=sender_username,
        receiver_id=tip.receiver_user_id,
        lamports=str(tip.lamports),
        amount_sol=pricing.sol(tip.lamports),
        amount_usd=pricing.usd(tip.lamports),
        chat_event_id=str(tip.chat_event_id) if tip.chat_event_id is not None else None,
        timestamp=iso(tip.created_at),
    )
