"""Pacing of every post within the platforms' limits, shared by all replicas.

Two kinds of limit, kept two ways (the adapter names them in `Limits`):

- **A shared budget** — a Slack workspace's posting rate, a Teams tenant's 50
  per second — belongs to the app, not to a process. Its slots come from the
  database (storage/pacing.py), a small block at a time and never more than
  `lookahead` seconds ahead, so replicas interleave their blocks and together
  stay within the rate. A `Lane` per budget hands its slots out in this
  process: replies to a person's own message first, bulk sends after them, so
  10,000 check-in invitations never make someone wait for their next question.
  A 429 pauses the budget in the database, for every replica.
- **One conversation's windows** — Slack's ~1 per second per channel, Teams'
  7/1 s, 8/2 s, 60/30 s and 1,800/h — are exact sliding windows over the posts
  this process made and those the outbox records as sent by any replica (a
  person's messages are sent by one replica at a time, so that record is
  complete before the next one goes).

Times are wall-clock seconds (`time.time`) because replicas compare them.
A post whose slot is further away than `max_wait` is not waited for: the
delivery raises DeliveryError (rate_limited) and the outbox reschedules it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.engine.delivery import DeliveryError, Limits
from storage import pacing as slots
from storage.db import Database

log = logging.getLogger(__name__)

LOOKAHEAD = 0.5  # seconds of a shared budget one replica may hold ahead of now for bulk sends
BLOCK = 0.25  # seconds of a budget taken in one database round trip
STALE = 0.01  # a slot missed by more than this is dropped, not used late (late posts bunch up)


class Pacing:
    """The lanes of every shared budget this process posts in, and recent posts per conversation."""

    def __init__(
        self,
        db: Database,
        *,
        max_wait: float = 20.0,
        lookahead: float = LOOKAHEAD,
        block: float = BLOCK,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.db = db
        self.max_wait = max_wait
        self.lookahead = lookahead
        self.block = block
        self.clock = clock
        self.sleep = sleep
        self.conversations = Conversations()
        self.closed = False
        self._lanes: dict[str, Lane] = {}

    def pace(self, limits: Limits | None, *, urgent: bool, ref: object) -> Pace:
        """The pace for one outbox message (`ref` identifies it); `urgent`: a reply, ahead of bulk sends."""
        return Pace(self, limits, urgent, ref)

    def lane(self, limits: Limits) -> Lane:
        lane = self._lanes.get(limits.shared)
        if lane is None or lane.rate != limits.rate or lane.burst != limits.burst:
            lane = self._lanes[limits.shared] = Lane(self, limits.shared, limits.rate, limits.burst)
        return lane

    async def close(self) -> None:
        """Stop every lane's server (the sender is stopping): none may be left mid-transaction, and no post
        takes a slot after this."""
        self.closed = True
        for lane in self._lanes.values():
            await lane.close()

    def seen(self, limits: Limits, ref: object, at: float) -> None:
        """A post the outbox records as sent (by any replica) at `at`."""
        self.conversations.record(limits.conversation, ref, at, keep=False)


class Pace:
    """What one message's delivery waits on (the `Pace` of dialogs.engine.delivery)."""

    def __init__(self, pacing: Pacing, limits: Limits | None, urgent: bool, ref: object) -> None:
        self.pacing, self.limits, self.urgent, self.ref = pacing, limits, urgent, ref
        self._parts = itertools.count()

    async def turn(self) -> None:
        limits, pacing = self.limits, self.pacing
        if limits is None:
            return
        ref = (self.ref, next(self._parts))
        lane = pacing.lane(limits)
        for retake in itertools.count():
            now = pacing.clock()
            wait = pacing.conversations.earliest(limits.conversation, limits.windows, now) - now
            if wait > pacing.max_wait:
                raise DeliveryError("waiting for this conversation's rate limit", retry_after=wait, rate_limited=True)
            if wait > 0:
                await pacing.sleep(wait)
            at = await lane.take(self.urgent)
            delay = at - pacing.clock()
            if delay > 0:
                await pacing.sleep(delay)
            now = pacing.clock()
            if lane.paused_until > now:
                continue  # a 429 arrived while waiting for the slot: a new one, after the pause
            if now - at > max(STALE, 1.0 / limits.rate) and retake < 3:
                continue  # woken so late that posting now would crowd the next slots: take a fresh one
            break
        pacing.conversations.record(limits.conversation, ref, pacing.clock())

    async def pause(self, seconds: float) -> None:
        if self.limits is None:
            return
        self.pacing.conversations.pause(self.limits.conversation, self.pacing.clock() + seconds)
        await self.pacing.lane(self.limits).pause(seconds)


