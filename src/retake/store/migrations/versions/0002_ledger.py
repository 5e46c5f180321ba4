"""Ledger: tokens with their bonding-curve pool state, wallets, token balances, trades, tips.

The file number follows the issue plan; the revision chains after ``0003_identity``, which was the head when this
one was written (one linear history, so ``upgrade head`` never meets two heads).

Revision ID: 0002_ledger
Revises: 0003_identity
"""

import sqlalchemy as sa
from alembic import op

from retake.store.types import BigIntId, UTCDateTime

revision = "0002_ledger"
down_revision = "0003_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tables are created in foreign-key order: each group only references the groups before it.
    _create_tokens()
    _create_balances()
    _create_trades()
    _create_tips()


def _create_tokens() -> None:
    """One bonding-curve token per agent, with its pool state."""
    op.create_table(
        "tokens",
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("pool_address", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "agent_id", sa.String(40), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False, unique=True
        ),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("ticker", sa.String(10), nullable=False),
        sa.Column("image_url", sa.Text, nullable=False),
        sa.Column("config_name", sa.String(16), nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("sqrt_price", sa.String(40), nullable=False),
        sa.Column("ath_sqrt_price", sa.String(40), nullable=False),
        sa.Column("market_cap_lamports", sa.BigInteger, nullable=False),
        sa.Column("completed", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("completed_at", UTCDateTime),
    )
    op.create_index("ix_tokens_user_id", "tokens", ["user_id"])
    op.create_index("ix_tokens_market_cap_lamports", "tokens", ["market_cap_lamports"])


def _create_balances() -> None:
    """Users' SOL wallets and token holdings."""
    op.create_table(
        "wallets",
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("custodial", sa.Boolean, nullable=False),
        sa.Column("lamports", sa.BigInteger, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_wallets_address", "wallets", ["address"])
    op.create_table(
        "token_balances",
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column(
            "token_address", sa.String(64), sa.ForeignKey("tokens.address", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("atoms", sa.BigInteger, nullable=False),
    )


def _create_trades() -> None:
    """Every buy and sell against a token's pool."""
    op.create_table(
        "trades",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("tx_hash", sa.String(100), nullable=False, unique=True),
        sa.Column("token_address", sa.String(64), sa.ForeignKey("tokens.address", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("trader_address", sa.String(64), nullable=False),
        sa.Column("is_buy", sa.Boolean, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        *[
            sa.Column(name, sa.BigInteger, nullable=False)
            for name in (
                "amount_in",
                "amount_out",
                "amount_left",
                "sol_amount",
                "token_amount",
                "fee_total",
                "fee_trading",
                "fee_protocol",
                "fee_creator",
                "fee_partner",
                "fee_referral",
            )
        ],
        sa.Column("fee_token", sa.String(8), nullable=False),
        sa.Column("sqrt_price_after", sa.String(40), nullable=False),
        sa.Column("market_cap_after", sa.BigInteger, nullable=False),
        sa.Column("quote_reserve_after", sa.BigInteger, nullable=False),
        sa.Column("completed", sa.Boolean, nullable=False),
        sa.Column("announced", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_trades_token_address_id", "trades", ["token_address", "id"])
    op.create_index("ix_trades_user_id", "trades", ["user_id"])
    op.create_index("ix_trades_created_at", "trades", ["created_at"])


def _create_tips() -> None:
    """SOL tips between users."""
    op.create_table(
        "tips",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("tx_hash", sa.String(100), nullable=False, unique=True),
        sa.Column("sender_user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("receiver_user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("lamports", sa.BigInteger, nullable=False),
        sa.Column("chat_event_id", sa.BigInteger),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_tips_sender_user_id", "tips", ["sender_user_id"])
    op.create_index("ix_tips_receiver_user_id", "tips", ["receiver_user_id"])


def downgrade() -> None:
    for table in ("tips", "trades", "token_balances", "wallets", "tokens"):
        op.drop_table(table)
