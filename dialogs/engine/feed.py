"""What a person has been delivered on the local channel, for the web chat and the terminal.

Both read sent outbox rows themselves rather than receiving pushes, so a
message delivered by another process shows up too.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.engine.messages import Reply
from dialogs.engine.routing import live_actions_of
from dialogs.engine.sealing import Sealer, open_payload
from storage.db import Database
from storage.models import DialogState, OutboxMessage


class DeliveredFeed:
    """What one person has been delivered on one channel: each message once, in delivery order.

    Delivery times are stamped before their transaction commits, so commits can
    land out of timestamp order; a strict cursor would skip a message forever.
    The feed re-reads a trailing window on every poll and remembers which ids it
    has already handed out.
    """

    WINDOW = timedelta(seconds=60)

    def __init__(self, db: Database, person_id: int, *, channel: str = "local", sealer: Sealer | None = None) -> None:
        self.db = db
        self.sealer = sealer  # opens private replies, stored sealed
        self.person_id = person_id
        self.channel = channel
        self.since: datetime | None = None
        self._seen: dict[int, datetime] = {}

    async def history(self, limit: int = 50) -> list[tuple[int, datetime, Reply]]:
        """The last `limit` delivered messages, oldest first; the feed continues after them."""
        return self._take(
            await recent_sent(self.db, self.person_id, channel=self.channel, limit=limit, sealer=self.sealer)
        )

    async def before(self, message_id: int, limit: int = 50) -> list[tuple[int, datetime, Reply]]:
        """Up to `limit` messages delivered before `message_id`, oldest first (an earlier page of history).
        Doesn't move the feed: these are behind what it has handed out."""
        return await recent_sent(
            self.db, self.person_id, channel=self.channel, limit=limit, before=message_id, sealer=self.sealer
        )

    async def resume(self, last_id: int) -> list[tuple[int, datetime, Reply]]:
        """Continue after a message the reader already has (SSE Last-Event-ID).

        Everything delivered up to it (by delivery time, then id) counts as seen; only
        a reconnect that coincides with a late commit could miss one, until reload.
        """

        async def when(session: AsyncSession) -> datetime | None:
            return await session.scalar(select(OutboxMessage.sent_at).where(OutboxMessage.id == last_id))

        last_at = await self.db.run(when)
        if last_at is None:
            return await self.history()
        self.since = last_at
        return [row for row in await self.fresh() if (row[1], row[0]) > (last_at, last_id)]

    async def fresh(self, limit: int = 200) -> list[tuple[int, datetime, Reply]]:
        """Messages delivered since the last call that this feed has not handed out yet."""
        floor = self.since - self.WINDOW if self.since is not None else None

        async def query(session: AsyncSession) -> list[tuple[int, datetime, Reply]]:
            statement = select(OutboxMessage.id, OutboxMessage.sent_at, OutboxMessage.payload, OutboxMessage.key).where(
                OutboxMessage.person_id == self.person_id,
                OutboxMessage.channel == self.channel,
                OutboxMessage.status == "sent",
                OutboxMessage.folded_into.is_(None),  # shown inside the message it was folded into
            )
            if floor is not None:
                statement = statement.where(OutboxMessage.sent_at >= floor)
            rows = await session.execute(statement.order_by(OutboxMessage.sent_at, OutboxMessage.id).limit(limit))
            return [(r.id, r.sent_at, Reply.from_dict(open_payload(self.sealer, r.payload, r.key))) for r in rows]

        return self._take(await self.db.run(query))

    def _take(self, rows: list[tuple[int, datetime, Reply]]) -> list[tuple[int, datetime, Reply]]:
        new = [row for row in rows if row[0] not in self._seen]
        for message_id, sent_at, _ in new:
            self._seen[message_id] = sent_at
            if self.since is None or sent_at > self.since:
                self.since = sent_at
        if self.since is not None and len(self._seen) > 500:  # forget what is far behind the window
            horizon = self.since - 2 * self.WINDOW
            self._seen = {k: v for k, v in self._seen.items() if v >= horizon}
        return new


async def recent_sent(
    db: Database,
    person_id: int,
    *,
    channel: str = "local",
    limit: int = 50,
    before: int | None = None,
    sealer: Sealer | None = None,
) -> list[tuple[int, datetime, Reply]]:
    """The last `limit` delivered messages for a person (before message `before`, if given), oldest first."""

    async def query(session: AsyncSession) -> list[tuple[int, datetime, Reply]]:
        statement = select(OutboxMessage.id, OutboxMessage.sent_at, OutboxMessage.payload, OutboxMessage.key).where(
            OutboxMessage.person_id == person_id,
            OutboxMessage.channel == channel,
            OutboxMessage.status == "sent",
            OutboxMessage.folded_into.is_(None),
        )
        if before is not None:
            anchor = await session.scalar(
                select(OutboxMessage.sent_at).where(
                    OutboxMessage.id == before, OutboxMessage.person_id == person_id, OutboxMessage.status == "sent"
                )
            )
            if anchor is None:
                return []
            statement = statement.where(
                (OutboxMessage.sent_at < anchor) | ((OutboxMessage.sent_at == anchor) & (OutboxMessage.id < before))
            )
        rows = await session.execute(
            statement.order_by(OutboxMessage.sent_at.desc(), OutboxMessage.id.desc()).limit(limit)
        )
        return [
            (r.id, r.sent_at, Reply.from_dict(open_payload(sealer, r.payload, r.key))) for r in reversed(list(rows))
        ]

    return await db.run(query)


async def live_actions(db: Database, person_id: int) -> frozenset[str]:
    """Which of this person's buttons still do something (see routing.live_actions_of); a page shows the
    others disabled."""
    return live_actions_of(await db.run(lambda session: session.get(DialogState, person_id)))


async def form_of(db: Database, message_ref: str, person_id: int) -> Reply | None:
    """The message `message_ref` (an outbox id, as a form button carries it) if it was sent to `person_id`."""
    if not message_ref.isdigit() or len(message_ref) > 18:
        return None

    async def read(session: AsyncSession) -> Reply | None:
        row = await session.get(OutboxMessage, int(message_ref))
        return Reply.from_dict(row.payload) if row is not None and row.person_id == person_id else None

    return await db.run(read)
