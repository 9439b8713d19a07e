"""The outbox and its sender: exactly-once keys, retries, isolation, order, concurrent drains."""

from __future__ import annotations

import asyncio

from sqlalchemy import select, text

from bot.outbox import OutboxSender
from bot.pacing import Pacing
from dialogs.engine.delivery import UNPACED, DeliveryError, Limits, Outgoing, Pace
from dialogs.engine.messages import Reply
from storage import queries
from storage.db import Database
from storage.models import OutboxMessage
from tests.harness import RecordingDelivery, Rig


async def queue(db: Database, rig: Rig, key: str, person_email: str, text: str, **kw) -> int | None:
    """The new row's id, or None when the key was queued before."""
    person = rig.people[person_email]
    now = rig.clock.now()
    return await db.run(
        lambda s: queries.enqueue(
            s,
            key=key,
            person_id=person.id,
            channel="local",
            address={},
            payload=Reply(text).to_dict(),
            due_at=kw.get("due_at", now),
            now=now,
        )
    )


async def rows(db: Database) -> list[OutboxMessage]:
    async def load(session):
        return list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())

    return await db.run(load)


async def test_the_same_key_is_queued_once(db: Database, rig: Rig) -> None:
    assert await queue(db, rig, "checkin:1:2026-W47", "tom@demo.baton", "hi")
    assert not await queue(db, rig, "checkin:1:2026-W47", "tom@demo.baton", "hi again")
    await rig.sender.drain_once()
    assert [m.reply.text for m in rig.delivery.sent] == ["hi"]


async def test_racing_writers_of_one_key_produce_one_row(db: Database, rig: Rig) -> None:
    results = await asyncio.gather(*(queue(db, rig, "race", "tom@demo.baton", f"copy {n}") for n in range(8)))
    # Ids, not True: on PostgreSQL the winner's id need not be 1, since losers of the race draw from the
    # sequence too (a sequence is not rolled back).
    assert sum(1 for r in results if r is not None) == 1
    assert len(await rows(db)) == 1


async def test_a_message_is_not_sent_before_it_is_due(db: Database, rig: Rig) -> None:
    await queue(db, rig, "later", "tom@demo.baton", "later", due_at=rig.clock.now().replace(hour=17))
    assert await rig.sender.drain_once() == 0
    rig.clock.advance(hours=8)
    assert await rig.sender.drain_once() == 1
    assert rig.delivery.sent[0].reply.text == "later"


async def test_a_transient_failure_is_retried_after_retry_after(db: Database, rig: Rig) -> None:
    await queue(db, rig, "k", "tom@demo.baton", "hello")
    rig.delivery.failures.append(DeliveryError("ratelimited", retry_after=30, rate_limited=True))
    await rig.sender.drain_once()
    (row,) = await rows(db)
    assert (row.status, row.attempts, row.last_error) == (
        "pending",
        0,
        "ratelimited",
    )  # a rate limit isn't a failed try
    rig.clock.advance(seconds=29)
    assert await rig.sender.drain_once() == 0
    rig.clock.advance(seconds=2)
    await rig.sender.drain_once()
    (row,) = await rows(db)
    assert row.status == "sent" and [m.reply.text for m in rig.delivery.sent] == ["hello"]


async def test_a_permanent_failure_is_marked_with_its_reason_and_not_retried(db: Database, rig: Rig) -> None:
    await queue(db, rig, "k", "tom@demo.baton", "hello")
    rig.delivery.failures.append(DeliveryError("account_inactive", permanent=True))
    await rig.sender.drain_once()
    rig.clock.advance(hours=1)
    assert await rig.sender.drain_once() == 0
    (row,) = await rows(db)
    assert (row.status, row.last_error) == ("failed", "account_inactive")


async def test_the_sender_gives_up_after_max_attempts(db: Database, rig: Rig) -> None:
    sender = OutboxSender(db, [rig.delivery], clock=rig.clock, max_attempts=3)
    await queue(db, rig, "k", "tom@demo.baton", "hello")
    for _ in range(3):
        rig.delivery.failures.append(DeliveryError("http_error"))
        await sender.drain_once()
        rig.clock.advance(minutes=10)  # past any backoff
    (row,) = await rows(db)
    assert row.status == "failed" and "gave up after 3 attempts" in row.last_error


