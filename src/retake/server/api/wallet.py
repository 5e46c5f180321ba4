"""The signed-in user's wallet, the development faucet, and tips."""

from __future__ import annotations

from fastapi import APIRouter

from retake.ledger.results import TipRecord, WalletView
from retake.server.api.deps import UserDep
from retake.server.api.ledger_schemas import LEDGER_ERRORS, AirdropIn, TipIn, TipOut, WalletOut
from retake.server.api.tokens import LedgerDep

router = APIRouter(prefix="/api/v1", tags=["wallet"], responses=LEDGER_ERRORS)


@router.get("/wallet", response_model=WalletOut)
async def wallet(user: UserDep, ledger: LedgerDep) -> WalletView:
    """SOL (lamports) and token holdings (atoms). Users without a wallet address get a custodial one."""
    return await ledger.wallet(user)


@router.post("/wallet/airdrop", response_model=WalletOut)
async def airdrop(body: AirdropIn, user: UserDep, ledger: LedgerDep) -> WalletView:
    """Credit test SOL; 403 ``airdrop_disabled`` unless the operator enabled it (``--enable-airdrop``)."""
    return await ledger.airdrop(user, body.lamports)


@router.post("/tips", response_model=TipOut)
async def tip(body: TipIn, user: UserDep, ledger: LedgerDep) -> TipRecord:
    """Send SOL to a user; posts a ``tip`` chat message in their chat and emits ``tip_received``."""
    return await ledger.tip(user, body.receiver_id, body.lamports, body.message)
