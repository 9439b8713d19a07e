"""The single outbound path: a sender that drains the outbox table.

Rows are claimed in batches (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the
write lock on SQLite), so several processes can drain one outbox without
sending a row twice. Each channel plugs in a `Delivery`; each recipient's
failure is isolated, and one person's messages go out in order. Every post
waits for its pace (bot/pacing.py): the platforms' limits, shared by all
replicas, with replies to a person's own message ahead of bulk sends.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.pacing import Pacing
from dialogs.engine.clock import Clock, SystemClock
from dialogs.engine.delivery import Delivery, DeliveryError, Outgoing
from dialogs.engine.locks import KeyedLocks
from dialogs.engine.messages import Reply
from dialogs.engine.priority import AckFirst
from dialogs.engine.sealing import Sealer, open_payload
from storage.coalesce import Coalescer
from storage.db import Database
from storage.models import OutboxMessage

log = logging.getLogger(__name__)

STAGGER = 16  # recipients' deliveries started before the loop gets a turn to run anything else
WAITED = timedelta(minutes=10)  # a message due this long after it was queued was held back for the person


class OutboxSender:
    """Drains due outbox rows through the registered deliveries."""

    def __init__(
        self,
        db: Database,
        deliveries: Iterable[Delivery],
        *,
        clock: Clock | None = None,
        batch: int = 200,
        max_attempts: int = 8,
        lease: timedelta = timedelta(minutes=2),
        poll_interval: float = 1.0,
        pipeline: int = 2,
        mark_every: float = 0.1,
        pacing: Pacing | None = None,
        sealer: Sealer | None = None,
    ) -> None:
        self.db = db
        self.sealer = sealer  # opens private replies, stored sealed (dialogs/engine/sealing.py)
        self.deliveries: Mapping[str, Delivery] = {d.channel: d for d in deliveries}
        self.clock = clock or SystemClock()
        self.batch = batch
        self.max_attempts = max_attempts
        self.lease = lease
        self.poll_interval = poll_interval
        self.pipeline = pipeline  # batches being delivered at once
        self.mark_every = mark_every  # seconds between marking what the platforms accepted as sent
        self._wake = asyncio.Event()
        self.listeners: list[Callable[[set[int]], None]] = []
        self._in_flight: set[asyncio.Task] = set()
        self._closed = False
        self._recipients = KeyedLocks()  # one person's messages go out one at a time, in order
        self._delivering: set[int] = set()  # ids of rows this process is sending right now
        # a post waits for its slot at most half its lease: the rest is for sending and marking it
        self.pacing = pacing or Pacing(db, max_wait=max(5.0, lease.total_seconds() / 2))
        self._history: Coalescer[int, list[Any]] = Coalescer(self._recent_posts)
        self.acks = AckFirst()  # shared by the wiring (bot/core.py): Slack's acknowledgements go first
        # Told (channel, outcome, reason) for each delivery: sent, retried, rate_limited or failed (metrics).
        self.observe: Callable[[str, str, str | None], None] = lambda channel, outcome, reason: None

    def register(self, delivery: Delivery) -> None:
        """Add a channel's delivery (platform adapters call this when they are set up)."""
        self.deliveries = {**self.deliveries, delivery.channel: delivery}

    def wake(self) -> None:
        """Ask the sender to look now (called when something was queued)."""
        self._wake.set()

    def deliver_soon(self, rows: list[dict[str, Any]]) -> None:
        """Deliver rows a turn queued already claimed, right away, without another claim.

        If this process dies first, their lease runs out and any sender claims them.
        """
        messages = [
            Outgoing(
                r["id"],
                r["key"],
                r["person_id"],
                r["channel"],
                dict(r["address"]),
                Reply.from_dict(r["payload"]),
                "reply",
                1,
            )
            for r in rows
            if r["channel"] in self.deliveries
        ]
        if not messages or self._closed:
            return  # closed: the rows stay claimed until their lease runs out, then any sender takes them
        task = asyncio.create_task(self._deliver_logged(messages))  # a database blip must not kill it silently
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def close(self, grace: float = 5.0) -> None:
        """Stop for good (after `run` has ended): replies being delivered get `grace` seconds to finish, the
        rest are cancelled (their rows are retaken after the lease, by this process's next start or another
        replica), and the pacing lanes and history lookups stop. Nothing of the sender runs after this, so
        no transaction of it outlives the database it used."""
        self._closed = True
        if self._in_flight:
            _, late = await asyncio.wait(set(self._in_flight), timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self.pacing.close()
        await self._history.close()

    async def settle(self) -> None:
        """Wait for deliveries handed over with `deliver_soon` to finish."""
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until `stop` is set. Database trouble is logged and waited out, never fatal.

        While a full batch is being delivered the next one is claimed and
        started (at most `pipeline` batches at once), so the sender never sits
        idle waiting for one batch's slowest message before claiming more.
        """
        failures = 0
        batches: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                if len(batches) >= self.pipeline:  # never more than `pipeline` batches out at once
                    await asyncio.wait(set(batches), return_when=asyncio.FIRST_COMPLETED)
                claimed: list[Outgoing] = []
                try:
                    claimed = await self.db.run(self._claim) if self.deliveries else []
                    failures = 0
                except Exception as exc:  # noqa: BLE001 - the drain loop outlives any failure, backing off
                    failures += 1
                    log.warning("outbox drain failed (%s); retrying", type(exc).__name__)
                    await asyncio.sleep(min(30.0, 0.5 * 2**failures))
                if claimed:
                    task = asyncio.create_task(self._deliver_logged(claimed))
                    batches.add(task)
                    task.add_done_callback(batches.discard)
                    if len(claimed) >= self.batch:
                        continue
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                except TimeoutError:
                    pass
        except asyncio.CancelledError:
            for task in batches:  # their rows stay claimed and are retaken after the lease
                task.cancel()
            raise
        finally:
            if batches:
                await asyncio.gather(*batches, return_exceptions=True)
            await self.pacing.close()

    async def drain_once(self) -> int:
        """Claim and deliver one batch of due rows; return how many were handled."""
        if not self.deliveries:
            return 0
        await self.settle()
        claimed = await self.db.run(self._claim)
        if not claimed:
            return 0
        await self._deliver_batch(claimed)
        return len(claimed)

    async def _deliver_logged(self, messages: list[Outgoing]) -> None:
        try:
            await self._deliver_batch(messages)
        except Exception as exc:  # noqa: BLE001 - the rows stay claimed; their lease runs out and they are taken again
            log.warning("outbox batch failed (%s); its rows are retried after their lease", type(exc).__name__)

    async def _deliver_batch(self, messages: list[Outgoing]) -> None:
        ids = {message.id for message in messages}
        self._delivering |= ids  # never claimed again by this process while it is still sending them
        try:
            await self._deliver_by_recipient(messages)
        finally:
            self._delivering -= ids

    async def _deliver_by_recipient(self, messages: list[Outgoing]) -> None:
        by_recipient: dict[object, list[Outgoing]] = defaultdict(list)
        for message in messages:
            recipient = message.person_id if message.person_id is not None else repr(sorted(message.address.items()))
            by_recipient[recipient].append(message)
        marker = SentMarker(self, self.mark_every)
        tasks: list[asyncio.Task[None]] = []
        try:
            for started, batch in enumerate(by_recipient.values(), 1):
                tasks.append(asyncio.create_task(self._deliver_in_order(batch, marker)))
                if started % STAGGER == 0:
                    # Each start renders a message: two hundred at once would hold the loop for tens of
                    # milliseconds, and posts due meanwhile would then go out bunched, over a platform's limit.
                    await asyncio.sleep(0)
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                if not task.done():  # cancelled mid-start: the rest are retaken after their lease
                    task.cancel()
            await marker.close()

    async def _claim(self, session) -> list[Outgoing]:  # noqa: ANN001 - AsyncSession
        now = self.clock.now()
        due = (
            select(OutboxMessage.id, OutboxMessage.person_id, OutboxMessage.channel)
            .where(
                OutboxMessage.channel.in_(list(self.deliveries)),
                or_(
                    (OutboxMessage.status == "pending") & (OutboxMessage.due_at <= now),
                    # a sender that died mid-delivery leaves rows 'sending'; take them back after the lease
                    (OutboxMessage.status == "sending") & (OutboxMessage.claimed_until < now),
                ),
            )
            # ... unless it is this process, still at it (a delivery that outlived its lease)
            .where(OutboxMessage.id.not_in(list(self._delivering)) if self._delivering else true())
            .order_by(OutboxMessage.due_at, OutboxMessage.id)
            .limit(self.batch)
            .with_for_update(skip_locked=True)
        )
        candidates = list(await session.execute(due))
        ids = await self._in_order(session, candidates, now)
        if not ids:
            return []
        rows = await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(status="sending", claimed_until=now + self.lease, attempts=OutboxMessage.attempts + 1)
            .returning(
                OutboxMessage.id,
                OutboxMessage.key,
                OutboxMessage.person_id,
                OutboxMessage.channel,
                OutboxMessage.address,
                OutboxMessage.payload,
                OutboxMessage.kind,
                OutboxMessage.attempts,
                OutboxMessage.unsolicited,
                OutboxMessage.created_at,
                OutboxMessage.due_at,
            )
        )
        claimed = [
            Outgoing(
                r.id,
                r.key,
                r.person_id,
                r.channel,
                dict(r.address),
                Reply.from_dict(open_payload(self.sealer, r.payload, r.key)),
                r.kind,
                r.attempts,
                r.unsolicited,
                r.due_at - r.created_at >= WAITED,
            )
            for r in rows
        ]
        return sorted(await self._screen(session, claimed, now), key=lambda m: m.id)

    @staticmethod
    async def _in_order(session: AsyncSession, candidates: list[Any], now: datetime) -> list[int]:
        """The candidates that may go now: a person's messages keep their order, so one that failed and waits
        for a delayed retry, or is being sent by another sender, holds back that person's later ones on the
        channel. (Due ones come in this same claim and go out by id; one scheduled for later holds nothing
        back.) One indexed query over the few blocking rows, not a subquery per candidate."""
        people = {c.person_id for c in candidates if c.person_id is not None}
        if not people:
            return [c.id for c in candidates]
        blocking = await session.execute(
            select(OutboxMessage.person_id, OutboxMessage.channel, func.min(OutboxMessage.id))
            .where(
                OutboxMessage.person_id.in_(list(people)),
                or_(
                    (OutboxMessage.status == "pending")
                    & (OutboxMessage.due_at > now)
                    & OutboxMessage.last_error.is_not(None),
                    (OutboxMessage.status == "sending") & (OutboxMessage.claimed_until >= now),
                ),
            )
            .group_by(OutboxMessage.person_id, OutboxMessage.channel)
        )
        first_blocked = {(person, channel): first for person, channel, first in blocking}
        return [c.id for c in candidates if c.id < first_blocked.get((c.person_id, c.channel), c.id + 1)]

    async def _screen(self, session, claimed: list[Outgoing], now: datetime) -> list[Outgoing]:  # noqa: ANN001
        """Leave may be recorded after a message was queued: a nudge or check-in invitation to someone on
        leave today is cancelled (with the reason, which `settings` shows them); anything they must get
        waits for their return."""
        from dialogs.common.manners import Recipient, leave_days, on_leave, plan_unsolicited, skipped_on_leave
        from dialogs.engine.clock import tz
        from storage.models import Person

        ids = {m.person_id for m in claimed if m.unsolicited and m.person_id is not None}
        if not ids:
            return claimed
        leaves = await leave_days(session, ids, (now - timedelta(days=1)).date(), (now + timedelta(days=60)).date())
        if not leaves:
            return claimed
        people = {p.id: p for p in await session.scalars(select(Person).where(Person.id.in_(list(leaves))))}
        away = [
            m
            for m in claimed
            if m.unsolicited
            and m.person_id in leaves
            and on_leave(leaves[m.person_id], now.astimezone(tz(people[m.person_id].timezone)).date())
        ]
        if not away:
            return claimed
        cancel = [m.id for m in away if skipped_on_leave(m.kind)]
        if cancel:
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id.in_(cancel)).values(status="cancelled", last_error="leave")
            )
        for message in (m for m in away if not skipped_on_leave(m.kind)):
            person_id = message.person_id
            assert person_id is not None
            person = people[person_id]
            recipient = Recipient(person_id, person.timezone, person.quiet_start, person.quiet_end)
            plan = plan_unsolicited(recipient, now, leaves=leaves[person_id], kind=message.kind)
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message.id)
                .values(
                    status="pending", due_at=plan.due_at or now, claimed_until=None, attempts=OutboxMessage.attempts - 1
                )
            )
        held = {m.id for m in away}
        return [m for m in claimed if m.id not in held]

    async def _deliver_in_order(self, messages: list[Outgoing], marker: SentMarker) -> None:
        """Deliver one recipient's messages in order, telling `marker` each one the platform accepted."""
        from dialogs.common.manners import fold_waiting

        recipient = (
            messages[0].person_id if messages[0].person_id is not None else repr(sorted(messages[0].address.items()))
        )
        plan = fold_waiting(messages)
        async with self._recipients(recipient):
            first = messages[0]
            if first.person_id is not None and self.deliveries[first.channel].limits(first.address) is not None:
                await self._learn_recent_posts(first.person_id)
            for index, (message, rows) in enumerate(plan):
                if not await self._deliver(message):
                    # keep this person's order: what follows a failed message waits for it
                    rest = [i for _, later in plan[index + 1 :] for i in later] + rows[1:]
                    if rest:
                        await self.db.run(lambda s, rest=rest: self._release(s, rest))
                    return
                marker.sent(message, rows)

    async def _learn_recent_posts(self, person_id: int) -> None:
        """What the outbox records as sent to this person lately, by any replica, for their chats' windows."""
        try:
            posts = await self._history.get(person_id) or []
        except Exception as exc:  # noqa: BLE001 - pacing then knows only this process's posts
            log.warning("could not read recent posts for pacing (%s)", type(exc).__name__)
            return
        for row_id, channel, address, sent_at in posts:
            delivery = self.deliveries.get(channel)
            limits = delivery.limits(dict(address)) if delivery is not None else None
            if limits is not None:
                self.pacing.seen(limits, (row_id, 0), sent_at.timestamp())

    async def _recent_posts(self, people: list[int]) -> dict[int, list[Any]]:
        since = datetime.fromtimestamp(self.pacing.clock() - self.pacing.conversations.horizon, UTC)

        async def read(session: AsyncSession) -> dict[int, list[Any]]:
            found: dict[int, list[Any]] = defaultdict(list)
            rows = await session.execute(
                select(
                    OutboxMessage.person_id,
                    OutboxMessage.id,
                    OutboxMessage.channel,
                    OutboxMessage.address,
                    OutboxMessage.sent_at,
                ).where(
                    OutboxMessage.person_id.in_(people),
                    OutboxMessage.status == "sent",
                    OutboxMessage.sent_at >= since,
                    OutboxMessage.folded_into.is_(None),
                )
            )
            for person_id, *post in rows:
                found[person_id].append(post)
            return found

        return await self.db.run(read)

    async def _deliver(self, message: Outgoing) -> bool:
        await self.acks.after_acks()
        delivery = self.deliveries[message.channel]
        pace = self.pacing.pace(delivery.limits(message.address), urgent=message.kind == "reply", ref=message.id)
        try:
            await delivery.deliver(message, pace)
        except DeliveryError as exc:
            await self._failed(message, exc)
            return False
        except Exception as exc:  # noqa: BLE001 - a bug in a delivery must not stop the sender
            log.error("delivery to channel %s crashed (%s)", message.channel, type(exc).__name__)
            await self._failed(message, DeliveryError(f"internal error: {type(exc).__name__}"))
            return False
        self.observe(message.channel, "sent", None)
        return True

    async def _failed(self, message: Outgoing, exc: DeliveryError) -> None:
        if exc.permanent or message.attempt >= self.max_attempts:
            reason = exc.reason if exc.permanent else f"gave up after {message.attempt} attempts: {exc.reason}"
            log.warning("outbox message %s failed for good: %s", message.id, reason)
            self.observe(message.channel, "failed", exc.reason if exc.permanent else "too many attempts")
            await self.db.run(lambda s: self._mark(s, message.id, status="failed", last_error=reason))
            return
        delay = exc.retry_after if exc.retry_after is not None else backoff(message.attempt)
        due = self.clock.now() + timedelta(seconds=delay)
        attempts = message.attempt - 1 if exc.rate_limited else message.attempt  # waiting isn't failing
        self.observe(message.channel, "rate_limited" if exc.rate_limited else "retried", None)
        await self.db.run(
            lambda s: self._mark(s, message.id, status="pending", due_at=due, last_error=exc.reason, attempts=attempts)
        )

    @staticmethod
    async def _mark(session, message_id: int, **values: Any) -> None:  # noqa: ANN001
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values))

    @staticmethod
    async def _mark_sent(
        session: AsyncSession, ids: list[int], when: datetime, folds: list[tuple[Outgoing, list[int]]]
    ) -> None:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(status="sent", sent_at=when)
        )
        for message, rows in folds:  # the first row now holds what was sent; the others went inside it
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == message.id).values(payload=message.reply.to_dict())
            )
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id.in_(rows[1:])).values(folded_into=message.id)
            )

    @staticmethod
    async def _release(session, ids: list[int]) -> None:  # noqa: ANN001
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(status="pending", attempts=OutboxMessage.attempts - 1)
        )


