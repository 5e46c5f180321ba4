"""Ledger rows under lock: the transaction and locking discipline every ledger write follows.

Serialization, so that concurrent trades on one pool apply one after the other to the state each one read:

* PostgreSQL: the pool row, then the wallet rows, are read ``FOR UPDATE`` (always pool before wallets, and
  wallets in user-id order, so two transactions never wait on each other in a cycle).
* SQLite: one writer at a time anyway, but a deferred transaction that read before writing could interleave with
  another writer. ``BEGIN IMMEDIATE`` takes the write lock before the first read, and an ``asyncio.Lock`` per pool
  queues this process's swaps so they do not spin in SQLite's busy handler.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.errors import NotFound
from retake.principal import Principal
from retake.store.tables import Token, TokenBalance, User, Wallet
from retake.store.types import utcnow

from .edge import looks_like_address, new_address


class LedgerRows:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, dialect: str) -> None:
        self._sessions = sessions
        self._sqlite = dialect == "sqlite"
        self._pool_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # -- transactions and locks ----------------------------------------------------------------------------

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction; the caller commits (leaving without a commit rolls back)."""
        async with self._sessions() as db:
            if self._sqlite:
                await db.execute(text("BEGIN IMMEDIATE"))
            yield db

    @asynccontextmanager
    async def _pool_queue(self, address: str) -> AsyncIterator[None]:
        """SQLite only: queue this process's swaps on one pool (PostgreSQL relies on the row lock alone, which
        also holds across nodes). Weak values: a lock disappears once no swap holds or waits for it."""
        if not self._sqlite:
            yield
            return
        lock = self._pool_locks.get(address)
        if lock is None:
            lock = asyncio.Lock()
            self._pool_locks[address] = lock
        async with lock:
            yield

    def _insert_missing(self, table: type[Wallet] | type[TokenBalance], **values: Any) -> Any:
        insert = sqlite_insert if self._sqlite else pg_insert
        return insert(table).values(**values).on_conflict_do_nothing()

    async def _lock_wallet(self, db: AsyncSession, user: User | Principal) -> Wallet:
        """The user's wallet row, created on first use, locked for this transaction."""
        query = select(Wallet).where(Wallet.user_id == user.id).with_for_update()
        wallet: Wallet | None = await db.scalar(query)
        if wallet is None:
            # ON CONFLICT DO NOTHING: a concurrent first use by the same user creates the row only once.
            custodial = not user.wallet_address
            address = user.wallet_address or new_address()
            await db.execute(
                self._insert_missing(
                    Wallet, user_id=user.id, address=address, custodial=custodial, lamports=0, created_at=utcnow()
                )
            )
            wallet = await db.scalar(query)
            assert wallet is not None
        return wallet

    async def _lock_holding(self, db: AsyncSession, user_id: str, token_address: str) -> TokenBalance:
        query = (
            select(TokenBalance)
            .where(TokenBalance.user_id == user_id, TokenBalance.token_address == token_address)
            .with_for_update()
        )
        holding: TokenBalance | None = await db.scalar(query)
        if holding is None:
            await db.execute(self._insert_missing(TokenBalance, user_id=user_id, token_address=token_address, atoms=0))
            holding = await db.scalar(query)
            assert holding is not None
        return holding

    @staticmethod
    def _address_of(user: User | Principal, wallet: Wallet) -> str:
        return user.wallet_address or wallet.address

    async def _token(self, db: AsyncSession, address: str, *, lock: bool = False) -> Token:
        query = select(Token).where(Token.address == address)
        token: Token | None = None
        if looks_like_address(address):
            token = await db.scalar(query.with_for_update() if lock else query)
        if token is None:
            raise NotFound(f"no token with address '{address}'", code="token_not_found")
        return token
