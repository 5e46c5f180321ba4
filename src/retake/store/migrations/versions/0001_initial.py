"""Initial schema: users, agents, RTMP keys, stream sessions, chat events, follows.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from retake.store.types import BigIntId, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tables are created in foreign-key order: each group only references the groups before it.
    _create_accounts()
    _create_stream_sessions()
    _create_chat_events()
    _create_follows()


def _create_accounts() -> None:
    """Users, the agents behind some of them, and the agents' RTMP keys."""
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("username", sa.String(32), nullable=False),
        sa.Column("username_key", sa.String(32), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("bio", sa.Text, nullable=False),
        sa.Column("avatar_url", sa.Text, nullable=False),
        sa.Column("banner_url", sa.Text),
        sa.Column("wallet_address", sa.String(64)),
        sa.Column("twitter_handle", sa.String(64)),
        sa.Column("token_name", sa.String(64)),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_users_wallet_address", "users", ["wallet_address"])
    op.create_index("ix_users_created_at", "users", ["created_at"])
    op.create_table(
        "agents",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("ticker", sa.String(10), nullable=False),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("verification_message", sa.Text),
        sa.Column("verified_at", UTCDateTime),
        sa.Column("verified_via", sa.String(16)),
        sa.Column("tweet_url", sa.Text),
        sa.Column("token_address", sa.String(64), unique=True),
        sa.Column("pool_address", sa.String(64)),
        sa.Column("thumbnail_url", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "rtmp_keys",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("agent_id", sa.String(40), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime),
        sa.Column("publishing", sa.Boolean, nullable=False),
    )
    op.create_index("ix_rtmp_keys_agent_id", "rtmp_keys", ["agent_id"])


def _create_stream_sessions() -> None:
    """One row per stream session, open or ended."""
    op.create_table(
        "stream_sessions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime),
        sa.Column("first_media_at", UTCDateTime),
        sa.Column("ended_at", UTCDateTime),
        sa.Column("scheduled_for", UTCDateTime),
        sa.Column("peak_viewers", sa.Integer, nullable=False),
        sa.Column("thumbnail_url", sa.Text),
        sa.Column("recording_path", sa.Text),
    )
    op.create_index("ix_stream_sessions_status", "stream_sessions", ["status"])
    op.create_index("ix_stream_sessions_ended_at", "stream_sessions", ["ended_at"])
    op.create_index("ix_stream_sessions_user_status", "stream_sessions", ["user_id", "status"])


def _create_chat_events() -> None:
    """Chat messages, tips and trades shown in a streamer's chat."""
    op.create_table(
        "chat_events",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("streamer_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("session_id", sa.String(36)),
        sa.Column("sender_user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("tip_data", sa.JSON),
        sa.Column("trade_data", sa.JSON),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    op.create_index("ix_chat_events_session_id", "chat_events", ["session_id"])
    op.create_index("ix_chat_events_streamer_id_id", "chat_events", ["streamer_id", "id"])


def _create_follows() -> None:
    """Who follows whom."""
    op.create_table(
        "follows",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("follower_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("target_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("follower_id", "target_id"),
    )
    op.create_index("ix_follows_follower_id", "follows", ["follower_id"])
    op.create_index("ix_follows_target_id", "follows", ["target_id"])


def downgrade() -> None:
    for table in ("follows", "chat_events", "stream_sessions", "rtmp_keys", "agents", "users"):
        op.drop_table(table)
