"""At start, a node takes back what it held when its previous process died (``kill -9``, a power cut, OOM).

Such a process never ran ``publisher_left``: its sessions stay ``open`` with no publisher, their keys stay
marked ``publishing`` (so ``/agent/rtmp`` could not revoke them), and their recordings have no playlist.
Here each such session is treated as if its publisher had just dropped: it gets the reconnect grace (a
republish resumes it, and its recording continues under new file names, see media/journal.py), and when the
grace passes it is closed as usual, the recording finished from the segments on disk (MediaBridge).

"Held by this node": open, with no media node or this node's, and with a recording folder on this node's
disk (every publish that got as far as ``Publish.Start`` here made one). Sessions another node is
publishing, or that were opened by ``stream/start`` and never published, are left alone.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.store.tables import Agent, RtmpKey, StreamSession
from retake.streams.lifecycle import PublishTarget, StreamService

log = logging.getLogger(__name__)

NO_KEY = 0  # the key a recovered publisher used is unknown; its flag is cleared with all the others here


async def recover_held_sessions(
    sessions: async_sessionmaker[AsyncSession], streams: StreamService, recordings_dir: Path
) -> list[str]:
    """Clear stale ``publishing`` flags and give this node's orphaned sessions their grace; their ids."""
    node = streams.node_url
    open_here = or_(StreamSession.media_node.is_(None), StreamSession.media_node == node)
    async with sessions() as db:
        # Keys of agents streaming on another node keep their flag: that publisher is alive.
        elsewhere = (
            select(Agent.id)
            .join(StreamSession, StreamSession.user_id == Agent.user_id)
            .where(StreamSession.status == "open", StreamSession.media_node.is_not(None))
            .where(StreamSession.media_node != node)
        )
        await db.execute(
            update(RtmpKey)
            .where(RtmpKey.publishing.is_(True), RtmpKey.agent_id.not_in(elsewhere))
            .values(publishing=False)
        )
        rows = (
            await db.execute(
                select(StreamSession.id, StreamSession.user_id, Agent.id)
                .join(Agent, Agent.user_id == StreamSession.user_id)
                .where(StreamSession.status == "open", open_here)
            )
        ).all()
        await db.commit()
    recovered = []
    for session_id, user_id, agent_id in rows:
        if not (recordings_dir / session_id).is_dir():
            continue
        target = PublishTarget(stream_id=user_id, session_id=session_id, agent_id=agent_id, key_id=NO_KEY)
        await streams.publisher_left(target, "node restarted")  # clears its media node, starts the grace
        recovered.append(session_id)
    if recovered:
        log.info("recovered %d session(s) held before a restart; reconnect grace started", len(recovered))
    return recovered
