"""1:1s: the rhythm per pair, the agenda that builds itself, notes and actions after, leave, skips, the invite."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import icalendar
from sqlalchemy import select

from dialogs.common.cadence import next_slot
from dialogs.common.invite import ics
from dialogs.common.manners import in_quiet_hours
from dialogs.common.periods import hhmm
from dialogs.engine.clock import tz
from dialogs.engine.messages import Reply
from dialogs.services.rhythm import Conductor
from storage.models import (
    ActionItem,
    Answer360,
    Campaign360,
    CheckinAnswer,
    CheckinRun,
    FeedbackEntry,
    FeedbackRequest,
    Goal,
    Leave,
    Meeting,
    MeetingNote,
    OneOnOne,
    OutboxMessage,
    Person,
    ToolPlan,
)
from tests.harness import Chat, Rig

# The demo's clock starts on Friday 2026-11-20 09:00 UTC. New pairs meet on the first Tuesday at least
# three days ahead, at 10:00 on the manager's (Maya's, Berlin's) clock: Tuesday 24 November, 09:00 UTC.
FIRST = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def shown(reply: Reply) -> str:
    """Everything a person reads in a message."""
    parts = [reply.text]
    if reply.card:
        parts += [reply.card.title, *(f"{k}: {v}" for k, v in reply.card.fields), *reply.card.lines]
    parts += [c.label for c in reply.choices]
    return "\n".join(parts)


async def tick(rig: Rig, conductor: Conductor | None = None) -> None:
    await (conductor or Conductor(rig.db, sealer=rig.sealer)).tick(rig.clock.now())
    await rig.sender.drain_once()


async def pair_of(rig: Rig, report_email: str) -> OneOnOne:
    report = rig.people[report_email]

    async def find(session):
        return await session.scalar(select(OneOnOne).where(OneOnOne.report_id == report.id))

    pair = await rig.db.run(find)
    assert pair is not None, "the scheduler gives every manager–report pair a 1:1 rhythm"
    return pair


def agendas(rig: Rig, person: Person) -> list[Reply]:
    return [r for r in rig.delivery.to(person.id) if r.card and r.card.title.startswith("1:1 with")]


async def seed_fortnight(rig: Rig) -> None:
    """Arjun's weeks since the pair's start: two check-ins, a goal, a request, a tool plan, kudos, a 360."""
    arjun, maya = rig.people["arjun@demo.baton"], rig.people["maya@demo.baton"]
    now = rig.clock.now()

    async def work(session):
        from dialogs.checkin import DEFAULT_QUESTIONS

        answers = [
            ("2026-W46", now - timedelta(days=8), {"pulse": 4, "blockers": "Flaky CI", "needs": "Nothing"}),
            (
                "2026-W47",
                now - timedelta(days=1),
                {
                    "pulse": 2,
                    "blockers": "Waiting on the staging database",
                    "priorities": "Ship the billing export",
                    "needs": "A decision on the vendor",
                },
            ),
        ]
        for period, when, values in answers:
            run = CheckinRun(
                person_id=arjun.id,
                team_id=arjun.team_id,
                period=period,
                questions=list(DEFAULT_QUESTIONS),
                status="answered",
                started_at=when,
                answered_at=when,
            )
            session.add(run)
            await session.flush()
            for question_id, value in values.items():
                number = value if isinstance(value, int) else None
                text = value if isinstance(value, str) else None
                session.add(
                    CheckinAnswer(run_id=run.id, question_id=question_id, text=text, number=number, updated_at=when)
                )
        session.add(
            Goal(owner_id=arjun.id, title="Cut p95 latency", start_date=date(2026, 10, 1), rag="amber", created_at=now)
        )
        session.add(
            FeedbackRequest(
                requester_id=arjun.id,
                responder_id=maya.id,
                topic="my design review",
                deadline=now + timedelta(days=5),
                created_at=now,
            )
        )
        session.add(
            ToolPlan(
                asked_by_id=maya.id,
                person_id=arjun.id,
                gap="unclear priorities",
                influence="expectations",
                tool_id="clarify-expectations",
                created_at=now - timedelta(days=10),
                follow_up_at=now + timedelta(days=3),
            )
        )
        tom = rig.people["tom@demo.baton"]
        session.add(
            FeedbackEntry(
                from_id=tom.id,
                to_id=arjun.id,
                kind="kudos",
                text="Great incident write-up",
                public=True,
                created_at=now - timedelta(days=2),
            )
        )
        session.add(
            FeedbackEntry(
                from_id=tom.id,
                to_id=arjun.id,
                kind="kudos",
                text="PRIVATE THANKS between us",
                created_at=now - timedelta(days=2),
            )
        )
        campaign = Campaign360(subject_id=arjun.id, created_by_id=maya.id, status="closed", created_at=now)
        session.add(campaign)
        await session.flush()
        session.add(
            Answer360(
                id="x1",
                campaign_id=campaign.id,
                group="peer",
                question_id="q1",
                comment="SECRET360 comment",
                written_on=now.date(),
            )
        )

    await rig.db.run(work)


async def test_the_agenda_builds_itself_from_the_fortnight_for_both_and_nobody_else(rig: Rig) -> None:
    maya, arjun, tom = (rig.people[f"{n}@demo.baton"] for n in ("maya", "arjun", "tom"))
    await tick(rig)  # pairs get their rhythm
    await seed_fortnight(rig)
    rig.clock.set(FIRST - timedelta(hours=24))  # Monday 10:00 in Berlin, 14:30 in Kolkata
    await tick(rig)
    [for_arjun] = agendas(rig, arjun)
    for_maya = next(r for r in agendas(rig, maya) if "Arjun" in r.card.title)  # type: ignore[union-attr]
    for reply in (for_arjun, for_maya):
        text = shown(reply)
        for expected in (
            "Priority: Ship the billing export",
            "Blocker: Waiting on the staging database",
            "Pulse: 4 → 2, going down",
            "Asked of the manager: A decision on the vendor",
            "Goal: Cut p95 latency (amber)",
            "my design review",
            "clarify expectations",
            "Kudos: 2 received — “Great incident write-up”",
        ):
            assert expected in text, (expected, text)
        assert "Flaky CI" not in text  # a blocker the latest check-in no longer names is resolved
        assert "SECRET360" not in text and "PRIVATE THANKS" not in text
        assert "Tue 24 Nov" in reply.text
    # Arjun's reads his own time: 10:00 Berlin is 14:30 in Kolkata.
    assert "14:30" in for_arjun.text and "10:00" in for_maya.text
    # One button per item, each opening it to note or mark it discussed.
    assert [c.label for c in for_arjun.choices[:8]] == [str(n) for n in range(1, 9)]
    # The private answer ("only your manager sees this") reaches the pair and nobody else.
    everyone_else = [r for p in rig.people.values() if p.id not in (maya.id, arjun.id) for r in rig.delivery.to(p.id)]
    assert not any("vendor" in shown(r) for r in everyone_else)
    # Tom's agenda has nothing of his own yet, and none of Arjun's.
    [for_tom] = agendas(rig, tom)
    assert "Nothing yet" in shown(for_tom) and "billing" not in shown(for_tom)


async def test_an_item_is_noted_and_marked_discussed_from_the_agenda_card(rig: Rig) -> None:
    arjun = rig.people["arjun@demo.baton"]
    chat = rig.chat("arjun@demo.baton")
    await tick(rig)
    await seed_fortnight(rig)
    rig.clock.set(FIRST - timedelta(hours=24))
    await tick(rig)
    card = chat.expect("Agenda for your 1:1 with Maya")
    await chat.press("2", on=card)
    chat.expect("Waiting on the staging database")
    await chat.press("Add a note")
    await chat.send("Platform team says Thursday")
    chat.expect("Noted")
    agenda = chat.expect("Agenda for your 1:1")
    assert "note: Platform team says Thursday" in shown(agenda)
    await chat.press("2", on=agenda)
    await chat.press("Mark discussed")
    assert "✓ discussed" in shown(chat.expect("Agenda for your 1:1"))
    assert agendas(rig, arjun)  # the scheduled card came first


async def test_talking_points_from_either_side_and_from_a_check_in_join_the_next_agenda(rig: Rig) -> None:
    await tick(rig)
    maya, arjun = rig.chat("maya@demo.baton"), rig.chat("arjun@demo.baton")
    await arjun.send("1:1 add Career path after the migration")
    arjun.expect("Added to your 1:1 with Maya on Tue 24 Nov 14:30")
    await maya.send("1:1 add arjun Hiring plan for Q1")
    maya.expect("Added to your 1:1 with Arjun on Tue 24 Nov 10:00")
    await maya.send("1:1 add")  # four reports: which one?
    maya.expect("Which 1:1?")
    await maya.press("Tom")
    maya.expect("What would you like to talk about?")
    await maya.send("Conference budget")
    maya.expect("Added to your 1:1 with Tom")
    await seed_fortnight(rig)
    run_id = await rig.db.run(
        lambda s: s.scalar(select(CheckinRun.id).where(CheckinRun.period == "2026-W47"))  # type: ignore[arg-type]
    )
    await arjun.send(f"1:1 discuss checkin:{run_id}:blockers")
    arjun.expect("Added to your 1:1 with Maya")
    rig.clock.set(FIRST - timedelta(hours=24))
    await tick(rig)
    text = shown(arjun.expect("Agenda for your 1:1 with Maya"))
    assert "From you: Career path after the migration" in text
    assert "From Maya: Hiring plan for Q1" in text
    assert "Conference budget" not in text
    assert "What slowed you down" in text  # the check-in answer Arjun chose to discuss


async def test_after_the_1on1_notes_actions_and_a_private_note_then_actions_carry_and_are_nudged(rig: Rig) -> None:
    maya_p, arjun_p = rig.people["maya@demo.baton"], rig.people["arjun@demo.baton"]
    conductor = Conductor(rig.db, sealer=rig.sealer, budget=2)
    maya, arjun = rig.chat("maya@demo.baton"), rig.chat("arjun@demo.baton")
    await tick(rig, conductor)
    rig.clock.set(FIRST - timedelta(hours=24))
    await tick(rig, conductor)
    rig.clock.set(FIRST + timedelta(minutes=30 + 31))  # the 1:1 ended half an hour ago
    await tick(rig, conductor)
    asked = maya.expect("How did your 1:1 with Arjun")  # with her other three reports', as one message
    assert not [r for r in rig.delivery.to(arjun_p.id) if "How did your 1:1" in r.text]  # the report isn't asked
    first = await rig.db.run(
        lambda s: s.scalar(
            select(Meeting.id).join(OneOnOne, OneOnOne.id == Meeting.pair_id).where(OneOnOne.report_id == arjun_p.id)
        )
    )
    await maya.press(f"1:1 notes meeting:{first}", on=asked)
    maya.expect("How did your 1:1 with Arjun")
    await maya.press("We met")
    maya.expect("Notes you both will see")
    await maya.send("Agreed to split the billing work")
    maya.expect("Any action items?")
    await maya.send("Draft the vendor comparison")
    maya.expect("Who does it?")
    await maya.press("Arjun")
    maya.expect("By when?")
    await maya.press("In a week")
    maya.expect("Action item noted")
    maya.expect("Another action item?")
    await maya.press("No more")
    maya.expect("private note")
    await maya.send("Arjun seemed tired; check in about workload")
    maya.expect("Thanks — recorded")

    async def state(session):
        meeting = await session.scalar(select(Meeting).where(Meeting.starts_at == FIRST))
        actions = list((await session.execute(select(ActionItem))).scalars())
        notes = list((await session.execute(select(MeetingNote))).scalars())
        return meeting, actions, notes

    meeting, actions, notes = await rig.db.run(state)
    assert meeting.status == "held" and "split the billing" in meeting.shared_notes
    [action] = [a for a in actions if a.pair_id == (await pair_of(rig, "arjun@demo.baton")).id]
    assert action.owner_id == arjun_p.id and action.due_on == date(2026, 12, 1)
    assert [n.author_id for n in notes] == [maya_p.id]
    # The private note never reaches Arjun, in any message.
    assert not any("tired" in shown(r) for r in rig.delivery.to(arjun_p.id))

    # Overdue on Arjun's calendar: nudged, once a week, within the budget.
    rig.clock.set(datetime(2026, 12, 2, 6, 0, tzinfo=UTC))  # 11:30 in Kolkata, the day after it was due
    await tick(rig, conductor)
    nudge = arjun.expect("An action item is due: “Draft the vendor comparison”")
    await tick(rig, conductor)
    arjun.expect_nothing()  # once a week, not every tick
    await arjun.press("A week later", on=nudge)
    arjun.expect("Moved to Wed 9 Dec")

    # The next agenda carries it while it is open.
    slot = FIRST + timedelta(weeks=2)
    rig.clock.set(slot - timedelta(hours=24))
    await tick(rig, conductor)
    agenda = arjun.expect("Agenda for your 1:1 with Maya")
    assert "you: Draft the vendor comparison, due Wed 9 Dec" in shown(agenda)
    await arjun.press(next(c.label for c in agenda.choices if c.label.startswith("Done: Draft")), on=agenda)
    arjun.expect("Done: Draft the vendor comparison")


async def test_shared_notes_that_would_overflow_are_refused_whole_and_can_be_sent_shorter(rig: Rig) -> None:
    """Adding to a held 1:1's shared notes never cuts anyone's words: too long is said, and nothing is lost."""
    maya = rig.chat("maya@demo.baton")
    await tick(rig)
    rig.clock.set(FIRST - timedelta(hours=24))
    await tick(rig)
    rig.clock.set(FIRST + timedelta(minutes=61))
    await tick(rig)
    asked = maya.expect("How did your 1:1 with Arjun")
    arjun_p = rig.people["arjun@demo.baton"]
    first = await rig.db.run(
        lambda s: s.scalar(
            select(Meeting.id).join(OneOnOne, OneOnOne.id == Meeting.pair_id).where(OneOnOne.report_id == arjun_p.id)
        )
    )
    earlier = "e" * 8000

    async def fill(session) -> None:
        meeting = await session.get(Meeting, first)
        meeting.shared_notes = earlier
        session.add(meeting)

    await rig.db.run(fill)
    await maya.press(f"1:1 notes meeting:{first}", on=asked)
    await maya.press("We met")
    maya.expect("Notes you both will see")
    await maya.send("x" * 200)
    told = maya.expect("shared notes are nearly full, so I haven't added these")
    assert "up to 91 characters" in told.text  # 8,100 less the 8,000 there, the line break and "— Maya: "
    await maya.send("Agreed on the export split")
    maya.expect("Any action items?")
    meeting = await rig.db.run(lambda s: s.get(Meeting, first))
    assert meeting.shared_notes == earlier + "\n— Maya: Agreed on the export split"


async def test_action_nudges_are_held_by_a_full_budget_not_dropped(rig: Rig) -> None:
    arjun = await overdue_runbook(rig)

    async def seed(session):
        for n in range(2):  # two nudges already this week
            session.add(
                OutboxMessage(
                    key=f"earlier-{n}",
                    person_id=arjun.id,
                    channel="local",
                    payload={"text": "x"},
                    kind="nudge",
                    unsolicited=True,
                    due_at=rig.clock.now() - timedelta(hours=n + 1),
                    status="sent",
                    created_at=rig.clock.now(),
                )
            )

    await rig.db.run(seed)
    await tick(rig, Conductor(rig.db, sealer=rig.sealer, budget=2))

    async def nudges(session):
        return list(
            (await session.execute(select(OutboxMessage).where(OutboxMessage.topic == "action-nudge"))).scalars()
        )

    [held] = await rig.db.run(nudges)
    assert held.status == "held" and held.last_error == "budget"
    rig.clock.advance(days=7)
    await tick(rig, Conductor(rig.db, sealer=rig.sealer, budget=2))
    assert any("Write the runbook" in r.text for r in rig.delivery.to(arjun.id))


async def test_an_overdue_action_is_nudged_once_a_calendar_week_as_the_rhythm_picture_says(rig: Rig) -> None:
    """One rule, read by the scheduler and by the picture: once per Monday-to-Sunday week of the owner's clock."""
    from dialogs.common.cadence import ACTION_NUDGE_RULE
    from dialogs.services.picture import picture_of
    from storage.models import Team

    arjun = await overdue_runbook(rig)

    async def nudged() -> int:
        return len([r for r in rig.delivery.to(arjun.id) if "Write the runbook" in r.text])

    zone = tz(arjun.timezone)
    days = [datetime(2026, 11, d, 11, 0, tzinfo=zone) for d in (25, 26, 29, 30)]  # Wed, Thu, Sun, Mon
    seen = []
    for moment in days:
        rig.clock.set(moment.astimezone(UTC))
        await tick(rig, Conductor(rig.db, sealer=rig.sealer, budget=10))
        seen.append(await nudged())
    assert seen == [1, 1, 1, 2]  # Wednesday's week ends on Sunday; Monday starts the next one

    async def rule(session) -> str:
        team = (await session.execute(select(Team).where(Team.id == arjun.team_id))).scalars().one()
        pic = await picture_of(session, team, rig.clock.now())
        return next(s.rule for s in pic.steps if s.kind == "action-nudge")

    assert ACTION_NUDGE_RULE in await rig.db.run(rule)


