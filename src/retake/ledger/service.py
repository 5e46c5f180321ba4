"""The ledger service: token launch, quotes, swaps, tips, airdrops and wallets on the store.

The curve math is the pure engine of this package (research file token-curve.md); this module only loads a pool,
asks ``quote_swap`` for the complete next state and persists it. Each money movement is one database transaction:
balances, pool state, fee accumulators and the trade/tip row change together or not at all (API.md "Tokens, trades
and tips"). Services raise ``retake.errors`` only; engine errors are translated in ``edge.py``.

Locking and transactions (one serialized read-modify-write per pool) are in ``rows.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.chat.ports import SendGate, TradeData, TransactionKind
from retake.chat.service import MAX_TEXT, comment_record
from retake.errors import Conflict, Forbidden, NotFound, ValidationFailed
from retake.events import EventBus, PlatformEvent
from retake.principal import Principal
from retake.store.tables import Agent, ChatEvent, StreamSession, Tip, Token, TokenBalance, Trade, User, Wallet
from retake.store.types import utcnow
from retake.token_info import TokenInfo

from .configs import DEFAULT_CONFIG, NAMED_CONFIGS
from .edge import (
    I64_MAX,
    MODE_NAMES,
    insufficient_balance,
    ledger_errors,
    looks_like_signature,
    new_address,
    new_signature,
    parse_amount,
    parse_mode,
    parse_side,
)
from .enums import Side, SwapMode
from .market import Market
from .model import SwapResult, new_pool
from .records import (
    Pricing,
    config_of,
    quote_of,
    state_from_json,
    state_to_json,
    tip_data,
    tip_record,
    token_info,
    trade_data,
    trade_record,
    trade_volume,
)
from .results import Holding, Quote, TipRecord, TradeRecord, WalletView
from .rows import LedgerRows
from .swap import quote_swap

log = logging.getLogger(__name__)

MAX_AIRDROP_LAMPORTS = 1_000 * 10**9
"""One faucet call gives at most 1000 SOL: enough for any demo, far from the BIGINT balance limit."""


class LedgerService(LedgerRows):
    """Implements ``streams.ports.TokenLauncher`` (``ensure_token``) and ``chat.ports.TransactionLedger``
    (``confirm``)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        events: EventBus,
        *,
        dialect: str,
        config_name: str = "A",
        sol_price_usd: float = 150.0,
        enable_airdrop: bool = False,
        chat_gate: SendGate,
    ) -> None:
        if config_name not in NAMED_CONFIGS:
            raise ValueError(f"unknown token config {config_name!r}")
        super().__init__(sessions, dialect=dialect)
        self._events = events
        self._config_name = config_name
        self._sol_price_usd = sol_price_usd
        self._airdrop = enable_airdrop
        self._launch_lock = asyncio.Lock()
        self.market = Market(sessions, sol_price_usd)
        # Moderation's gate (chat/ports.py): a user muted in a chat cannot tip there.
        self.chat_gate = chat_gate

    def pricing(self, token: Token | None = None) -> Pricing:
        return Pricing(config_of(token) if token is not None else DEFAULT_CONFIG, self._sol_price_usd)

    # -- token launch (streams.ports.TokenLauncher) --------------------------------------------------------

    async def ensure_token(self, agent_id: str) -> TokenInfo | None:
        """The agent's token, created on the first call once the agent is verified (API.md ``stream/start``)."""
        async with self._sessions() as db:
            agent = await db.get(Agent, agent_id)
            if agent is None or not agent.verified:
                return None
            if agent.token_address:
                existing = await db.get(Token, agent.token_address)
                if existing is not None:
                    return token_info(existing)
        async with self._launch_lock, self._write() as db:
            agent = await db.scalar(select(Agent).where(Agent.id == agent_id).with_for_update())
            if agent is None or not agent.verified:
                return None
            if agent.token_address:  # a concurrent start launched it while we waited for the lock
                existing = await db.get(Token, agent.token_address)
                return token_info(existing) if existing is not None else None
            user = await db.get(User, agent.user_id)
            assert user is not None
            config = NAMED_CONFIGS[self._config_name]
            now = utcnow()
            # activation_type is TIMESTAMP for every named config (§12: unix seconds locally).
            state = new_pool(config, int(now.timestamp()))
            token = Token(
                address=new_address(),
                pool_address=new_address(),
                agent_id=agent.id,
                user_id=user.id,
                name=(user.token_name or user.username)[:64],
                ticker=agent.ticker,
                image_url=user.avatar_url or "",
                config_name=self._config_name,
                state=state_to_json(state),
                sqrt_price=str(state.sqrt_price),
                ath_sqrt_price=str(state.sqrt_price),
                market_cap_lamports=Pricing(config, self._sol_price_usd).market_cap(state.sqrt_price),
                completed=False,
                created_at=now,
            )
            db.add(token)
            await db.flush()
            agent.token_address = token.address
            agent.pool_address = token.pool_address
            await db.commit()
        log.info(
            "token %s ($%s) launched for agent %s on config %s",
            token.address,
            token.ticker,
            agent_id,
            token.config_name,
        )
        return token_info(token)

    # -- quotes and swaps ----------------------------------------------------------------------------------

    async def quote(self, address: str, side: str, amount: object, mode: str) -> Quote:
        side_, mode_ = parse_side(side), parse_mode(mode)
        amount_ = parse_amount(amount, "amount")
        async with self._sessions() as db:
            token = await self._token(db, address)
        state = state_from_json(token.state)
        with ledger_errors():
            result = quote_swap(config_of(token), state, side_, amount_, mode_, _clock(state.activation_point))
        return quote_of(result, self.pricing(token))

    async def swap(
        self,
        user: Principal,
        address: str,
        *,
        side: str,
        amount: object,
        mode: str,
        min_out: object = None,
        max_in: object = None,
    ) -> TradeRecord:
        """Execute a trade for ``user``. ``min_out`` bounds the output (any mode), ``max_in`` the input."""
        side_, mode_ = parse_side(side), parse_mode(mode)
        amount_ = parse_amount(amount, "amount")
        min_out_ = None if min_out is None else parse_amount(min_out, "min_out", minimum=0)
        max_in_ = None if max_in is None else parse_amount(max_in, "max_in", minimum=0)
        buy = side_ is Side.BUY
        async with self._pool_queue(address), self._write() as db:
            token = await self._token(db, address, lock=True)
            state = state_from_json(token.state)
            wallet = await self._lock_wallet(db, user)
            holding = await self._lock_holding(db, user.id, address)
            spendable = wallet.lamports if buy else holding.atoms
            what = "SOL (lamports)" if buy else f"${token.ticker} (atoms)"
            if mode_ is not SwapMode.EXACT_OUT and amount_ > spendable:
                raise insufficient_balance(what, amount_, spendable)
            limit = max_in_ if mode_ is SwapMode.EXACT_OUT else min_out_
            with ledger_errors():
                result = quote_swap(
                    config_of(token), state, side_, amount_, mode_, _clock(state.activation_point), limit=limit
                )
            _check_fill(result, min_out_, max_in_)
            if result.amount_in > spendable:
                raise insufficient_balance(what, result.amount_in, spendable)
            if buy:
                wallet.lamports -= result.amount_in
                holding.atoms += result.amount_out
            else:
                holding.atoms -= result.amount_in
                wallet.lamports += result.amount_out
            if wallet.lamports > I64_MAX:
                raise ValidationFailed("the wallet cannot hold that much SOL", code="balance_overflow")
            now = utcnow()
            pricing = self.pricing(token)
            _apply_to_pool(token, result, pricing, now)
            trade = _trade_row(result, token, user.id, self._address_of(user, wallet), now)
            db.add(trade)
            await db.flush()
            await db.commit()
        record = trade_record(trade, token, pricing)
        await self._events.publish(PlatformEvent("rawtrade", "trades", record))
        for room in ("trades", f"trades_{address}"):
            await self._events.publish(PlatformEvent("newtrade", room, record))
        return record

    # -- wallets, airdrops, tips ---------------------------------------------------------------------------

    async def wallet(self, user: Principal) -> WalletView:
        async with self._sessions() as db:
            wallet = await db.get(Wallet, user.id)
        if wallet is None:
            async with self._write() as db:
                wallet = await self._lock_wallet(db, user)
                await db.commit()
        async with self._sessions() as db:
            rows = (
                await db.execute(
                    select(TokenBalance, Token)
                    .join(Token, Token.address == TokenBalance.token_address)
                    .where(TokenBalance.user_id == user.id, TokenBalance.atoms > 0)
                    .order_by(Token.ticker, Token.address)
                )
            ).all()
        pricing = self.pricing()
        tokens = []
        for holding, token in rows:
            token_pricing = self.pricing(token)
            value = token_pricing.base_value(holding.atoms, int(token.sqrt_price))
            tokens.append(
                Holding(
                    address=token.address,
                    ticker=token.ticker,
                    name=token.name,
                    amount=str(holding.atoms),
                    amount_tokens=token_pricing.tokens(holding.atoms),
                    value_sol=token_pricing.sol(value),
                    value_usd=token_pricing.usd(value),
                )
            )
        return WalletView(
            user_id=user.id,
            wallet_address=self._address_of(user, wallet),
            custodial=not user.wallet_address,
            sol=str(wallet.lamports),
            sol_amount=pricing.sol(wallet.lamports),
            sol_usd=pricing.usd(wallet.lamports),
            tokens=tuple(tokens),
        )

    async def airdrop(self, user: Principal, lamports: object) -> WalletView:
        if not self._airdrop:
            raise Forbidden(
                "airdrops are disabled on this server (RETAKE_ENABLE_AIRDROP=1 or `retake serve --enable-airdrop`)",
                code="airdrop_disabled",
            )
        amount = parse_amount(lamports, "lamports", maximum=MAX_AIRDROP_LAMPORTS)
        async with self._write() as db:
            wallet = await self._lock_wallet(db, user)
            if wallet.lamports + amount > I64_MAX:
                raise ValidationFailed("the wallet cannot hold that much SOL", code="balance_overflow")
            wallet.lamports += amount
            await db.commit()
        return await self.wallet(user)

    async def tip(self, sender: Principal, receiver_id: str, lamports: object, message: str | None = None) -> TipRecord:
        """Move SOL to ``receiver_id`` and post the ``tip`` chat message, in one transaction."""
        amount = parse_amount(lamports, "lamports", maximum=I64_MAX)
        if receiver_id == sender.id:
            raise ValidationFailed("you cannot tip yourself", code="self_tip")
        pricing = self.pricing()
        note = (message or "").strip() or f"tipped {pricing.sol(amount):g} SOL"
        if len(note) > MAX_TEXT or "\x00" in note:  # PostgreSQL text cannot hold NUL
            raise ValidationFailed(f"message must be at most {MAX_TEXT} characters of text", code="invalid_message")
        async with self._write() as db:
            receiver = await db.get(User, receiver_id) if receiver_id.isprintable() else None
            if receiver is None:
                raise NotFound(f"no user with id '{receiver_id}'", code="receiver_not_found")
            await self.chat_gate.check_send(db, receiver_id, sender.id)
            # Wallet rows in user-id order: two opposite tips never lock in a cycle (PostgreSQL).
            parties: tuple[User | Principal, ...] = (sender, receiver)
            locked = {u.id: await self._lock_wallet(db, u) for u in sorted(parties, key=lambda u: u.id)}
            source, target = locked[sender.id], locked[receiver_id]
            if source.lamports < amount:
                raise insufficient_balance("SOL (lamports)", amount, source.lamports)
            if target.lamports + amount > I64_MAX:
                raise ValidationFailed("the receiver's wallet cannot hold that much SOL", code="balance_overflow")
            source.lamports -= amount
            target.lamports += amount
            now = utcnow()
            tip = Tip(
                tx_hash=new_signature(),
                sender_user_id=sender.id,
                receiver_user_id=receiver_id,
                lamports=amount,
                created_at=now,
            )
            db.add(tip)
            session_id = await db.scalar(
                select(StreamSession.id).where(StreamSession.user_id == receiver_id, StreamSession.status == "open")
            )
            # The chat line is stored in the same transaction as the money, so chat and top-tippers never show a
            # tip that did not happen (or miss one that did).
            event = ChatEvent(
                streamer_id=receiver_id,
                session_id=session_id,
                sender_user_id=sender.id,
                type="tip",
                text=note,
                tip_data=dict(tip_data(tip, pricing)),
                created_at=now,
                deleted=False,
            )
            db.add(event)
            await db.flush()
            tip.chat_event_id = event.id
            await db.commit()
        record = tip_record(tip, sender.username, pricing)
        await self._events.publish(PlatformEvent("message", receiver_id, comment_record(event, sender)))
        await self._events.publish(PlatformEvent("tip_received", f"live_{receiver_id}", record))
        return record

    # -- chat announcements (chat.ports.TransactionLedger) ----------------------------------------------

    async def confirm(self, kind: TransactionKind, tx_hash: str, sender_id: str, streamer_id: str) -> TradeData | None:
        """A trader may announce each of their own trades once, in the chat of the token's streamer. Tips are
        announced by ``tip`` itself, so a tip hash is never confirmed a second time."""
        if kind != "trade" or not looks_like_signature(tx_hash):
            return None
        if not (sender_id.isprintable() and streamer_id.isprintable()):  # never send NUL to PostgreSQL
            return None
        async with self._sessions() as db:
            # Claimed with one conditional UPDATE, so two concurrent announcements cannot both succeed.
            claimed = await db.execute(
                update(Trade)
                .where(
                    Trade.tx_hash == tx_hash,
                    Trade.user_id == sender_id,
                    Trade.announced.is_(False),
                    Trade.token_address.in_(select(Token.address).where(Token.user_id == streamer_id)),
                )
                .values(announced=True)
            )
            if cast(CursorResult[Any], claimed).rowcount != 1:
                return None
            row = (
                await db.execute(
                    select(Trade, Token)
                    .join(Token, Token.address == Trade.token_address)
                    .where(Trade.tx_hash == tx_hash)
                )
            ).first()
            await db.commit()
        if row is None:
            return None
        trade, token = row
        return trade_data(trade, token, self.pricing(token))