async def test_rate_limits_never_make_the_sender_give_up(db: Database, rig: Rig) -> None:
    sender = OutboxSender(db, [rig.delivery], clock=rig.clock, max_attempts=3)
    await queue(db, rig, "k", "tom@demo.baton", "hello")
    for _ in range(6):
        rig.delivery.failures.append(DeliveryError("ratelimited", retry_after=1, rate_limited=True))
        await sender.drain_once()
        rig.clock.advance(seconds=2)
    await sender.drain_once()
    (row,) = await rows(db)
    assert (row.status, row.attempts) == ("sent", 1)


async def test_one_persons_failure_does_not_hold_up_another(db: Database, rig: Rig) -> None:
    class FailsForTom(RecordingDelivery):
        async def deliver(self, message, pace=UNPACED):
            if message.person_id == rig.people["tom@demo.baton"].id:
                raise DeliveryError("boom")
            await super().deliver(message)

    delivery = FailsForTom()
    sender = OutboxSender(db, [delivery], clock=rig.clock)
    await queue(db, rig, "a", "tom@demo.baton", "to tom")
    await queue(db, rig, "b", "aiko@demo.baton", "to aiko")
    await sender.drain_once()
    assert [m.reply.text for m in delivery.sent] == ["to aiko"]


async def test_a_persons_messages_keep_their_order_across_a_failure(db: Database, rig: Rig) -> None:
    for n in range(3):
        await queue(db, rig, f"m{n}", "tom@demo.baton", f"message {n}")
    rig.delivery.failures.append(DeliveryError("http_timeout", retry_after=0))
    await rig.sender.drain_once()
    assert rig.delivery.sent == []  # message 0 failed, so 1 and 2 waited
    await rig.sender.drain_once()
    assert [m.reply.text for m in rig.delivery.sent] == ["message 0", "message 1", "message 2"]


async def test_a_persons_messages_keep_their_order_when_the_retry_is_delayed(db: Database, rig: Rig) -> None:
    """Issue 16: the failed message moved to now + delay while the ones after it kept their old due_at, so
    the next claim sent 1 and 2 before 0. A message waiting for its retry holds back that person's later
    ones (and nobody else's)."""
    for n in range(3):
        await queue(db, rig, f"m{n}", "tom@demo.baton", f"message {n}")
    await queue(db, rig, "other", "aiko@demo.baton", "for Aiko")
    rig.delivery.failures.append(DeliveryError("http_timeout", retry_after=30))
    await rig.sender.drain_once()
    assert [m.reply.text for m in rig.delivery.sent] == ["for Aiko"]
    rig.clock.advance(seconds=5)
    await rig.sender.drain_once()
    assert [m.reply.text for m in rig.delivery.sent] == ["for Aiko"]  # 1 and 2 wait for 0
    rig.clock.advance(seconds=30)
    await rig.sender.drain_once()
    assert [m.reply.text for m in rig.delivery.sent] == ["for Aiko", "message 0", "message 1", "message 2"]


async def test_a_message_scheduled_for_later_does_not_hold_back_a_reply(db: Database, rig: Rig) -> None:
    await queue(db, rig, "reminder", "tom@demo.baton", "reminder", due_at=rig.clock.now().replace(hour=17))
    await queue(db, rig, "reply", "tom@demo.baton", "reply")
    await rig.sender.drain_once()
    assert [m.reply.text for m in rig.delivery.sent] == ["reply"]


async def test_two_senders_draining_together_deliver_each_message_once(db: Database, rig: Rig) -> None:
    people = list(rig.people)
    for n in range(120):
        await queue(db, rig, f"bulk-{n}", people[n % len(people)], f"n{n}")

    class Slow(RecordingDelivery):
        async def deliver(self, message, pace=UNPACED):
            await asyncio.sleep(0)  # let the other sender interleave
            await super().deliver(message)

    shared = Slow()
    senders = [OutboxSender(db, [shared], clock=rig.clock, batch=25) for _ in range(2)]

    async def drain(sender: OutboxSender) -> None:
        while await sender.drain_once():
            pass

    await asyncio.gather(*(drain(s) for s in senders))
    texts = [m.reply.text for m in shared.sent]
    assert len(texts) == 120 and len(set(texts)) == 120
    assert {r.status for r in await rows(db)} == {"sent"}