async def overdue_runbook(rig: Rig):
    """Arjun's pair, after a first tick, with an action item of his overdue since 19 November; Arjun."""
    arjun = rig.people["arjun@demo.baton"]
    pair = await pair_of_after_tick(rig)

    async def seed(session):
        session.add(
            ActionItem(
                owner_id=arjun.id,
                text="Write the runbook",
                due_on=date(2026, 11, 19),
                pair_id=pair.id,
                created_at=rig.clock.now(),
            )
        )

    await rig.db.run(seed)
    return arjun


async def record_notes(chat: Chat, shared: str, action: tuple[str, str, str]) -> None:
    """After "How did it go?" reached the notes: the shared notes, then one action item (text, owner, due)."""
    text, owner, due = action
    await chat.send(shared)
    await chat.send(text)
    await chat.press(owner)
    await chat.press(due)
    await chat.press("No more")


async def pair_of_after_tick(rig: Rig) -> OneOnOne:
    await tick(rig)
    return await pair_of(rig, "arjun@demo.baton")


async def test_a_manager_and_report_eleven_hours_apart_get_the_agenda_in_waking_hours_before_it(rig: Rig) -> None:
    arjun_id = rig.people["arjun@demo.baton"].id

    async def move(session):
        person = await session.get(Person, arjun_id)
        person.timezone = "Pacific/Honolulu"  # UTC−10; Maya in Berlin is UTC+1 in winter
        session.add(person)

    await rig.db.run(move)
    await rig.reload_people()
    pair = await pair_of_after_tick(rig)
    # 10:00 Berlin is 23:00 the evening before in Honolulu: quiet hours there run until the 1:1 begins.
    for hours in range(0, 30):
        rig.clock.set(FIRST - timedelta(hours=30) + timedelta(hours=hours))
        await Conductor(rig.db, sealer=rig.sealer).tick(rig.clock.now())

    async def queued(session):
        rows = await session.execute(select(OutboxMessage).where(OutboxMessage.topic == "1on1-agenda"))
        return {m.person_id: m.due_at for m in rows.scalars()}

    due = await rig.db.run(queued)
    for person in (rig.people["maya@demo.baton"], rig.people["arjun@demo.baton"]):
        when = due[person.id]
        local = when.astimezone(tz(person.timezone))
        assert not in_quiet_hours(local, hhmm(person.quiet_start), hhmm(person.quiet_end)), (person.name, local)
        assert when < FIRST, (person.name, when)
    assert pair.id is not None