class SentMarker:
    """Marks delivered rows sent within `every` seconds of the platform accepting them, in one statement
    per interval, so a process killed mid fan-out re-sends at most what was in flight or accepted in the
    last interval — not its whole batch, which pacing can stretch over minutes."""

    def __init__(self, sender: OutboxSender, every: float) -> None:
        self.sender = sender
        self.every = every
        self._ids: list[int] = []
        self._folds: list[tuple[Outgoing, list[int]]] = []
        self._people: set[int] = set()
        self._timer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def sent(self, message: Outgoing, rows: list[int]) -> None:
        self._ids.extend(rows)
        if len(rows) > 1:
            self._folds.append((message, rows))
        if message.person_id is not None:
            self._people.add(message.person_id)
        if self._timer is None:
            self._timer = asyncio.create_task(self._later())

    async def _later(self) -> None:
        await asyncio.sleep(self.every)
        self._timer = None
        await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            if not self._ids:
                return
            ids, folds, people = self._ids, self._folds, self._people
            self._ids, self._folds, self._people = [], [], set()
            when = self.sender.clock.now()
            try:
                await self.sender.db.run(lambda s: self.sender._mark_sent(s, ids, when, folds))
            except Exception as exc:  # noqa: BLE001 - kept for the next flush; at worst the lease re-sends them
                log.warning("could not mark %d delivered messages sent yet (%s)", len(ids), type(exc).__name__)
                self._ids[:0], self._folds[:0] = ids, folds
                self._people |= people
                return
        for listener in self.sender.listeners:
            listener(people)

    async def close(self) -> None:
        """The batch is over: mark the rest now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self.flush()


def backoff(attempt: int, *, base: float = 1.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter: somewhere in [0, min(cap, base·2^attempt)] seconds."""
    return random.uniform(0, min(cap, base * 2**attempt))
