"""Pacing shared by every replica (issue 16): slots from the database, replies first, exact conversation windows.

Two `Pacing`s on one database stand for two replicas here; tests/test_replicas.py runs two real
`baton serve` processes against the limit-enforcing fakes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from adapters.slack.delivery import SlackDelivery
from adapters.teams.connector import Connector
from adapters.teams.delivery import TeamsDelivery
from adapters.teams.limits import CONVERSATION_WINDOWS
from adapters.teams.options import TeamsOptions
from bot.outbox import OutboxSender
from bot.pacing import Conversations, Pacing
from dialogs.engine.delivery import DeliveryError, Limits, Outgoing
from dialogs.engine.messages import Reply
from storage import pacing as slots
from storage import queries
from storage.db import Database
from storage.models import Person
from tests.fakes.teams_connector import FakeConnector


def busiest_second(times: list[float]) -> int:
    """The most sends in any sliding one-second window (what a platform counting per second sees)."""
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_conversation_windows_keep_teams_limits() -> None:
    posts = Conversations()
    times = []
    for n in range(61):
        at = posts.earliest("c1", CONVERSATION_WINDOWS, 0.0)
        posts.record("c1", n, at)
        times.append(at)
    assert max(times[:7]) == 0.0 and times[7] == pytest.approx(1.0)  # 7 per second
    assert times[8] == pytest.approx(2.0)  # 8 per 2 seconds
    assert times[59] < 30.0 <= times[60]  # 60 per 30 s
    assert posts.earliest("c2", CONVERSATION_WINDOWS, 0.0) == 0.0  # another chat is not held up
    posts.pause("c2", 30.0)
    assert posts.earliest("c2", CONVERSATION_WINDOWS, 0.0) == 30.0  # after a 429, not before its Retry-After


def test_a_post_known_from_the_outbox_and_from_this_process_counts_once() -> None:
    posts = Conversations()
    posts.record("c", (7, 0), 100.0)  # this process posted outbox row 7 at 100.0
    posts.record("c", (7, 0), 100.05, keep=False)  # the outbox's record of the same post
    posts.record("c", (8, 0), 100.2, keep=False)  # a post by another replica
    assert posts.earliest("c", ((3, 1.0),), 100.3) == 100.3  # two posts in the window, not three
    assert posts.earliest("c", ((2, 1.0),), 100.3) == pytest.approx(101.0)


async def test_two_replicas_taking_slots_together_never_exceed_the_rate(db: Database) -> None:
    rate = 40.0
    replicas = [Pacing(db), Pacing(db)]
    limits = Limits("slack:T1", rate, "unused", ())
    times: list[float] = []

    async def post(replica: Pacing, n: int) -> None:
        pace = replica.pace(Limits("slack:T1", rate, f"slack:T1:U{n}", ()), urgent=False, ref=n)
        await pace.turn()
        times.append(time.time())

    started = time.time()
    await asyncio.gather(*(post(replicas[n % 2], n) for n in range(120)))
    elapsed = time.time() - started
    # The slots are exactly `rate` a second; a post woken a few milliseconds late can land in the next second's
    # window (which is why a deployment against a hard cap sets its rate a little below it).
    assert busiest_second(times) <= rate + 2
    assert 120 / rate - 0.5 < elapsed < 120 / rate + 1.5  # they share the rate, and use it
    assert replicas[0].lane(limits).rate == rate


async def test_a_pause_after_a_429_holds_every_replica(db: Database) -> None:
    first, second = Pacing(db), Pacing(db)
    limits = Limits("teams:tenant", 50.0, "teams:a", CONVERSATION_WINDOWS)
    await first.pace(limits, urgent=True, ref=1).pause(1.5)
    before = time.time()
    await second.pace(Limits("teams:tenant", 50.0, "teams:b", CONVERSATION_WINDOWS), urgent=True, ref=2).turn()
    assert time.time() - before >= 1.3  # the other replica waited out the pause it was never told of directly


async def test_a_reply_goes_ahead_of_a_bulk_drain(db: Database) -> None:
    pacing = Pacing(db)
    rate = 20.0
    done: dict[str, float] = {}

    async def post(name: str, urgent: bool) -> None:
        await pacing.pace(Limits("slack:T1", rate, f"slack:T1:{name}", ()), urgent=urgent, ref=name).turn()
        done[name] = time.time()

    started = time.time()
    bulk = [asyncio.create_task(post(f"bulk{n}", False)) for n in range(60)]  # three seconds of invitations
    await asyncio.sleep(0.3)
    await post("reply", True)
    await asyncio.gather(*bulk)
    assert done["reply"] - started < 1.5  # not behind the 3 s of bulk queued before it
    assert sum(1 for name, at in done.items() if name != "reply" and at > done["reply"]) > 30


class SlowDatabase:
    """The database, with every transaction taking `delay` longer (a busy SQLite writer queue, a far server)."""

    def __init__(self, db: Database, delay: float) -> None:
        self.db, self.delay, self.runs = db, delay, 0

    async def run(self, work: Callable) -> object:
        self.runs += 1
        await asyncio.sleep(self.delay)
        return await self.db.run(work)


async def test_slots_granted_after_a_slow_round_trip_are_used_not_dropped(db: Database) -> None:
    """Found by bench teams-turn: with 16 tenants on SQLite a round trip took longer than a slot's interval;
    every slot came back already 'stale', was dropped and taken again, for ever (16,476 slots taken and one
    message sent in a minute), burning the tenant's budget and the CPU."""
    await db.run(lambda s: slots.take_slots(s, "warm-up", rate=1, burst=1, want=1, now=time.time(), horizon=1))
    slow = SlowDatabase(db, delay=0.05)  # longer than 1/rate = 20 ms, spent waiting before the transaction
    pacing = Pacing(slow)  # type: ignore[arg-type]  # only run() is used
    limits = Limits("teams:slow-tenant", 50.0, "teams:a:chat", ())
    started = time.time()
    await asyncio.wait_for(pacing.pace(limits, urgent=True, ref=1).turn(), 2.0)
    assert time.time() - started < 1.0
    assert slow.runs == 1  # one slot of the tenant's budget for one post, not one per retry
    await pacing.close()