async def test_leave_moves_a_1on1_to_the_next_day_both_are_in_and_tells_both(rig: Rig) -> None:
    arjun = rig.people["arjun@demo.baton"]
    await pair_of_after_tick(rig)

    async def leave(session):
        session.add(
            Leave(person_id=arjun.id, start=date(2026, 11, 24), end=date(2026, 11, 25), created_at=rig.clock.now())
        )

    await rig.db.run(leave)
    maya = rig.chat("maya@demo.baton")
    rig.clock.set(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    await tick(rig)

    async def meeting(session):
        pair = await session.scalar(select(OneOnOne).where(OneOnOne.report_id == arjun.id))
        return await session.scalar(select(Meeting).where(Meeting.pair_id == pair.id))

    moved = await rig.db.run(meeting)
    assert moved.starts_at == datetime(2026, 11, 26, 9, 0, tzinfo=UTC) and moved.moved == "leave"
    maya.expect("Your 1:1 with Arjun moved to Thu 26 Nov 10:00 because Arjun is away")
    # Arjun's leave starts on Tuesday: on Sunday he hears of it in his own time.
    assert [r.text for r in rig.delivery.to(arjun.id) if "moved" in r.text] == [
        "Your 1:1 with Maya moved to Thu 26 Nov 14:30 because you are away on Tue 24 Nov."
    ]
    rig.clock.set(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))  # the agenda comes the day before the new date
    await tick(rig)
    assert [r for r in agendas(rig, rig.people["maya@demo.baton"]) if "Thu 26 Nov" in r.card.title]  # type: ignore[union-attr]
    # No counting against the pair: a moved 1:1 isn't a skipped one.
    assert (await pair_of(rig, "arjun@demo.baton")).skipped_in_row == 0


