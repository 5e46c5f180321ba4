"""Operator console: operators, their console sessions, the audit log, and agents' ``suspended_at``.

Revision ID: 0008_console
Revises: 0007_webhooks
"""

import sqlalchemy as sa
from alembic import op

from retake.store.types import BigIntId, UTCDateTime

revision = "0008_console"
down_revision = "0007_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:  # batch: SQLite cannot ALTER a column in place
        batch.add_column(sa.Column("suspended_at", UTCDateTime(), nullable=True))
    op.create_table(
        "operators",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(32), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "operator_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("operator_id", sa.String(36), sa.ForeignKey("operators.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_operator_sessions_operator_id", "operator_sessions", ["operator_id"])
    op.create_index("ix_operator_sessions_expires_at", "operator_sessions", ["expires_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("actor", sa.String(40), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_created_at", "audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_operator_sessions_expires_at", "operator_sessions")
    op.drop_index("ix_operator_sessions_operator_id", "operator_sessions")
    op.drop_table("operator_sessions")
    op.drop_table("operators")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("suspended_at")