def _clock(activation_point: int) -> int:
    """Unix seconds for the fee schedule, never before the pool's activation (§12: that would be an error)."""
    return max(int(time.time()), activation_point)


def _slippage(message: str) -> Conflict:
    return Conflict(message, code="slippage_exceeded")


def _check_fill(result: SwapResult, min_out: int | None, max_in: int | None) -> None:
    """The trader's bounds, and never a charge for nothing."""
    if min_out is not None and result.amount_out < min_out:
        raise _slippage(f"output {result.amount_out} below the minimum {min_out}")
    if max_in is not None and result.amount_in > max_in:
        raise _slippage(f"input {result.amount_in} above the maximum {max_in}")
    if result.amount_out == 0:
        # The engine quotes a tiny exact-in whose input is all fee as 0 out; never charge for nothing.
        raise ValidationFailed("amount too small: the whole input would go to fees", code="amount_too_small")


def _apply_to_pool(token: Token, result: SwapResult, pricing: Pricing, now: datetime) -> None:
    """Write the quote's complete next pool state, and the columns derived from it, onto the locked token row."""
    new_state = result.new_state
    token.state = state_to_json(new_state)
    token.sqrt_price = str(new_state.sqrt_price)
    token.ath_sqrt_price = str(max(int(token.ath_sqrt_price), new_state.sqrt_price))
    token.market_cap_lamports = pricing.market_cap(new_state.sqrt_price)
    if result.completed:
        # Graduation (§6): from now on quote_swap refuses the pool with PoolCompleted.
        token.completed = True
        token.completed_at = now


def _trade_row(result: SwapResult, token: Token, user_id: str, trader_address: str, now: datetime) -> Trade:
    buy = result.side is Side.BUY
    fees = result.fees
    return Trade(
        tx_hash=new_signature(),
        token_address=token.address,
        user_id=user_id,
        trader_address=trader_address,
        is_buy=buy,
        mode=MODE_NAMES[result.mode],
        amount_in=result.amount_in,
        amount_out=result.amount_out,
        amount_left=result.amount_left,
        sol_amount=trade_volume(result.side, result),
        token_amount=result.amount_out if buy else result.amount_in,
        fee_total=fees.total,
        fee_trading=fees.trading,
        fee_protocol=fees.protocol,
        fee_creator=fees.creator,
        fee_partner=fees.partner,
        fee_referral=fees.referral,
        fee_token=fees.token.value,
        sqrt_price_after=str(result.new_state.sqrt_price),
        market_cap_after=token.market_cap_lamports,
        quote_reserve_after=result.new_state.quote_reserve,
        completed=result.completed,
        announced=False,
        created_at=now,
    )