async def test_three_unrecorded_1on1s_in_a_row_are_mentioned_to_the_manager_once(rig: Rig) -> None:
    maya = rig.people["maya@demo.baton"]
    await pair_of_after_tick(rig)
    for fortnight in range(4):
        rig.clock.set(FIRST + timedelta(weeks=2 * fortnight) - timedelta(hours=24))
        await tick(rig)
        rig.clock.set(FIRST + timedelta(weeks=2 * fortnight, days=4))
        await tick(rig)
    said = "\n".join(r.text for r in rig.delivery.to(maya.id))
    # Four pairs, each told once (at the third, folded into one message), never again at the fourth.
    assert said.count("were skipped or not recorded") == 4
    assert said.count("Your last 3 1:1s with") == 4 and "last 4" not in said


async def test_either_side_proposes_a_new_rhythm_and_the_other_confirms(rig: Rig) -> None:
    arjun, maya = rig.chat("arjun@demo.baton"), rig.chat("maya@demo.baton")
    await pair_of_after_tick(rig)
    await arjun.send("1:1 time")
    await arjun.press("Thursday")
    arjun.expect("On Maya's clock (Europe/Berlin)")
    await arjun.send("15:30")
    await arjun.press("Every week")
    await arjun.press("45 minutes")
    arjun.expect("I've asked Maya to confirm: every week on Thursday at 15:30, 45 minutes")
    assert (await pair_of(rig, "arjun@demo.baton")).weekday == 1  # nothing changes before Maya confirms
    asked = maya.expect("Arjun proposes a new rhythm")
    await maya.press("Confirm", on=asked)
    maya.expect("Your 1:1s are now every week on Thursday at 15:30, 45 minutes")
    arjun.expect("Maya confirmed")
    pair = await pair_of(rig, "arjun@demo.baton")
    assert (pair.weekday, pair.at, pair.every_weeks, pair.minutes, pair.proposal) == (3, "15:30", 1, 45, None)
    manager = rig.people["maya@demo.baton"]
    assert next_slot(pair, manager.timezone, rig.clock.now()) == datetime(2026, 11, 26, 14, 30, tzinfo=UTC)


