"""The inbox: deliveries acknowledged before their turn ran, kept until it commits.

Slack wants an answer within three seconds and does not send an acknowledged
event again, so Baton acknowledges first and works after. In between, the
event would live only in memory, and a crash there would lose what the
person sent. So the adapter keeps each delivery here before it acknowledges
(deliveries arriving together share one insert), the engine deletes the row
in the turn's own transaction, and rows left behind by a crash are replayed
(`replay_forever`, at start and every minute, one loop per process for every
platform). The engine's delivery keys make a replay of something that did
get through a no-op. A delivery that cannot be recorded after every replay is
given up, and its sender is told so through the outbox: nothing vanishes
silently.

A kept delivery may be someone's anonymous answer, so a row holds only the
keyed hash of the delivery key (which names the sender) and the delivery
sealed and padded to a fixed size (dialogs/engine/sealing.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Collection, Iterator
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.engine.clock import Clock
from dialogs.engine.messages import Inbound, Reply
from dialogs.engine.priority import AckFirst
from dialogs.engine.routing import MAX_TEXT
from dialogs.engine.sealing import Sealer, SealError, plain_json, sealed_size
from storage import queries
from storage.coalesce import Coalescer
from storage.db import Database
from storage.models import InboxEvent

log = logging.getLogger(__name__)

GAVE_UP = (
    "Sorry — I kept trying, but I couldn't record a message you sent me earlier. Please send it again "
    "(or press the button again) now that things are working."
)
KEPT_SIZE = MAX_TEXT * 4 + 2048  # bytes a kept delivery is padded to: the longest accepted text in UTF-8, and more
REPLAY_INTERVAL = 60.0  # seconds between looks for kept deliveries that a crash left without a turn


class Inbox:
    """Keeps acknowledged deliveries until their turn commits. One per adapter that acknowledges early."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        sealer: Sealer,
        *,
        stale: timedelta = timedelta(minutes=2),
        max_attempts: int = 5,
    ) -> None:
        self.db = db
        self.clock = clock
        self.sealer = sealer
        self.on_queued: Callable[[], None] = lambda: None  # set by the wiring: wakes the outbox sender
        self.on_replayed: Callable[[int], None] = lambda count: None  # set by the wiring: metrics
        self.stale = stale
        self.max_attempts = max_attempts
        self._rows: dict[str, dict[str, Any]] = {}
        self._writer: Coalescer[str, bool] = Coalescer(self._write)
        # Deliveries being kept for an acknowledgement; the engine and the sender step aside for them.
        self.acks = AckFirst()
        self._working: set[str] = set()  # keys this process is running a turn for: never replayed meanwhile

    @contextlib.contextmanager
    def working_on(self, inbound: Inbound) -> Iterator[None]:
        """While inside, a replay leaves this kept delivery alone: its turn is running in this process."""
        if not (inbound.durable and inbound.key):
            yield
            return
        key = inbound.key
        self._working.add(key)
        try:
            yield
        finally:
            self._working.discard(key)

    async def keep(self, inbound: Inbound) -> Inbound:
        """Store `inbound`; return it marked durable — or as it was, when it has no key or the database failed."""
        if inbound.key is None:
            return inbound
        key = self.sealer.tag(inbound.key)
        self._rows[key] = {"key": key, "sealed": self._seal(inbound), "attempts": 0, "received_at": self.clock.now()}
        try:
            with self.acks.acknowledging():
                await self._writer.get(key)
        except Exception as exc:  # noqa: BLE001 - the turn still runs; it will most likely say the database is down
            log.warning("inbox: could not keep a delivery (%s); it runs from memory only", type(exc).__name__)
            return inbound
        return dataclasses.replace(inbound, durable=True)

    def _seal(self, inbound: Inbound) -> bytes:
        plain = plain_json(inbound.to_dict())  # serialised once: this runs before every acknowledgement
        # One fixed size for everything a turn accepts; longer text is refused by its turn, not kept secret by size.
        return self.sealer.seal_plain("inbox", plain, size=sealed_size(plain, KEPT_SIZE))

    def _open(self, row: InboxEvent) -> dict[str, Any] | None:
        """The kept delivery; None when this secret cannot open it (the secret was changed meanwhile)."""
        try:
            if row.sealed is not None:
                opened: dict[str, Any] = self.sealer.open_bytes("inbox", row.sealed)
                return opened
            stored = row.inbound or {}
            if "sealed" not in stored:
                return stored  # kept before deliveries were sealed
            opened = self.sealer.open("inbox", stored["sealed"])  # kept before revision 0021, as text
            return opened
        except SealError:
            return None

    async def _write(self, keys: list[str]) -> dict[str, bool]:
        rows = [self._rows.pop(key) for key in keys if key in self._rows]
        await self.db.run(lambda s: queries.insert_ignore_many(s, InboxEvent, rows), urgent=True)
        return dict.fromkeys(keys, True)

    async def drop(self, inbound: Inbound) -> None:
        """Forget a kept delivery that will never make a turn (its sender is unknown, say)."""
        if inbound.durable and inbound.key:
            key = self.sealer.tag(inbound.key)
            await self.db.run(lambda s: s.execute(delete(InboxEvent).where(InboxEvent.key == key)))

    async def replay(
        self,
        run: Callable[[Inbound], Awaitable[object]],
        *,
        give_up: Callable[[Inbound], Awaitable[object]] | None = None,
        skip: Collection[str] = (),
        limit: int = 500,
    ) -> int:
        """Run again the deliveries older than `stale` that no turn removed; return how many.

        `skip` holds delivery keys (`Inbound.key`) this process is still working on. One sender's
        deliveries run one after another, oldest first, so their order holds.
        A delivery replayed `max_attempts` times is given up: `give_up` tells
        the person (the adapter may have promised to keep it), and the log
        says how many — never what.
        """
        cutoff = self.clock.now() - self.stale
        skipped = {self.sealer.tag(key) for key in skip}

        async def take(session: AsyncSession) -> list[tuple[str, dict[str, Any] | None, int]]:
            """(key, inbound, which replay this is) for each stale row, counting this replay."""
            statement = (
                select(InboxEvent).where(InboxEvent.received_at < cutoff).order_by(InboxEvent.received_at).limit(limit)
            )
            rows = [
                (row.key, self._open(row), row.attempts + 1)
                for row in await session.scalars(statement)
                if row.key not in skipped
            ]
            if rows:
                await session.execute(
                    update(InboxEvent)
                    .where(InboxEvent.key.in_([key for key, _, _ in rows]))
                    .values(attempts=InboxEvent.attempts + 1),
                    execution_options={"synchronize_session": False},
                )
            return rows

        found = await self.db.run(take)
        unreadable = [key for key, inbound, attempt in found if inbound is None and attempt > self.max_attempts]
        if unreadable:
            log.warning(
                "inbox: %d kept deliveries cannot be opened with this BATON_SECRET_KEY (was it changed?); removed",
                len(unreadable),
            )
            await self.db.run(lambda s: s.execute(delete(InboxEvent).where(InboxEvent.key.in_(unreadable))))
        rows = [(key, inbound, attempt) for key, inbound, attempt in found if inbound is not None]
        spent = [(key, Inbound.from_dict(inbound)) for key, inbound, attempt in rows if attempt > self.max_attempts]
        if spent:
            log.warning("inbox: gave up on %d deliveries after %d attempts each", len(spent), self.max_attempts)
            if give_up is not None:
                await asyncio.gather(*(give_up(inbound) for _, inbound in spent), return_exceptions=True)
            keys = [key for key, _ in spent]
            await self.db.run(lambda s: s.execute(delete(InboxEvent).where(InboxEvent.key.in_(keys))))
        by_sender: dict[tuple[str, str], list[Inbound]] = {}
        for _, inbound, attempt in rows:
            if attempt <= self.max_attempts:
                again = Inbound.from_dict(inbound, durable=True)
                by_sender.setdefault((again.sender.platform, again.sender.user_id), []).append(again)
        if by_sender:
            log.info("inbox: replaying %d deliveries acknowledged before a restart", sum(map(len, by_sender.values())))

            async def in_order(inbounds: list[Inbound]) -> None:
                for inbound in inbounds:
                    await run(inbound)

            await asyncio.gather(*(in_order(inbounds) for inbounds in by_sender.values()))
        return sum(map(len, by_sender.values()))

    async def replay_forever(self, run: Callable[[Inbound], Awaitable[object]]) -> None:
        """Replay kept deliveries through `run` at start and every minute, until cancelled.

        Database trouble is logged (by type only) and tried again next round.
        """
        while True:
            try:
                replayed = await self.replay(run, give_up=self.tell_lost, skip=self._working)
                if replayed:
                    self.on_replayed(replayed)
            except Exception as exc:  # noqa: BLE001 - the database may be down; the next round tries again
                log.warning("inbox: replay failed (%s); trying again in a minute", type(exc).__name__)
            await asyncio.sleep(REPLAY_INTERVAL)

    async def tell_lost(self, inbound: Inbound) -> None:
        """Tell the sender of a given-up delivery to send it again, through the outbox (once per delivery)."""
        now = self.clock.now()

        async def queue(session: AsyncSession) -> None:
            found = await queries.sender_ids(session, [(inbound.sender.platform, inbound.sender.user_id)])
            await queries.enqueue(
                session,
                key=f"inbox-lost:{inbound.key}",
                person_id=next(iter(found.values()), None),
                channel=inbound.sender.platform,
                address=dict(inbound.address),
                payload=Reply(GAVE_UP).to_dict(),
                due_at=now,
                now=now,
                kind="notice",
            )

        await self.db.run(queue)
        self.on_queued()