async def test_a_slot_further_than_max_wait_goes_back_to_the_outbox(db: Database) -> None:
    async def token(team: str | None, enterprise: str | None) -> str:
        return "xoxb-1"

    pacing = Pacing(db, max_wait=0.5)
    delivery = SlackDelivery(client=None, token_for=token)  # type: ignore[arg-type]  # never reached
    address = {"team": "T1", "channel": "U1", "user": "U1"}
    limits = delivery.limits(address)
    assert limits is not None
    pacing.conversations.pause(limits.conversation, time.time() + 3600)  # a chat told to wait an hour
    message = Outgoing(1, "k", 1, "slack", address, Reply("hi"), "reply", 1)
    with pytest.raises(DeliveryError) as raised:
        await delivery.deliver(message, pacing.pace(limits, urgent=True, ref=1))
    assert raised.value.rate_limited and raised.value.retry_after and raised.value.retry_after > 0.5
    # the shared budget: paused for an hour in the database, a bulk post is handed back at once too
    await db.run(lambda s: slots.pause(s, "slack:T2", time.time() + 3600))
    other = Limits("slack:T2", 10.0, "slack:T2:U1", ())
    with pytest.raises(DeliveryError) as raised:
        await pacing.pace(other, urgent=False, ref=2).turn()
    assert raised.value.rate_limited and not raised.value.permanent


async def test_slots_are_laid_out_at_the_rate_from_where_the_last_taker_left(db: Database) -> None:
    now = 1_000_000.0
    first = await db.run(lambda s: slots.take_slots(s, "x", rate=10.0, burst=1, want=5, now=now, horizon=0.25))
    assert first.times == pytest.approx([now, now + 0.1, now + 0.2])  # not beyond the horizon
    second = await db.run(lambda s: slots.take_slots(s, "x", rate=10.0, burst=1, want=2, now=now, horizon=10))
    assert second.times == pytest.approx([now + 0.3, now + 0.4])  # after the first taker's, never the same
    bursty = await db.run(lambda s: slots.take_slots(s, "y", rate=10.0, burst=3, want=4, now=now, horizon=10))
    assert bursty.times == pytest.approx([now, now, now, now + 0.1])


async def seed_people(db: Database, count: int) -> list[int]:
    now = datetime.now(UTC)

    async def work(session) -> list[int]:
        people = [Person(email=f"p{n}@pace.test", name=f"P{n}", timezone="UTC", created_at=now) for n in range(count)]
        session.add_all(people)
        await session.flush()
        return [p.id for p in people]

    return await db.run(work)


async def queue_rows(db: Database, rows: list[tuple[str, int, str, dict]]) -> None:
    """(key, person id, channel, address) each, due now, as scheduled (bulk) sends."""
    now = datetime.now(UTC)

    async def work(session) -> None:
        for key, person_id, channel, address in rows:
            await queries.enqueue(
                session,
                key=key,
                person_id=person_id,
                channel=channel,
                address=address,
                payload=Reply(f"message {key}").to_dict(),
                due_at=now,
                now=now,
                kind="checkin",
            )

    await db.run(work)


async def drain(senders: list[OutboxSender], done: Callable[[], bool], timeout: float) -> None:
    stop = asyncio.Event()
    runs = [asyncio.create_task(sender.run(stop)) for sender in senders]
    deadline = time.monotonic() + timeout
    try:
        while not done() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*runs)


async def test_two_senders_keep_teams_limits_per_tenant_and_per_conversation(db: Database) -> None:
    fake = await FakeConnector().start()
    fake.enforce_limits(tenant_cap=50)
    try:
        people = await seed_people(db, 101)

        def reference(conversation: str) -> dict:
            return {
                "serviceUrl": fake.url,
                "channelId": "msteams",
                "conversation": {"id": conversation, "tenantId": "tenant-1", "conversationType": "personal"},
                "user": {"id": "29:user"},
                "bot": {"id": "28:baton"},
            }

        rows = [(f"many:{n}", people[n], "teams", reference(f"a:{n}")) for n in range(100)]
        rows += [(f"one:{n}", people[100], "teams", reference("a:busy")) for n in range(12)]  # one chat, 12 posts
        await queue_rows(db, rows)
        options = TeamsOptions(None, None, None, True, tenant_rate=48)
        connectors = [Connector(options), Connector(options)]
        senders = [OutboxSender(db, [TeamsDelivery(c, tenant_rate=48)]) for c in connectors]
        started = time.monotonic()
        await drain(senders, lambda: len(fake.sent) >= len(rows), timeout=60)
        elapsed = time.monotonic() - started
        for connector in connectors:
            await connector.close()
    finally:
        await fake.stop()
    posted = Counter(r.body["text"] for r in fake.sent)
    assert len(posted) == len(rows) and max(posted.values()) == 1  # every message once
    assert fake.throttled == 0  # never over a limit, so never a 429
    assert max(fake.per_second.values()) <= 50
    busy = [r.at for r in fake.sent if r.conversation_id == "a:busy"]
    assert busiest_second(busy) <= 7 and elapsed >= 4.0  # the busy chat: 7 a second, 8 in two, then one a second
    assert [r.body["text"] for r in fake.sent if r.conversation_id == "a:busy"] == [
        f"message one:{n}" for n in range(12)
    ]  # and in order
