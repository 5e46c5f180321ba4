"""Clips of live streams: one row per MP4 + JPEG under <data-dir>/media/clips/.

Revision ID: 0010_clips
Revises: 0009_restreams
"""

import sqlalchemy as sa
from alembic import op

from retake.store.types import UTCDateTime

revision = "0010_clips"
down_revision = "0009_restreams"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clips",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("session_id", sa.String(36), sa.ForeignKey("stream_sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("streamer_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_by", sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_clips_session_id", "clips", ["session_id"])
    op.create_index("ix_clips_streamer_created", "clips", ["streamer_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_clips_streamer_created", table_name="clips")
    op.drop_index("ix_clips_session_id", table_name="clips")
    op.drop_table("clips")