async def test_a_button_of_a_replaced_proposal_never_confirms_the_newer_one(rig: Rig) -> None:
    """Arjun proposes a new rhythm; before Maya answers, she proposes asking Arjun "How did it go?" too.
    She is told hers replaces his; his old Confirm button then changes nothing (before the fix it would
    have confirmed her proposal, which he never saw as such), and hers still works."""
    arjun, maya = rig.chat("arjun@demo.baton"), rig.chat("maya@demo.baton")
    await pair_of_after_tick(rig)
    await arjun.send("1:1 time")
    await arjun.press("Thursday")
    await arjun.send("15:30")
    await arjun.press("Every week")
    await arjun.press("45 minutes")
    rhythm_proposal = maya.expect("Arjun proposes a new rhythm")
    await maya.send("1:1 ask-report on")
    await maya.press("Arjun")  # Maya has several reports
    maya.expect("I've asked Arjun to confirm", "It replaces Arjun's proposal, which no longer waits")
    ask_proposal = arjun.expect("Maya proposes that")

    await maya.press("Confirm", on=rhythm_proposal)  # the old button, pressed late
    maya.expect("That proposal was replaced by a newer one, so I changed nothing")
    pair = await pair_of(rig, "arjun@demo.baton")
    assert (pair.weekday, pair.ask_report) == (1, False) and pair.proposal is not None

    await arjun.press("Confirm", on=ask_proposal)
    pair = await pair_of(rig, "arjun@demo.baton")
    assert (pair.weekday, pair.ask_report, pair.proposal) == (1, True, None)


async def test_the_invitation_parses_back_as_the_pairs_recurring_rhythm(rig: Rig) -> None:
    pair = await pair_of_after_tick(rig)
    maya, arjun = rig.people["maya@demo.baton"], rig.people["arjun@demo.baton"]
    calendar = icalendar.Calendar.from_ical(ics(pair, maya, arjun, now=rig.clock.now()))
    [event] = calendar.walk("VEVENT")
    start = event.decoded("dtstart")
    assert str(start.tzinfo) == "Europe/Berlin" and start.replace(tzinfo=None) == datetime(2026, 11, 24, 10, 0)
    assert event.decoded("dtend") - start == timedelta(minutes=30)
    rule = event["rrule"]
    assert rule["FREQ"] == ["WEEKLY"] and rule["INTERVAL"] == [2] and rule["BYDAY"] == ["TU"]
    assert "Maya Chen / Arjun Rao" in str(event["summary"])
    assert calendar.walk("VTIMEZONE"), "a TZID needs its VTIMEZONE"
    chat = rig.chat("arjun@demo.baton")
    await chat.send("1:1 invite")
    link = chat.expect("Add your 1:1s to your calendar").text
    assert "/1on1/invite/" in link and link.split("/1on1/invite/")[1].startswith(f"{pair.id}-")


async def test_someone_without_a_manager_or_reports_is_told_what_to_do(rig: Rig) -> None:
    chat = rig.chat("sam@demo.baton")  # the admin, outside the reporting tree
    await chat.send("1:1")
    chat.expect("You don't have a 1:1 with anyone yet", "org import")


async def test_the_home_tab_shows_the_next_1on1_and_a_check_in_offers_to_discuss_the_blocker(rig: Rig) -> None:
    from dialogs.services.home import overview

    arjun = rig.people["arjun@demo.baton"]
    await tick(rig)
    home = await overview(rig.db, arjun.id, rig.clock.now())
    assert home is not None and ("Next 1:1", "Maya, Tue 24 Nov 14:30") in home.card.fields  # type: ignore[union-attr]
    assert "1:1" in [c.value for c in home.choices]
    chat = rig.chat("arjun@demo.baton")
    await chat.send("checkin")
    for answer in ("Shipped the export", "Waiting on the staging database", "3", "Billing", "nothing"):
        await chat.send(answer)
    thanks = chat.expect("Thanks, that's your check-in")
    assert [c.label for c in thanks.choices] == ["Discuss in our 1:1"]
    await chat.press("Discuss in our 1:1", on=thanks)
    chat.expect("Added to your 1:1 with Maya")
    await chat.send("1:1 agenda")
    assert "Blocker: What slowed you down" in shown(chat.expect("Agenda for your 1:1 with Maya"))


def test_any_talking_point_is_kept_exactly_or_refused_with_nothing_added(database_url: str) -> None:
    """Odd Unicode, markup, the longest allowed and one more: stored as typed (trimmed), or refused whole."""
    import asyncio

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from dialogs.engine.clock import FakeClock
    from dialogs.engine.routing import clean_text
    from dialogs.oneonone import MAX_POINT
    from storage.db import Database
    from storage.models import TalkingPoint
    from tests.conftest import _truncate

    texts = st.one_of(
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=60),
        st.sampled_from(
            [
                "line one\nline two",
                "\u202eevil",
                "💥" * 3,
                "*bold* <b>x</b> `code`",
                "é" * MAX_POINT,
                "x" * (MAX_POINT + 1),
            ]
        ),
    )
    with asyncio.Runner() as runner:
        db = Database(database_url)
        rig = runner.run(Rig.create(db, FakeClock(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))))
        chat = rig.chat("arjun@demo.baton")

        async def points() -> list[str]:
            async def read(session):
                return list((await session.execute(select(TalkingPoint.text).order_by(TalkingPoint.id))).scalars())

            return await db.run(read)

        @given(texts)
        @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        def add(text: str) -> None:
            try:
                check(text)
            finally:
                runner.run(chat.send("cancel"))  # the next example starts from no conversation
                chat.replies()

        def check(text: str) -> None:
            before = runner.run(points())
            runner.run(chat.send(f"1:1 add {text}"))
            replies = chat.replies()
            after = runner.run(points())
            # What the command holds after its word, once the engine has cleaned the message (control and
            # private-use characters go: a message of only those is no talking point, and is asked for).
            cleaned = clean_text(f"1:1 add {text}")
            typed = cleaned.split(None, 2)[2].strip() if len(cleaned.split(None, 2)) > 2 else ""
            if typed and len(typed) <= MAX_POINT:
                assert after == [*before, typed], replies
                assert any("Added to your 1:1" in r.text for r in replies)
            else:
                assert after == before
                assert replies and "something went wrong" not in replies[-1].text.casefold()
                said = replies[-1].text
                assert ("What would you like to talk about?" in said) if not typed else ("Nothing was added" in said)

        try:
            add()
        finally:
            runner.run(_truncate(db))
            runner.run(db.close())