async def test_a_row_left_sending_by_a_dead_sender_is_taken_back_after_its_lease(db: Database, rig: Rig) -> None:
    await queue(db, rig, "k", "tom@demo.baton", "hello")

    class Dies(RecordingDelivery):
        async def deliver(self, message, pace=UNPACED):
            raise asyncio.CancelledError  # the process died mid-delivery

    dead = OutboxSender(db, [Dies()], clock=rig.clock)
    try:
        await dead.drain_once()
    except asyncio.CancelledError:
        pass
    (row,) = await rows(db)
    assert row.status == "sending"
    assert await rig.sender.drain_once() == 0  # still leased
    rig.clock.advance(minutes=3)
    assert await rig.sender.drain_once() == 1
    assert [m.reply.text for m in rig.delivery.sent] == ["hello"]


async def test_the_running_sender_claims_the_next_batch_while_one_is_still_being_delivered(
    db: Database, rig: Rig
) -> None:
    """`run` (what `baton serve` uses) pipelines batches: one slow message in the first batch does not keep
    the second from going out — and still every message goes out once, each person's in order."""
    emails = [e for e in rig.people if e != "sam@demo.baton"]
    await queue(db, rig, "slow", "sam@demo.baton", "slow one")  # its own recipient, first in the first batch
    for n in range(12):
        await queue(db, rig, f"m{n:02d}", emails[n % len(emails)], f"{emails[n % len(emails)]} {n:02d}")
    await queue(db, rig, "late", "tom@demo.baton", "tom late")
    ids = sorted(row.id for row in await rows(db))
    slow_id, second_batch = ids[0], set(ids[7:])
    second_batch_started = asyncio.Event()

    class SlowFirst(RecordingDelivery):
        async def deliver(self, message, pace=UNPACED):
            if message.id == slow_id:
                await second_batch_started.wait()  # deadlocks unless another batch is delivered meanwhile
            elif message.id in second_batch:
                second_batch_started.set()
            await super().deliver(message)

    delivery = SlowFirst()
    sender = OutboxSender(db, [delivery], clock=rig.clock, batch=7, poll_interval=0.01)
    stop = asyncio.Event()
    running = asyncio.create_task(sender.run(stop))
    try:
        for _ in range(500):
            if len(delivery.sent) == 14:
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
    texts = [m.reply.text for m in delivery.sent]
    assert sorted(texts) == sorted(set(texts)) and len(texts) == 14
    assert texts.index("slow one") > texts.index("tom late")  # the second batch went out past the stuck one
    for email in emails:
        mine = [t for t in texts if t.startswith(email)]
        assert mine == sorted(mine)
    assert all(row.status == "sent" for row in await rows(db))


async def test_a_delivery_outliving_its_lease_is_not_claimed_again_by_its_own_sender(db: Database, rig: Rig) -> None:
    """The lease lets another sender take over from a dead one; the sender still at it must not take its own
    row back and send it twice. And however many partial batches come in, at most `pipeline` go out at once."""
    gate, sent, concurrent, most = asyncio.Event(), [], [0], [0]

    class Stuck(RecordingDelivery):
        async def deliver(self, message, pace=UNPACED):
            concurrent[0] += 1
            most[0] = max(most[0], concurrent[0])
            try:
                await gate.wait()
                sent.append(message.id)
            finally:
                concurrent[0] -= 1

    sender = OutboxSender(db, [Stuck()], clock=rig.clock, poll_interval=0.01, pipeline=2)
    stop = asyncio.Event()
    running = asyncio.create_task(sender.run(stop))
    for n, email in enumerate(["tom@demo.baton", "aiko@demo.baton", "arjun@demo.baton", "lucia@demo.baton"]):
        await queue(db, rig, f"one-by-one {n}", email, f"message {n}")  # each its own partial batch
        sender.wake()
        for _ in range(20):
            await asyncio.sleep(0.01)
    rig.clock.advance(minutes=3)  # every lease has run out while the deliveries are still stuck
    for _ in range(30):
        await asyncio.sleep(0.01)
    assert most[0] <= 2
    gate.set()
    for _ in range(200):
        if len(sent) == 4:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(running, 10)
    assert sorted(sent) == sorted(set(sent)) and len(sent) == 4
    assert all(row.status == "sent" for row in await rows(db))


