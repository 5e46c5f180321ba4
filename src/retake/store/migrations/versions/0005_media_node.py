"""stream_sessions.media_node: which node holds a session's publisher while media flows (scale-out).

Revision ID: 0005_media_node
Revises: 0004_moderation
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_media_node"
down_revision = "0004_moderation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stream_sessions") as batch:
        batch.add_column(sa.Column("media_node", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stream_sessions") as batch:
        batch.drop_column("media_node")