async def test_two_replicas_ticking_together_build_each_agenda_and_count_each_skip_once(rig: Rig) -> None:
    import asyncio

    from storage.models import TalkingPoint

    await tick(rig)
    await seed_fortnight(rig)
    first, second = Conductor(rig.db, sealer=rig.sealer), Conductor(rig.db, sealer=rig.sealer)
    rig.clock.set(FIRST - timedelta(hours=24))
    await asyncio.gather(first.tick(rig.clock.now()), second.tick(rig.clock.now()))
    for days in (4, 4):  # the same late moment twice over, on both
        rig.clock.set(FIRST + timedelta(days=days))
        await asyncio.gather(first.tick(rig.clock.now()), second.tick(rig.clock.now()))

    async def read(session):
        refs = list((await session.execute(select(TalkingPoint.ref))).scalars())
        agendas = list(
            (await session.execute(select(OutboxMessage.key).where(OutboxMessage.topic == "1on1-agenda"))).scalars()
        )
        skipped = list((await session.execute(select(OneOnOne.skipped_in_row))).scalars())
        return refs, agendas, skipped

    refs, agendas, skipped = await rig.db.run(read)
    assert len(refs) == len(set(refs)) and len(refs) >= 8  # Arjun's items, once each
    assert len(agendas) == 8  # four pairs, two people each
    assert skipped == [1, 1, 1, 1]


async def test_feedback_and_a_goal_nudge_go_on_the_1on1_as_facts_not_words(rig: Rig) -> None:
    await tick(rig)
    from dialogs.feedback import delivered

    arjun = rig.chat("arjun@demo.baton")
    tom_p, arjun_p, sam_p = (rig.people[f"{n}@demo.baton"] for n in ("tom", "arjun", "sam"))

    async def kudos(session):
        entry = FeedbackEntry(
            from_id=tom_p.id,
            to_id=arjun_p.id,
            kind="kudos",
            text="The write-up made review easy",
            created_at=rig.clock.now(),
        )
        session.add(entry)
        await session.flush()
        return entry.id

    entry_id = await rig.db.run(kudos)
    got = delivered("Kudos from Tom:", "The write-up made review easy", tom_p, entry_id, recipient=arjun_p)
    assert "Discuss in our 1:1" in [c.label for c in got.choices]
    no_manager = delivered("Kudos from Tom:", "x", tom_p, entry_id, recipient=sam_p)
    assert "Discuss in our 1:1" not in [c.label for c in no_manager.choices]
    await arjun.send(next(c.value for c in got.choices if c.label == "Discuss in our 1:1"))
    arjun.expect("Added to your 1:1 with Maya")
    await arjun.send("1:1 agenda")
    text = shown(arjun.expect("Agenda for your 1:1 with Maya"))
    assert "Kudos received on Fri 20 Nov" in text and "write-up" not in text  # the fact, not the words

    from dialogs.goals import nudge_reply

    goal = Goal(id=7, owner_id=1, title="Cut p95 latency", start_date=date(2026, 10, 1), created_at=rig.clock.now())
    with_manager = nudge_reply(goal, "stale", None, date(2026, 11, 20), discuss=True)
    without = nudge_reply(goal, "stale", None, date(2026, 11, 20))
    assert with_manager.choices[-1].value == "1:1 discuss goal:7"
    assert "Discuss in our 1:1" not in [c.label for c in without.choices]


async def test_what_either_side_committed_to_elsewhere_is_on_their_1on1_agenda(rig: Rig) -> None:
    """A retro's commitment (an action item without a pair) is followed up in its owner's 1:1s."""
    arjun = rig.people["arjun@demo.baton"]
    chat = rig.chat("arjun@demo.baton")
    await tick(rig)

    async def commit(session):
        session.add(
            ActionItem(
                owner_id=arjun.id,
                text="Write the on-call handbook",
                due_on=date(2026, 12, 4),
                source="retro",
                created_at=rig.clock.now(),
            )
        )

    await rig.db.run(commit)
    rig.clock.set(FIRST - timedelta(hours=24))
    await tick(rig)
    text = shown(chat.expect("Agenda for your 1:1 with Maya"))
    assert "you: Write the on-call handbook, due Fri 4 Dec" in text
    tom_agenda = [r for r in agendas(rig, rig.people["tom@demo.baton"])]
    assert tom_agenda and "on-call handbook" not in shown(tom_agenda[0])


async def _meetings_of(rig: Rig, report_email: str) -> list[Meeting]:
    pair = await pair_of(rig, report_email)

    async def read(session):
        rows = await session.execute(select(Meeting).where(Meeting.pair_id == pair.id).order_by(Meeting.starts_at))
        return list(rows.scalars())

    return await rig.db.run(read)


async def _first_1on1_over(rig: Rig, conductor: Conductor | None = None) -> None:
    """The pairs' first 1:1s took place half an hour ago: "How did it go?" has been asked."""
    await tick(rig, conductor)
    rig.clock.set(FIRST - timedelta(hours=24))
    await tick(rig, conductor)
    rig.clock.set(FIRST + timedelta(minutes=30 + 31))
    await tick(rig, conductor)


