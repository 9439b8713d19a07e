"""Retention: finished messages and old delivery keys are deleted; nothing waiting, nothing recent, nothing the
weekly budget or a retry still needs."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.scheduler import Scheduler
from dialogs.common.manners import budget_used
from dialogs.engine.clock import FakeClock
from dialogs.engine.messages import Reply
from dialogs.services.rhythm import Conductor
from storage import queries
from storage.db import Database
from storage.models import OutboxMessage, ProcessedEvent
from tests.harness import Rig


async def _queue(rig: Rig, key: str, *, days_ago: float, status: str, unsolicited: bool = False) -> None:
    when = rig.clock.now() - timedelta(days=days_ago)
    person = rig.people["tom@demo.baton"]

    async def work(session) -> None:
        row_id = await queries.enqueue(
            session,
            key=key,
            person_id=person.id,
            channel="local",
            address={},
            payload=Reply(f"secret {key}").to_dict(),
            due_at=when,
            now=when,
            unsolicited=unsolicited,
        )
        row = await session.get(OutboxMessage, row_id)
        row.status = status

    await rig.db.run(work)


async def test_finished_messages_past_retention_and_old_delivery_keys_are_forgotten(rig: Rig) -> None:
    await _queue(rig, "old-sent", days_ago=31, status="sent")
    await _queue(rig, "old-failed", days_ago=40, status="failed")
    await _queue(rig, "old-cancelled", days_ago=35, status="cancelled")
    await _queue(rig, "old-held", days_ago=33, status="held")  # a nudge the budget held: only shown for a week
    await _queue(rig, "old-but-waiting", days_ago=45, status="pending")  # never delivered: kept until it goes out
    await _queue(rig, "recent-sent", days_ago=29, status="sent")
    await _queue(rig, "this-week", days_ago=2, status="sent", unsolicited=True)
    for key, days in (("slack:U1:Ev-old", 15), ("slack:U1:Ev-new", 13)):
        created = rig.clock.now() - timedelta(days=days)
        await rig.db.run(lambda s, key=key, created=created: queries.mark_event_processed(s, key, created))
    tom = rig.people["tom@demo.baton"].id
    budget_before = await rig.db.run(lambda s: budget_used(s, [tom], rig.clock.now()))
    assert budget_before.get(tom) == 1  # this week's unsolicited message counts, and must go on counting

    scheduler = Scheduler(
        Conductor(rig.db, sealer=rig.sealer), rig.clock, interval=60, wake=lambda: None, retention_days=30
    )
    await scheduler.forget()

    kept = {row.key for row in await rig.db.run(lambda s: _all(s, OutboxMessage))}
    assert {"old-but-waiting", "recent-sent", "this-week"} <= kept
    assert not kept & {"old-sent", "old-failed", "old-cancelled", "old-held"}
    keys = {row.key for row in await rig.db.run(lambda s: _all(s, ProcessedEvent))}
    assert "slack:U1:Ev-new" in keys and "slack:U1:Ev-old" not in keys
    assert await rig.db.run(lambda s: budget_used(s, [tom], rig.clock.now())) == budget_before
    await scheduler.forget()  # again: nothing more to do, nothing breaks
    assert {row.key for row in await rig.db.run(lambda s: _all(s, OutboxMessage))} == kept


async def _all(session, model):
    return list(await session.scalars(select(model)))


async def test_what_people_wrote_is_forgotten_after_its_own_keeping_period(rig: Rig) -> None:
    """Check-ins, feedback and finished goals each have their period (BATON_KEEP_*_DAYS); 0 keeps for ever."""
    from sqlalchemy import func

    from bot.demo_history import people_by_key, seed_history
    from storage.models import CheckinRun, FeedbackEntry, Goal, Team
    from storage.retention import Keep, forget_old

    now = rig.clock.now()

    async def history(session) -> None:
        team = await session.scalar(select(Team))
        await seed_history(session, team, await people_by_key(session, team), now, rig.sealer)

    await rig.db.run(history)

    async def count(model, *where) -> int:
        return await rig.db.run(lambda s: s.scalar(select(func.count()).select_from(model).where(*where)))

    old_runs = await count(CheckinRun, CheckinRun.started_at < now - timedelta(days=21))
    recent_runs = await count(CheckinRun, CheckinRun.started_at >= now - timedelta(days=21))
    feedback = await count(FeedbackEntry)
    assert old_runs and recent_runs and feedback
    assert await rig.db.run(lambda s: forget_old(s, now, Keep(checkins=0, feedback=0, goals=0))) == {}
    done = await rig.db.run(lambda s: forget_old(s, now, Keep(checkins=21, feedback=0, goals=0)))
    assert done["checkin_run"] == old_runs and "feedback_entry" not in done
    assert await count(CheckinRun) == recent_runs and await count(FeedbackEntry) == feedback
    active = await count(Goal, Goal.status == "active")
    await rig.db.run(lambda s: forget_old(s, now + timedelta(days=4000), Keep(checkins=0, feedback=1, goals=1)))
    assert await count(FeedbackEntry) == 0
    assert await count(Goal) == active  # goals still being worked on are never forgotten


async def test_settled_ideas_and_what_a_retro_released_go_with_the_feedback_period(
    db: Database, clock: FakeClock
) -> None:
    """The demo's ideas and finished retro, a year on: settled ideas go with their threads, open ones stay;
    the retro keeps its row and counts but no longer its quotes, themes or proposals."""
    from sqlalchemy import func, select

    from bot.demo import seed_demo
    from dialogs.engine.sealing import Sealer
    from storage.models import Idea, Retro, RetroQuote, RetroTheme
    from storage.retention import Keep, forget_old
    from tests.harness import SECRET

    await seed_demo(db, clock, sealer=Sealer(SECRET.encode()), history=True)

    async def state(session):
        return (
            sorted((await session.scalars(select(Idea.state))).all()),
            await session.scalar(select(func.count()).select_from(RetroQuote)),
            await session.scalar(select(func.count()).select_from(RetroTheme)),
            await session.scalar(select(func.count()).select_from(Retro)),
        )

    ideas, quotes, themes, retros = await db.run(state)
    assert ideas == ["acknowledged", "decided", "received", "result"] and quotes and themes and retros == 1
    later = clock.now() + timedelta(days=400)
    await db.run(lambda s: forget_old(s, later, Keep(checkins=0, feedback=365, goals=0)))
    assert await db.run(state) == (["acknowledged", "received"], 0, 0, 1)