class Lane:
    """One shared budget in this process: slots taken from the database, handed out replies first."""

    def __init__(self, pacing: Pacing, scope: str, rate: float, burst: int) -> None:
        self.pacing, self.scope, self.rate, self.burst = pacing, scope, rate, burst
        self.size = max(1, math.ceil(rate * pacing.block))
        self.paused_until = 0.0
        self.latency = 0.0  # recent seconds from a take's transaction to its slots in hand (commit, wake-up)
        self._slots: deque[float] = deque()
        self._waiting: list[tuple[int, int, asyncio.Future[float]]] = []
        self._order = itertools.count()
        self._arrived = asyncio.Event()
        self._server: asyncio.Task[None] | None = None

    async def take(self, urgent: bool) -> float:
        """A send time (epoch seconds) for one post. Bulk posts that would wait longer than `max_wait`
        behind the ones already waiting get DeliveryError (rate_limited) at once instead."""
        pacing = self.pacing
        if pacing.closed:
            raise DeliveryError("the sender is stopping", retry_after=1.0)
        if not urgent:
            queued = sum(1 for *_, future in self._waiting if not future.done()) + 1
            estimate = queued / self.rate + max(0.0, self.paused_until - pacing.clock())
            if estimate > pacing.max_wait:
                raise DeliveryError("waiting for the platform's rate limit", retry_after=estimate, rate_limited=True)
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (0 if urgent else 1, next(self._order), future))
        self._arrived.set()
        if self._server is None or self._server.done():
            self._server = asyncio.create_task(self._serve())
        return await future

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None and not server.done():
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)
        self._fail(DeliveryError("the sender is stopping", retry_after=1.0))

    async def pause(self, seconds: float) -> None:
        until = self.pacing.clock() + seconds
        self.paused_until = max(self.paused_until, until)
        self._slots.clear()
        try:
            await self.pacing.db.run(lambda s: slots.pause(s, self.scope, until))
        except Exception as exc:  # noqa: BLE001 - this replica still pauses; the others learn at their next 429
            log.warning("could not share a rate-limit pause (%s)", type(exc).__name__)

    async def _serve(self) -> None:
        pacing, failures = self.pacing, 0
        while True:
            self._hand_out()
            if not self._waiting:
                return
            now = pacing.clock()
            urgent = self._waiting[0][0] == 0
            want = min(len(self._waiting), self.size)
            horizon = pacing.max_wait if urgent else pacing.lookahead

            asked: list[float] = []

            async def take(
                session: AsyncSession, want: int = want, horizon: float = horizon, asked: list[float] = asked
            ) -> slots.Slots:
                # Laid out from the moment the transaction runs, not from before it queued: a wait for the
                # database (SQLite's writer queue, a far server) must not make every slot stale on arrival,
                # which once had 16 tenants drop and retake their slots for ever. And laid out `latency`
                # ahead, so that the commit and the wake-up after it do not make them stale either.
                asked.append(pacing.clock())
                return await slots.take_slots(
                    session,
                    self.scope,
                    rate=self.rate,
                    burst=self.burst,
                    want=want,
                    now=asked[-1] + self.latency,
                    horizon=horizon,
                )

            try:
                got = await pacing.db.run(take)
            except Exception as exc:  # noqa: BLE001 - a database blip: wait a little, then tell the waiters
                failures += 1
                if failures < 4:
                    await asyncio.sleep(0.25 * failures)
                    continue
                log.warning("could not take send slots (%s); the messages are retried", type(exc).__name__)
                self._fail(DeliveryError("could not reach the database to pace sends", retry_after=5.0))
                failures = 0
                continue
            failures = 0
            self.paused_until = max(self.paused_until, got.paused_until)
            if got.times:
                self._slots.extend(self._arrived_late(got.times, asked[-1]))
                continue
            wait = got.next_free - now
            if wait > pacing.max_wait:
                self._fail(DeliveryError("waiting for the platform's rate limit", retry_after=wait, rate_limited=True))
                continue
            self._arrived.clear()  # a reply arriving meanwhile is served at once, from further ahead
            try:
                await asyncio.wait_for(self._arrived.wait(), max(0.005, wait - pacing.lookahead))
            except TimeoutError:
                pass

    def _arrived_late(self, times: list[float], asked: float) -> list[float]:
        """Slots as they can be used now, and the lesson for the next take. Slots the round trip made stale
        are dropped, and using them all at once would crowd the slots after them. The first is used at once
        unless a fresh one follows within one interval: a post must not wait for a retake that a slow
        database would make stale again, for ever."""
        arrived = self.pacing.clock()
        self.latency = min(self.pacing.block, 0.7 * self.latency + 0.3 * max(0.0, arrived - asked))
        fresh = [t for t in times if t >= arrived - STALE]
        if len(fresh) == len(times):
            return times
        if fresh and fresh[0] < arrived + 1.0 / self.rate:
            return fresh  # the stale one would go out less than an interval before it
        return [arrived, *fresh]

    def _hand_out(self) -> None:
        """Give the slots in hand to the waiters, most urgent first."""
        earliest = max(self.pacing.clock() - STALE, self.paused_until)
        while self._slots and self._slots[0] < earliest:
            self._slots.popleft()
        while self._slots and self._waiting:
            *_, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(self._slots.popleft())
        while self._waiting and self._waiting[0][2].done():
            heapq.heappop(self._waiting)

    def _fail(self, error: DeliveryError) -> None:
        waiting, self._waiting = self._waiting, []
        for *_, future in waiting:
            if not future.done():
                future.set_exception(error)