async def test_a_stuck_delivery_past_its_lease_is_sent_once(db: Database, rig: Rig) -> None:
    """One message stuck in delivery past its lease, with room in the pipeline: the sender keeps polling,
    but does not claim the row it is still sending."""
    gate, sent = asyncio.Event(), []

    class Stuck(RecordingDelivery):
        async def deliver(self, message, pace=UNPACED):
            await gate.wait()
            sent.append(message.id)

    sender = OutboxSender(db, [Stuck()], clock=rig.clock, poll_interval=0.01)
    await queue(db, rig, "stuck", "tom@demo.baton", "stuck")
    stop = asyncio.Event()
    running = asyncio.create_task(sender.run(stop))
    for _ in range(20):
        await asyncio.sleep(0.01)
    rig.clock.advance(minutes=3)
    for _ in range(20):
        await asyncio.sleep(0.01)
    gate.set()
    for _ in range(50):
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(running, 10)
    assert len(sent) == 1


class SlowDelivery(RecordingDelivery):
    """Accepts each message after `delay` seconds, like a platform at its rate limit."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def deliver(self, message: Outgoing, pace: Pace = UNPACED) -> None:
        await asyncio.sleep(self.delay)
        await super().deliver(message)


async def test_a_post_is_marked_sent_soon_after_the_platform_accepts_it_not_at_the_end_of_its_batch(
    db: Database, rig: Rig
) -> None:
    """Issue 23: a fan-out paced over many seconds was marked sent in one statement at the end of its
    batch, so a kill -9 half-way re-sent everything the platform had already accepted."""
    people = ["tom@demo.baton", "arjun@demo.baton", "lucia@demo.baton", "aiko@demo.baton"]
    for n in range(40):  # ten each: about 1.5 s of pacing
        await queue(db, rig, f"fan:{n}", people[n % 4], f"message {n}")
    slow = SlowDelivery(0.15)
    sender = OutboxSender(db, [slow], clock=rig.clock)
    claimed = await db.run(sender._claim)
    task = asyncio.create_task(sender._deliver_batch(claimed))
    while len(slow.sent) < 12:  # a third of the fan-out accepted by the platform
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # the marker's flush interval, and then some
    # Read while the batch is still going: a kill -9 now runs no finally block.
    marked = {r.key for r in await rows(db) if r.status == "sent"}
    accepted = {m.key for m in slow.sent}
    task.cancel()
    assert 12 <= len(accepted) < 40 and not task.done()
    assert len(accepted - marked) <= 4  # at most what went out in the last flush interval, one per person


class Unanswered(RecordingDelivery):
    """A paced platform that takes its slot and then never answers: posts are in flight when Baton stops."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()

    def limits(self, address: dict) -> Limits | None:
        return Limits("local:workspace", 50.0, "local:dm", ())

    async def deliver(self, message: Outgoing, pace: Pace = UNPACED) -> None:
        await pace.turn()
        self.started.set()
        await asyncio.Event().wait()


async def test_a_closed_sender_leaves_nothing_running_and_its_message_for_the_next_start(
    db: Database, rig: Rig
) -> None:
    """Found by CI: replies handed over with deliver_soon, pacing lanes and history lookups outlived Baton's
    close, one of them mid-transaction, so the next use of the SQLite file waited 30 s on its lock."""
    platform = Unanswered()
    sender = OutboxSender(db, [platform], clock=rig.clock, pacing=Pacing(db))
    row_id = await queue(db, rig, "reply:1", "tom@demo.baton", "hello")
    [row] = await rows(db)
    sender.deliver_soon([row.model_dump() | {"id": row_id}])
    await asyncio.wait_for(platform.started.wait(), 5)

    await asyncio.wait_for(sender.close(grace=0.2), 5)
    ours = ("bot/outbox.py", "bot/pacing.py", "storage/coalesce.py")
    alive = [t for t in asyncio.all_tasks() if any(p in t.get_coro().cr_code.co_filename for p in ours)]
    assert alive == [], alive
    assert [(r.status, r.sent_at) for r in await rows(db)] == [("pending", None)]  # sent by the next start
    sender.deliver_soon([row.model_dump() | {"id": row_id}])  # a turn finishing late: nothing starts
    assert not [t for t in asyncio.all_tasks() if "bot/outbox.py" in t.get_coro().cr_code.co_filename]
    async with db.engine.connect() as conn:  # and the file takes a writer at once
        await conn.execute(text("UPDATE outbox SET attempts = attempts WHERE id = :i"), {"i": row_id})
