"""Chat moderation and operator actions: mutes (jail), pinned messages, ``retake admin warn|shutdown``.

Revision ID: 0004_moderation
Revises: 0002_ledger
"""

import sqlalchemy as sa
from alembic import op

from retake.store.types import BigIntId, UTCDateTime

revision = "0004_moderation"
down_revision = "0002_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_mutes",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("streamer_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("session_id", sa.String(36)),
        sa.Column("muted_by", sa.String(36), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("streamer_id", "user_id"),
    )
    op.create_index("ix_chat_mutes_streamer_id", "chat_mutes", ["streamer_id"])
    op.create_table(
        "chat_pins",
        sa.Column(
            "session_id", sa.String(36), sa.ForeignKey("stream_sessions.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("streamer_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("chat_event_id", BigIntId, sa.ForeignKey("chat_events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("pinned_by", sa.String(36), nullable=False),
        sa.Column("pinned_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_chat_pins_streamer_id", "chat_pins", ["streamer_id"])
    op.create_table(
        "operator_actions",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("agent_id", sa.String(40), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("session_id", sa.String(36)),
        sa.Column("chat_event_id", sa.BigInteger),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("announced_at", UTCDateTime),
    )
    op.create_index("ix_operator_actions_agent_id", "operator_actions", ["agent_id"])


def downgrade() -> None:
    op.drop_table("operator_actions")
    op.drop_table("chat_pins")
    op.drop_table("chat_mutes")
