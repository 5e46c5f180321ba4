"""Viewer identity: wallet sign-in nonces, identity links (wallet / external JWT → user), banner link.

Revision ID: 0003_identity
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from retake.store.types import UTCDateTime

revision = "0003_identity"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_nonces",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("wallet_address", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime),
    )
    op.create_index("ix_auth_nonces_wallet_address", "auth_nonces", ["wallet_address"])
    op.create_index("ix_auth_nonces_expires_at", "auth_nonces", ["expires_at"])
    op.create_table(
        "identity_links",
        sa.Column("provider", sa.String(16), primary_key=True),
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_identity_links_user_id", "identity_links", ["user_id"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("banner_link", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("banner_link")
    op.drop_table("identity_links")
    op.drop_table("auth_nonces")