class Conversations:
    """Recent posts per conversation, for exact sliding windows. A post is known by a reference (an outbox
    row and part), so one this process made and the outbox's record of it are counted once."""

    def __init__(self, *, horizon: float = 3600.0, capacity: int = 20_000) -> None:
        self.horizon = horizon
        self.capacity = capacity
        self._posts: OrderedDict[str, dict[object, float]] = OrderedDict()
        self._paused: dict[str, float] = {}

    def earliest(self, conversation: str, windows: Iterable[tuple[int, float]], now: float) -> float:
        """The first moment from `now` on when one more post keeps every window (n posts per s seconds)."""
        at = max(now, self._paused.get(conversation, 0.0))
        posts = self._posts.get(conversation)
        if posts:
            times = sorted(t for t in posts.values() if t > now - self.horizon)
            for count, period in windows:
                if len(times) >= count:
                    at = max(at, times[-count] + period)
        return at

    def record(self, conversation: str, ref: object, at: float, *, keep: bool = True) -> None:
        """A post at `at`. `keep=False`: unless this process already knows it (its own time is exact)."""
        posts = self._posts.get(conversation)
        if posts is None:
            posts = self._posts[conversation] = {}
            if len(self._posts) > self.capacity:
                self._posts.popitem(last=False)
        else:
            self._posts.move_to_end(conversation)
        if keep or ref not in posts:
            posts[ref] = at
        if len(posts) > 64:
            cutoff = at - self.horizon
            for old in [r for r, t in posts.items() if t <= cutoff]:
                del posts[old]

    def pause(self, conversation: str, until: float) -> None:
        self._paused[conversation] = max(self._paused.get(conversation, 0.0), until)
        if len(self._paused) > self.capacity:
            now = time.time()
            self._paused = {c: t for c, t in self._paused.items() if t > now}