async def test_a_skip_never_rewrites_a_recorded_1on1_and_only_who_records_may_skip(rig: Rig) -> None:
    maya, arjun = rig.chat("maya@demo.baton"), rig.chat("arjun@demo.baton")
    await _first_1on1_over(rig)
    [first] = [m for m in await _meetings_of(rig, "arjun@demo.baton") if m.starts_at == FIRST]
    await maya.send(f"1:1 notes meeting:{first.id}")
    await maya.press("We met")
    await maya.press("Skip")
    await maya.press("No more")
    await maya.press("Skip")
    maya.expect("Thanks — recorded")
    # The report isn't the one asked "How did it go?": a skip typed or pressed by them changes nothing.
    for command in ("1:1 skipped", f"1:1 skipped meeting:{first.id}"):
        await arjun.send(command)
        arjun.expect("Maya records how your 1:1s went", "left it as it was")
    # Nor does one from the manager over what she recorded as held: she hears what happened instead.
    await maya.send(f"1:1 skipped meeting:{first.id}")
    maya.expect("already recorded as held", "left it as it was")
    [again] = [m for m in await _meetings_of(rig, "arjun@demo.baton") if m.id == first.id]
    assert again.status == "held" and (await pair_of(rig, "arjun@demo.baton")).skipped_in_row == 0
    # A 1:1 that hasn't happened yet can't be marked skipped either, even named by a crafted command.
    await maya.send("1:1 with arjun")  # the menu gives the next 1:1 its row
    maya.replies()
    [upcoming] = [m for m in await _meetings_of(rig, "arjun@demo.baton") if m.starts_at > rig.clock.now()]
    await maya.send(f"1:1 skipped meeting:{upcoming.id}")
    assert [m.status for m in await _meetings_of(rig, "arjun@demo.baton") if m.id == upcoming.id] == ["planned"]


async def _ask_report(rig: Rig, report_email: str, on: bool = True) -> None:
    pair = await pair_of(rig, report_email)

    async def flip(session):
        row = await session.get(OneOnOne, pair.id)
        row.ask_report = on
        session.add(row)

    await rig.db.run(flip)


async def test_three_skips_recorded_in_chat_are_mentioned_to_the_manager_once_about_the_rhythm(rig: Rig) -> None:
    maya_p, arjun_p = rig.people["maya@demo.baton"], rig.people["arjun@demo.baton"]
    maya, arjun = rig.chat("maya@demo.baton"), rig.chat("arjun@demo.baton")
    await tick(rig)
    await _ask_report(rig, "arjun@demo.baton")  # so the third skip can come from Arjun
    for fortnight, who in enumerate((maya, maya, arjun, maya)):
        starts = FIRST + timedelta(weeks=2 * fortnight)
        rig.clock.set(starts - timedelta(hours=24))
        await tick(rig)
        rig.clock.set(starts + timedelta(minutes=61))
        await tick(rig)
        [meeting] = [m for m in await _meetings_of(rig, "arjun@demo.baton") if m.starts_at == starts]
        await who.send(f"1:1 skipped meeting:{meeting.id}")
        who.expect("Noted as skipped")
    about_arjun = [r.text for r in rig.delivery.to(maya_p.id) if "Arjun" in r.text and "skipped" in r.text]
    # Told once, at the third (which Arjun recorded), to Maya, about the rhythm — never at the fourth.
    assert about_arjun == [
        "Your last 3 1:1s with Arjun were skipped or not recorded. Does the rhythm still fit you both?"
    ], about_arjun
    assert not any("in a row" in r.text or "last 3" in r.text for r in rig.delivery.to(arjun_p.id))
    assert not any("in a row" in r.text for r in rig.delivery.to(maya_p.id))
    assert (await pair_of(rig, "arjun@demo.baton")).skipped_in_row == 4


async def test_a_skip_recorded_after_the_scheduler_counted_it_unrecorded_is_not_counted_twice(rig: Rig) -> None:
    maya = rig.chat("maya@demo.baton")
    await _first_1on1_over(rig)
    rig.clock.set(FIRST + timedelta(days=4))
    await tick(rig)  # nobody recorded it: counted once, as unrecorded
    [first] = [m for m in await _meetings_of(rig, "arjun@demo.baton") if m.starts_at == FIRST]
    assert first.status == "unrecorded"
    await maya.send(f"1:1 skipped meeting:{first.id}")
    maya.expect("Noted as skipped")
    assert (await pair_of(rig, "arjun@demo.baton")).skipped_in_row == 1


async def test_the_pair_chooses_to_ask_the_report_too_and_both_notes_are_kept_once(rig: Rig) -> None:
    maya_p, arjun_p = rig.people["maya@demo.baton"], rig.people["arjun@demo.baton"]
    maya, arjun = rig.chat("maya@demo.baton"), rig.chat("arjun@demo.baton")
    await tick(rig)
    # Maya proposes it from the 1:1 menu; Arjun confirms, as with a new rhythm.
    await maya.send("1:1 with arjun")
    await maya.press("Ask Arjun too after 1:1s")
    maya.expect("I've asked Arjun to confirm: “How did it go?” goes to Arjun too after each 1:1")
    assert not (await pair_of(rig, "arjun@demo.baton")).ask_report  # nothing changes before Arjun confirms
    asked = arjun.expect("Maya proposes that “How did it go?” goes to you too after each 1:1")
    await arjun.press("Confirm", on=asked)
    arjun.expect("From now on, “How did it go?” goes to you too after each 1:1")
    maya.expect("Arjun confirmed")
    assert (await pair_of(rig, "arjun@demo.baton")).ask_report
    await arjun.send("1:1")
    assert "Stop asking me after 1:1s" in [c.label for c in arjun.expect("Your next 1:1 with Maya").choices]

    # After the 1:1 both are asked, once each.
    rig.clock.set(FIRST - timedelta(hours=24))
    await tick(rig)
    rig.clock.set(FIRST + timedelta(minutes=61))
    await tick(rig)
    for_maya = maya.expect("How did your 1:1 with Arjun")  # folded with her other reports'
    for_arjun = arjun.expect("How did your 1:1 with Maya")
    [first] = [m for m in await _meetings_of(rig, "arjun@demo.baton") if m.starts_at == FIRST]
    await maya.press(f"1:1 notes meeting:{first.id}", on=for_maya)
    await maya.press("We met")
    await record_notes(maya, "Agreed to split the billing work", ("Draft the vendor comparison", "Arjun", "In a week"))
    await maya.send("MAYA-PRIVATE workload")
    maya.expect("Thanks — recorded")
    # Arjun adds to what Maya recorded: he isn't asked again whether they met.
    await arjun.press("Add notes and actions", on=for_arjun)
    arjun.expect("is recorded as held")
    arjun.expect("Notes you both will see")
    await record_notes(arjun, "I'll pair with Tom on the export", ("Book the pairing session", "Me", "No date"))
    await arjun.send("ARJUN-PRIVATE nervous about the review")
    arjun.expect("Thanks — recorded")
    # Later ticks ask nobody again.
    for hours in (2, 30, 80):
        rig.clock.set(FIRST + timedelta(hours=hours))
        await tick(rig)

    async def state(session):
        meeting = await session.scalar(select(Meeting).where(Meeting.starts_at == FIRST, Meeting.pair_id == pair.id))
        notes = list((await session.execute(select(MeetingNote).order_by(MeetingNote.id))).scalars())
        actions = list((await session.execute(select(ActionItem).where(ActionItem.pair_id == pair.id))).scalars())
        return meeting, notes, actions

    pair = await pair_of(rig, "arjun@demo.baton")
    meeting, notes, actions = await rig.db.run(state)
    assert meeting.status == "held"
    # Both wrote shared notes, so each part names its author.
    assert meeting.shared_notes == "— Maya: Agreed to split the billing work\n— Arjun: I'll pair with Tom on the export"
    assert [(n.author_id, n.text.split()[0]) for n in notes] == [
        (maya_p.id, "MAYA-PRIVATE"),
        (arjun_p.id, "ARJUN-PRIVATE"),
    ]
    assert sorted((a.text, a.owner_id) for a in actions) == [
        ("Book the pairing session", arjun_p.id),
        ("Draft the vendor comparison", arjun_p.id),
    ]
    for person, private in ((maya_p, "ARJUN-PRIVATE"), (arjun_p, "MAYA-PRIVATE")):
        said = rig.delivery.to(person.id)
        assert not any(private in shown(r) for r in said)  # a private note stays its author's
        assert sum("How did your 1:1 with" in r.text and "(Tue 24 Nov" in r.text for r in said) == 1


