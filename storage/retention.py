"""What Baton forgets, and when.

Every message Baton sends is an outbox row, and its payload is the message:
feedback prompts, digests with blockers, sign-in links. Once delivered (or
given up), a row is only useful for a while: the weekly budget looks back
seven days, the admins' view of failed deliveries thirty. So finished rows
older than the retention period are deleted, and so are inbound delivery keys
(platforms retry within minutes; scheduled starts within the grace window).
Rows still waiting to go out are never touched.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OutboxMessage, ProcessedEvent

FINISHED = ("sent", "failed", "cancelled", "held")  # held: kept only to show the person why
EVENT_KEY_DAYS = 14


async def prune(session: AsyncSession, now: datetime, *, days: int) -> tuple[int, int]:
    """Delete finished outbox rows older than `days` and delivery keys older than two weeks; (rows, keys) deleted."""
    messages = await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.status.in_(FINISHED), OutboxMessage.created_at < now - timedelta(days=days)
        )
    )
    keys = await session.execute(
        delete(ProcessedEvent).where(ProcessedEvent.created_at < now - timedelta(days=EVENT_KEY_DAYS))
    )
    return messages.rowcount or 0, keys.rowcount or 0
