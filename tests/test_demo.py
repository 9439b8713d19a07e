"""The demo organisation that `make run` seeds: eight weeks of believable history, this week left open."""

from __future__ import annotations

from collections import Counter
from itertools import groupby

from sqlalchemy import func, select

from bot.demo import seed_demo
from bot.reports import participation
from dialogs.common.periods import Rhythm, period_of
from dialogs.engine.clock import FakeClock
from dialogs.engine.sealing import Sealer
from dialogs.review360 import compute_results
from dialogs.services.rhythm import previous_periods
from storage.db import Database
from storage.models import (
    Answer360,
    Campaign360,
    CheckinRun,
    FeedbackEntry,
    Goal,
    GoalUpdate,
    OutboxMessage,
    Person,
    Pool360,
    SealedDraft,
    ToolPlan,
)
from tests.harness import SECRET, Chat, Rig


async def test_the_demo_has_eight_weeks_of_history_and_leaves_this_week_open(db: Database, clock: FakeClock) -> None:
    """Week one: `make run` started with no history, so every chart was one dot."""
    assert await seed_demo(db, clock, sealer=Sealer(SECRET.encode()), history=True)

    async def read(session):
        runs = list((await session.execute(select(CheckinRun))).scalars())
        goals = list((await session.execute(select(Goal))).scalars())
        updates = Counter((await session.execute(select(GoalUpdate.goal_id))).scalars())
        kinds = Counter((await session.execute(select(FeedbackEntry.kind))).scalars())
        campaign = (await session.execute(select(Campaign360))).scalars().one()
        results = await compute_results(session, campaign)
        answers = await session.scalar(select(func.count()).select_from(Answer360))
        pooled = await session.scalar(select(func.count()).select_from(Pool360))
        drafts = await session.scalar(select(func.count()).select_from(SealedDraft))
        plans = list((await session.execute(select(ToolPlan))).scalars())
        outbox = await session.scalar(select(func.count()).select_from(OutboxMessage))
        return runs, goals, updates, kinds, campaign, results, answers, pooled, drafts, plans, outbox

    runs, goals, updates, kinds, campaign, results, answers, pooled, drafts, plans, outbox = await db.run(read)
    people = {p.id: p for p in (await db.run(lambda s: s.execute(select(Person)))).scalars()}
    for person_id, own in groupby(sorted(runs, key=lambda r: r.person_id), key=lambda r: r.person_id):
        zone = people[person_id].timezone
        current = period_of(Rhythm().current_send(clock.now(), zone), zone)  # what `checkin` starts now
        assert sorted(r.period for r in own) == previous_periods(current, 9)[:-1]  # eight weeks, this one open
    report = await participation(db, "Platform", 8, clock.now())
    assert all(len([c for c in r["periods"].values() if c["pulse"]]) >= 5 for r in report["people"])
    answered = [r for r in runs if r.status == "answered"]
    assert len(answered) >= 8 * 4 * 0.8 and any(r.status == "skipped" for r in runs)
    assert len(goals) >= 3 and all(updates[g.id] >= 4 for g in goals if g.status == "active")
    assert {"green", "amber"} <= {g.rag for g in goals}
    assert kinds["kudos"] >= 3 and kinds["upward"] >= 1 and kinds["peer"] >= 1
    assert campaign.status == "closed" and answers and not pooled and not drafts
    peers = next(g for g in results.groups if g.group == "peer")
    assert peers.released and peers.raters >= 3 and peers.comments  # above its thresholds
    assert any(p.outcome for p in plans) and any(p.status == "closed" for p in plans)
    assert outbox == 0  # nobody's chat is filled with old messages: each person is greeted on first visit


async def test_the_demo_person_can_answer_this_weeks_check_in(db: Database, clock: FakeClock) -> None:
    await seed_demo(db, clock, sealer=Sealer(SECRET.encode()), history=True)
    rig = await Rig.create(db, clock, demo=False)
    chat: Chat = rig.chat("arjun@demo.baton")
    await chat.send("checkin")
    chat.expect("Question 1 of 5")
    maya = rig.chat("maya@demo.baton")
    await maya.send("goals")
    assert "no open goals" not in maya.expect("goal").text


async def test_no_history_without_asking_and_no_demo_twice(db: Database, clock: FakeClock) -> None:
    assert await seed_demo(db, clock)
    assert not await seed_demo(db, clock, sealer=Sealer(SECRET.encode()), history=True)
    count = await db.run(lambda s: s.scalar(select(func.count()).select_from(CheckinRun)))
    people = await db.run(lambda s: s.scalar(select(func.count()).select_from(Person)))
    assert count == 0 and people == 6


async def test_a_newcomer_sees_a_1on1_agenda_and_its_history_on_first_run(db: Database, clock: FakeClock) -> None:
    await seed_demo(db, clock, sealer=Sealer(SECRET.encode()), history=True)
    rig = await Rig.create(db, clock, demo=False)
    arjun = rig.chat("arjun@demo.baton")
    await arjun.send("1:1 agenda")
    agenda = arjun.expect("Agenda for your 1:1 with Maya")
    lines = "\n".join(agenda.card.lines if agenda.card else ())
    assert "Priority:" in lines and "Pulse:" in lines  # gathered from last week's check-in
    assert "From you: Career path after the migration" in lines
    assert "Maya: Ask the platform team for a staging database slot" in lines  # last time's open action
    maya = rig.chat("maya@demo.baton")
    await maya.send("1:1")
    maya.expect("Which 1:1?")

    async def held(session):
        from sqlalchemy import func, select

        from storage.models import Meeting, MeetingNote

        return (
            await session.scalar(select(func.count()).select_from(Meeting).where(Meeting.status == "held")),
            await session.scalar(select(func.count()).select_from(MeetingNote)),
        )

    assert await db.run(held) == (12, 1)  # three held 1:1s for each of four pairs; Maya's one private note


async def test_the_demo_holds_ideas_in_different_states_and_the_anonymous_one_finds_its_sender(
    db: Database, clock: FakeClock
) -> None:
    from sqlalchemy import select

    from dialogs.ideas import relay_person
    from storage.models import Idea

    sealer = Sealer(SECRET.encode())
    await seed_demo(db, clock, sealer=sealer, history=True)
    ideas = list(await db.run(lambda s: s.scalars(select(Idea))))
    assert sorted(i.state for i in ideas) == ["acknowledged", "decided", "received", "result"]
    [anonymous] = [i for i in ideas if i.signed_by_id is None]
    rig = await Rig.create(db, clock, demo=False)
    assert relay_person(sealer, anonymous) == rig.people["arjun@demo.baton"].id  # only with the secret
    arjun = rig.chat("arjun@demo.baton")
    await arjun.send("idea mine")
    assert "Fewer status meetings" in arjun.expect("Fewer status meetings").text