async def test_asking_the_report_too_can_be_proposed_by_text_and_declined(rig: Rig) -> None:
    maya, arjun = rig.chat("maya@demo.baton"), rig.chat("arjun@demo.baton")
    await tick(rig)
    await arjun.send("1:1 ask-report on")
    arjun.expect("I've asked Maya to confirm")
    await maya.send("1:1 with arjun")
    menu = maya.expect("Arjun proposed: “How did it go?” goes to Arjun too after each 1:1")
    await maya.press("Keep the current one", on=menu)
    maya.expect("From now on, only you get “How did it go?” after each 1:1")
    arjun.expect("Maya kept it as it was. From now on, only Maya gets “How did it go?”")
    assert not (await pair_of(rig, "arjun@demo.baton")).ask_report
    await arjun.send("1:1 ask-report off")
    arjun.expect("That's how it is already")


async def _crowded_agenda(rig: Rig, points: int = 14, actions: int = 5) -> OneOnOne:
    """Arjun's pair with `points` talking points and `actions` open action items."""
    from storage.models import TalkingPoint

    pair = await pair_of_after_tick(rig)
    arjun = rig.people["arjun@demo.baton"]

    async def seed(session):
        for n in range(1, points + 1):
            session.add(
                TalkingPoint(
                    pair_id=pair.id, author_id=arjun.id, source="typed", text=f"Topic {n}", created_at=rig.clock.now()
                )
            )
        for n in range(1, actions + 1):
            session.add(ActionItem(owner_id=arjun.id, text=f"Chore {n}", pair_id=pair.id, created_at=rig.clock.now()))

    await rig.db.run(seed)
    return pair


async def test_every_item_of_a_long_agenda_can_be_noted_marked_or_done_page_by_page(rig: Rig) -> None:
    from storage.models import TalkingPoint

    pair = await _crowded_agenda(rig)
    arjun = rig.chat("arjun@demo.baton")
    rig.clock.set(FIRST - timedelta(hours=24))
    await tick(rig)
    card = arjun.expect("Agenda for your 1:1 with Maya")
    labels = [c.label for c in card.choices]
    assert labels[:10] == [str(n) for n in range(1, 11)] and "More items" in labels
    assert len(card.choices) <= 13  # ten items a page, more, add
    assert "14. From you: Topic 14" in shown(card) and "Chore 5" in shown(card)  # the whole agenda is listed
    await arjun.press("More items", on=card)
    more = arjun.expect("Agenda for your 1:1 with Maya", "items 11–19 of 19")
    assert [c.label for c in more.choices[:4]] == ["11", "12", "13", "14"]
    assert [c.label for c in more.choices[4:9]] == [f"Done: Chore {n}" for n in range(1, 6)]
    assert "Topic 3" not in shown(more)  # the next page as its own card
    await arjun.press("14", on=more)
    arjun.expect("Topic 14")
    await arjun.press("Add a note")
    await arjun.send("Bring the offsite dates")
    arjun.expect("Noted")
    back = arjun.expect("items 11–19 of 19")  # back where he was
    await arjun.press("13", on=back)
    await arjun.press("Mark discussed")
    back = arjun.expect("items 11–19 of 19")
    await arjun.press("Done: Chore 5", on=back)
    arjun.expect("Done: Chore 5")

    async def read(session):
        rows = await session.execute(select(TalkingPoint).where(TalkingPoint.pair_id == pair.id))
        points = {p.text: p for p in rows.scalars()}
        chore = await session.scalar(select(ActionItem).where(ActionItem.text == "Chore 5"))
        return points, chore

    points, chore = await rig.db.run(read)
    assert points["Topic 14"].note == "Bring the offsite dates" and points["Topic 13"].discussed_at is not None
    assert chore.done_at is not None
    # Typed, the agenda pages the same way.
    await arjun.send("1:1 agenda")
    await arjun.press("More items", on=arjun.expect("Agenda for your 1:1 with Maya"))
    assert "Done: Chore 4" in [c.label for c in arjun.expect("items 11–18 of 18").choices]
