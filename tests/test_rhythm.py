"""The weekly rhythm (dialogs.services.rhythm.Conductor) and the participation report, on both databases.

Each test drives `Conductor.tick()` at chosen UTC instants against the real
database, drains the outbox through the recording channel, and checks what
was queued (outbox rows) and what was delivered. The demo team "Platform"
checks in on Friday 16:00 in each person's own zone: Aiko (Tokyo) 07:00 UTC,
Arjun (Kolkata) 10:30 UTC, Maya and Tom (Berlin) 15:00 UTC, Lucía (Mexico
City) 22:00 UTC — all on Friday 2026-11-20, ISO week 2026-W47.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.reports import as_csv, as_json, participation
from dialogs.common.periods import local_datetime, period_of
from dialogs.engine.messages import Reply
from dialogs.services.rhythm import Conductor, TickReport, previous_periods
from storage.models import CheckinRun, Leave, OutboxMessage, Person, Team
from tests.harness import Chat, Rig

W47 = "2026-W47"
W48 = "2026-W48"
LA = ZoneInfo("America/Los_Angeles")
BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# -- helpers ---------------------------------------------------------------------------------


async def pid(rig: Rig, email: str) -> int:
    person = rig.people[email]
    assert person.id is not None
    return person.id


async def add_person(
    rig: Rig, email: str, name: str, zone: str, *, team: str = "Platform", manager: str | None = "maya@demo.baton"
) -> int:
    """A new active person in `team` (created if missing, with the default rhythm)."""

    async def work(session) -> int:
        team_row = (await session.execute(select(Team).where(Team.name == team))).scalars().first()
        if team_row is None:
            team_row = Team(name=team, created_at=rig.clock.now())
            session.add(team_row)
            await session.flush()
        manager_id = None
        if manager:
            manager_id = (await session.execute(select(Person.id).where(Person.email == manager))).scalar_one()
        person = Person(
            email=email,
            name=name,
            timezone=zone,
            team_id=team_row.id,
            manager_id=manager_id,
            created_at=rig.clock.now(),
        )
        session.add(person)
        await session.flush()
        return person.id

    person_id = await rig.db.run(work)
    await rig.reload_people()
    return person_id


async def add_team(rig: Rig, name: str, **rhythm: object) -> int:
    async def work(session) -> int:
        team = Team(name=name, created_at=rig.clock.now(), **rhythm)
        session.add(team)
        await session.flush()
        return team.id

    return await rig.db.run(work)


async def platform_id(rig: Rig) -> int:
    return await rig.db.run(lambda s: _scalar(s, select(Team.id).where(Team.name == "Platform")))


async def _scalar(session, statement):
    return (await session.execute(statement)).scalar_one()


async def outbox(
    rig: Rig,
    *,
    topic: str | None = None,
    person_id: int | None = None,
    kind: str | None = None,
    topic_prefix: str | None = None,
) -> list[OutboxMessage]:
    """Outbox rows matching every filter given, oldest first."""

    async def work(session) -> list[OutboxMessage]:
        statement = select(OutboxMessage).order_by(OutboxMessage.id)
        if topic is not None:
            statement = statement.where(OutboxMessage.topic == topic)
        if topic_prefix is not None:
            statement = statement.where(OutboxMessage.topic.like(f"{topic_prefix}%"))
        if person_id is not None:
            statement = statement.where(OutboxMessage.person_id == person_id)
        if kind is not None:
            statement = statement.where(OutboxMessage.kind == kind)
        return list((await session.execute(statement)).scalars())

    return await rig.db.run(work)


async def tick(rig: Rig, when: datetime, conductor: Conductor | None = None, **options: object) -> TickReport:
    """Move the clock to `when`, tick once, and deliver whatever is due by then."""
    rig.clock.set(when)
    report = await (conductor or Conductor(rig.db, sealer=rig.sealer)).tick(when, **options)  # type: ignore[arg-type]
    await rig.sender.drain_once()
    return report


def delivered(rig: Rig, person_id: int, fragment: str) -> list[Reply]:
    return [r for r in rig.delivery.to(person_id) if fragment.casefold() in r.text.casefold()]


def invitations(rig: Rig, person_id: int, period: str = W47) -> list[Reply]:
    """Delivered invitations (first sends and snooze re-sends) for `period`."""
    return [
        r
        for r in rig.delivery.to(person_id)
        if any(c.value == f"checkin start {period}" for c in r.choices) and "check-in time" in r.text
    ]


def reminders(rig: Rig, person_id: int) -> list[Reply]:
    return delivered(rig, person_id, "gentle reminder")


async def answer_checkin(chat: Chat, invitation: Reply, answers: list[str | None]) -> None:
    """Press Start on `invitation` and answer every question in order (None presses Skip question)."""
    await chat.press("Start", on=invitation)
    for number, answer in enumerate(answers, 1):
        prompt = chat.expect(f"Question {number} of {len(answers)}")
        if answer is None:
            await chat.press("Skip question", on=prompt)
        elif prompt.rating is not None:
            await chat.press(answer, on=prompt)
        else:
            await chat.send(answer)
    chat.expect("Thanks, that's your check-in")


async def run_of(rig: Rig, person_id: int, period: str) -> CheckinRun | None:
    async def work(session) -> CheckinRun | None:
        statement = select(CheckinRun).where(CheckinRun.person_id == person_id, CheckinRun.period == period)
        return (await session.execute(statement)).scalars().first()

    return await rig.db.run(work)


# -- 1. the invitation arrives at 16:00 local, wherever people are --------------------------


async def test_tokyo_is_invited_at_16_00_local_and_not_a_minute_before(rig: Rig) -> None:
    aiko = await pid(rig, "aiko@demo.baton")
    await tick(rig, utc(2026, 11, 20, 6, 59))
    assert await outbox(rig, person_id=aiko, topic=f"checkin:{W47}") == []
    assert invitations(rig, aiko) == []

    report = await tick(rig, utc(2026, 11, 20, 7, 0))
    rows = await outbox(rig, person_id=aiko, topic=f"checkin:{W47}")
    assert len(rows) == 1
    assert rows[0].due_at == utc(2026, 11, 20, 7, 0)
    assert rows[0].due_at.astimezone(TOKYO).strftime("%a %H:%M") == "Fri 16:00"
    assert rows[0].unsolicited and rows[0].kind == "checkin"
    assert report.invited == 1  # nobody else's 16:00 has come yet
    [reply] = invitations(rig, aiko)
    assert "check-in time for week 47" in reply.text and reply.text.startswith("Hi Aiko")
    assert [c.label for c in reply.choices] == ["Start", "Snooze", "Skip this week"]


async def test_los_angeles_is_invited_at_16_00_local_which_is_saturday_in_utc(rig: Rig) -> None:
    lee = await add_person(rig, "lee@demo.baton", "Lee Park", "America/Los_Angeles")
    await tick(rig, utc(2026, 11, 20, 23, 59))
    assert await outbox(rig, person_id=lee, topic_prefix="checkin") == []

    await tick(rig, utc(2026, 11, 21, 0, 0))
    rows = await outbox(rig, person_id=lee, topic_prefix="checkin")
    assert [r.topic for r in rows] == [f"checkin:{W47}"]  # the ISO week of the LOCAL Friday, not of Saturday UTC
    assert rows[0].due_at == utc(2026, 11, 21, 0, 0)
    assert rows[0].due_at.astimezone(LA).strftime("%a %H:%M") == "Fri 16:00"
    [reply] = invitations(rig, lee)
    assert reply.text.startswith("Hi Lee, it's check-in time for week 47")


# -- 2. daylight saving time ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("send", "period"),
    [
        (utc(2026, 10, 30, 23, 0), "2026-W44"),  # Friday before US DST ends: 16:00 PDT
        (utc(2026, 11, 7, 0, 0), "2026-W45"),  # Friday after: 16:00 PST, Saturday in UTC
    ],
    ids=["pdt", "pst"],
)
async def test_los_angeles_stays_at_16_00_across_the_end_of_dst(rig: Rig, send: datetime, period: str) -> None:
    lee = await add_person(rig, "lee@demo.baton", "Lee Park", "America/Los_Angeles")
    await tick(rig, send - timedelta(minutes=1))
    assert await outbox(rig, person_id=lee) == []
    await tick(rig, send)
    [row] = await outbox(rig, person_id=lee)
    assert row.topic == f"checkin:{period}"
    assert row.due_at == send
    assert row.due_at.astimezone(LA).strftime("%a %H:%M") == "Fri 16:00"
    assert len(invitations(rig, lee, period)) == 1


async def test_one_person_in_los_angeles_gets_both_weeks_around_dst_at_16_00(rig: Rig) -> None:
    lee = await add_person(rig, "lee@demo.baton", "Lee Park", "America/Los_Angeles")
    for send in (utc(2026, 10, 30, 23, 0), utc(2026, 11, 7, 0, 0)):
        await tick(rig, send - timedelta(minutes=1))
        await tick(rig, send)
    rows = await outbox(rig, person_id=lee, kind="checkin")
    assert [(r.topic, r.due_at) for r in rows] == [
        ("checkin:2026-W44", utc(2026, 10, 30, 23, 0)),
        ("checkin:2026-W45", utc(2026, 11, 7, 0, 0)),
    ]
    # the week between is 169 hours long in UTC: the wall clock, not the UTC hour, is what stays put
    assert rows[1].due_at - rows[0].due_at == timedelta(days=7, hours=1)


async def test_berlin_stays_at_16_00_across_the_end_of_eu_dst(rig: Rig) -> None:
    tom = await pid(rig, "tom@demo.baton")
    cest, cet = utc(2026, 10, 23, 14, 0), utc(2026, 10, 30, 15, 0)  # EU clocks go back on 2026-10-25
    for send in (cest, cet):
        await tick(rig, send - timedelta(minutes=1))
        assert [r.topic for r in await outbox(rig, person_id=tom, kind="checkin")] == (
            ["checkin:2026-W43"] if send == cet else []
        )
        await tick(rig, send)
    rows = await outbox(rig, person_id=tom, kind="checkin")
    assert [(r.topic, r.due_at) for r in rows] == [("checkin:2026-W43", cest), ("checkin:2026-W44", cet)]
    assert {r.due_at.astimezone(BERLIN).strftime("%a %H:%M") for r in rows} == {"Fri 16:00"}


def test_local_datetime_moves_a_missing_spring_forward_time_by_the_gap() -> None:
    # US: 2027-03-14 02:00 PST jumps to 03:00 PDT, so 02:30 does not exist on the wall clock
    moved = local_datetime(date(2027, 3, 14), time(2, 30), LA)
    assert moved == utc(2027, 3, 14, 10, 30)
    assert moved.astimezone(LA).strftime("%H:%M %Z") == "03:30 PDT"
    # EU: 2027-03-28 02:00 CET jumps to 03:00 CEST
    moved = local_datetime(date(2027, 3, 28), time(2, 30), BERLIN)
    assert moved == utc(2027, 3, 28, 1, 30)
    assert moved.astimezone(BERLIN).strftime("%H:%M %Z") == "03:30 CEST"
    # an ordinary day is untouched, and a fall-back ambiguity picks the first 01:30 (PDT)
    assert local_datetime(date(2027, 3, 13), time(2, 30), LA) == utc(2027, 3, 13, 10, 30)
    assert local_datetime(date(2026, 11, 1), time(1, 30), LA) == utc(2026, 11, 1, 8, 30)


def test_previous_periods_cross_a_53_week_year() -> None:
    assert previous_periods("2027-W01", 3) == ["2026-W52", "2026-W53", "2027-W01"]
    assert previous_periods(W47, 1) == [W47]
    assert period_of(utc(2027, 1, 1, 15, 0), "Europe/Berlin") == "2026-W53"


# -- 3. ticks that fire twice or on two replicas at once ---------------------------------------


async def test_repeated_and_concurrent_ticks_queue_one_invitation_per_person(rig: Rig) -> None:
    team = ["maya", "arjun", "lucia", "tom", "aiko"]
    ids = {name: await pid(rig, f"{name}@demo.baton") for name in team}
    sam = await pid(rig, "sam@demo.baton")
    # Aiko at 07:00 UTC, Arjun at 10:30, Maya and Tom at 15:00, Lucía at 22:00: fire each tick
    # twice in a row and then from two conductors at once
    for when in (
        utc(2026, 11, 20, 7, 0),
        utc(2026, 11, 20, 10, 30),
        utc(2026, 11, 20, 15, 0),
        utc(2026, 11, 20, 22, 0),
    ):
        rig.clock.set(when)
        await Conductor(rig.db, sealer=rig.sealer).tick(when)
        await Conductor(rig.db, sealer=rig.sealer).tick(when)
        await asyncio.gather(
            Conductor(rig.db, sealer=rig.sealer).tick(when),
            Conductor(rig.db, sealer=rig.sealer).tick(when),
            Conductor(rig.db, sealer=rig.sealer).tick(when + timedelta(seconds=30)),
        )
        await rig.sender.drain_once()
    rows = await outbox(rig, topic=f"checkin:{W47}")
    assert sorted(r.person_id for r in rows) == sorted(ids.values())
    assert sam not in {r.person_id for r in rows}  # the admin is in no team
    assert len({r.key for r in rows}) == len(rows) == 5
    # and each person received it exactly once once it was due
    rig.clock.set(utc(2026, 11, 21, 12, 0))
    await rig.sender.drain_once()
    for name, person_id in ids.items():
        assert len(invitations(rig, person_id)) == 1, name


# -- 4. downtime and the grace window -----------------------------------------------------------


@pytest.mark.parametrize(
    ("late", "invited"),
    [(timedelta(hours=11), True), (timedelta(hours=11, minutes=59), True), (timedelta(hours=13), False)],
)
async def test_the_first_tick_after_downtime_invites_only_within_the_grace_window(
    rig: Rig, late: timedelta, invited: bool
) -> None:
    tom = await pid(rig, "tom@demo.baton")
    report = await tick(rig, utc(2026, 11, 20, 15, 0) + late)  # Tom's 16:00 Berlin was `late` ago
    rows = await outbox(rig, person_id=tom, topic=f"checkin:{W47}")
    if not invited:
        assert rows == []
        assert "leave" not in report.held and "budget" not in report.held  # simply too late, not held back
        return
    [row] = rows
    # it is the small hours in Berlin now: the late invitation waits for 08:00, then goes out
    assert row.due_at == utc(2026, 11, 21, 7, 0)
    assert invitations(rig, tom) == []
    await tick(rig, utc(2026, 11, 21, 7, 0))
    assert len(invitations(rig, tom)) == 1


async def test_a_grace_window_of_13_hours_makes_up_the_13_hour_old_send(rig: Rig) -> None:
    tom = await pid(rig, "tom@demo.baton")
    await tick(rig, utc(2026, 11, 21, 4, 0), Conductor(rig.db, sealer=rig.sealer, grace=timedelta(hours=14)))
    assert [r.topic for r in await outbox(rig, person_id=tom)] == [f"checkin:{W47}"]


# -- 5. leave -----------------------------------------------------------------------------------


async def add_leave(rig: Rig, person_id: int, start: date, end: date) -> None:
    await rig.db.run(
        lambda s: _add(
            s, Leave(person_id=person_id, start=start, end=end, created_by_id=person_id, created_at=rig.clock.now())
        )
    )


async def _add(session, row) -> None:
    session.add(row)


async def test_no_invitation_on_a_day_of_leave_and_the_rhythm_resumes_the_next_week(rig: Rig) -> None:
    tom, maya = await pid(rig, "tom@demo.baton"), await pid(rig, "maya@demo.baton")
    await add_leave(rig, tom, date(2026, 11, 16), date(2026, 11, 20))  # Mon–Fri of week 47
    report = await tick(rig, utc(2026, 11, 20, 15, 0))
    assert report.held["leave"] == 1
    assert await outbox(rig, person_id=tom) == []
    assert [r.person_id for r in await outbox(rig, topic=f"checkin:{W47}")].count(maya) == 1  # the colleague is invited
    assert invitations(rig, tom) == [] and len(invitations(rig, maya)) == 1
    # the following Friday Tom is back in the rhythm
    report = await tick(rig, utc(2026, 11, 27, 15, 0))
    assert "leave" not in report.held
    assert [r.topic for r in await outbox(rig, person_id=tom)] == [f"checkin:{W48}"]
    assert len(invitations(rig, tom, W48)) == 1


async def test_ticks_through_the_evening_after_a_friday_of_leave_send_nothing_that_week(rig: Rig) -> None:
    tom = await pid(rig, "tom@demo.baton")
    await add_leave(rig, tom, date(2026, 11, 16), date(2026, 11, 20))
    when = utc(2026, 11, 20, 15, 0)
    while when <= utc(2026, 11, 21, 12, 0):  # a scheduler ticking every 30 minutes
        await tick(rig, when)
        when += timedelta(minutes=30)
    assert await outbox(rig, person_id=tom, topic=f"checkin:{W47}") == []
    assert invitations(rig, tom) == []


async def test_leave_recorded_after_an_invitation_was_queued_still_silences_it(rig: Rig) -> None:
    await add_team(rig, "Night", checkin_time="22:00")
    nadia = await add_person(rig, "nadia@demo.baton", "Nadia Berg", "Europe/Berlin", team="Night", manager=None)
    await tick(rig, utc(2026, 11, 20, 21, 0))  # 22:00 Berlin: quiet hours, so due Saturday 08:00
    assert [r.due_at for r in await outbox(rig, person_id=nadia)] == [utc(2026, 11, 21, 7, 0)]
    rig.clock.set(utc(2026, 11, 20, 21, 30))
    chat = rig.chat("nadia@demo.baton")
    await chat.send("leave 2026-11-21 2026-11-29")
    chat.expect("I won't send you anything on my own then")
    await tick(rig, utc(2026, 11, 21, 7, 0))
    assert invitations(rig, nadia) == []


# -- 6. quiet hours -------------------------------------------------------------------------------


async def test_a_22_00_check_in_waits_for_08_00_the_next_morning(rig: Rig) -> None:
    await add_team(rig, "Night", checkin_time="22:00")
    nadia = await add_person(rig, "nadia@demo.baton", "Nadia Berg", "Europe/Berlin", team="Night", manager=None)
    await tick(rig, utc(2026, 11, 20, 20, 59))
    assert await outbox(rig, person_id=nadia) == []
    await tick(rig, utc(2026, 11, 20, 21, 0))  # 22:00 in Berlin
    [row] = await outbox(rig, person_id=nadia)
    assert row.topic == f"checkin:{W47}"  # still Friday's week
    assert row.due_at == utc(2026, 11, 21, 7, 0)
    assert row.due_at.astimezone(BERLIN).strftime("%a %H:%M") == "Sat 08:00"
    await tick(rig, utc(2026, 11, 20, 23, 0))
    await tick(rig, utc(2026, 11, 21, 6, 59))
    assert invitations(rig, nadia) == []
    assert [r.status for r in await outbox(rig, person_id=nadia)] == ["pending"]
    await tick(rig, utc(2026, 11, 21, 7, 0))
    assert len(invitations(rig, nadia)) == 1
    assert len(await outbox(rig, person_id=nadia, kind="checkin")) == 1


async def test_personal_quiet_hours_move_an_afternoon_invitation(rig: Rig) -> None:
    tom = await pid(rig, "tom@demo.baton")

    async def quiet(session) -> None:
        person = await session.get(Person, tom)
        person.quiet_start, person.quiet_end = "13:00", "17:30"
        session.add(person)

    await rig.db.run(quiet)
    await tick(rig, utc(2026, 11, 20, 15, 0))
    [row] = await outbox(rig, person_id=tom)
    assert row.due_at.astimezone(BERLIN).strftime("%a %H:%M") == "Fri 17:30"


# -- 7. the weekly budget -------------------------------------------------------------------------


async def add_sent(rig: Rig, person_id: int, *due: datetime, unsolicited: bool = True, status: str = "sent") -> None:
    """Outbox rows as if Baton had already sent these messages."""

    async def work(session) -> None:
        for index, when in enumerate(due):
            session.add(
                OutboxMessage(
                    key=f"earlier:{person_id}:{when.isoformat()}:{index}:{status}:{unsolicited}",
                    person_id=person_id,
                    channel="local",
                    address={},
                    payload=Reply("An earlier nudge").to_dict(),
                    kind="notice",
                    topic="nudge",
                    unsolicited=unsolicited,
                    due_at=when,
                    status=status,
                    created_at=when,
                    sent_at=when if status == "sent" else None,
                )
            )

    await rig.db.run(work)


async def test_a_spent_weekly_budget_never_holds_an_invitation_only_the_reminder(rig: Rig) -> None:
    tom, maya = await pid(rig, "tom@demo.baton"), await pid(rig, "maya@demo.baton")
    now = utc(2026, 11, 20, 15, 0)
    await add_sent(rig, tom, *(now - timedelta(days=d) for d in range(1, 7)))  # six in the last 7 days: spent
    await add_sent(rig, maya, *(now - timedelta(days=d) for d in range(1, 4)))  # three: room left
    await add_sent(
        rig, maya, *(now - timedelta(hours=h) for h in range(1, 30)), unsolicited=False
    )  # replies don't count
    report = await tick(rig, now)
    assert "budget" not in report.held  # what a person must get is never held by the budget
    assert len(invitations(rig, tom)) == 1 and len(invitations(rig, maya)) == 1

    report = await tick(rig, now + timedelta(hours=2))  # the reminder is a nudge: the budget holds it
    assert report.held["budget"] == 1
    [held] = await outbox(rig, person_id=tom, kind="reminder")
    assert (held.status, held.last_error) == ("held", "budget")  # recorded with its reason, not dropped
    assert reminders(rig, tom) == [] and len(reminders(rig, maya)) == 1
    await tick(rig, now + timedelta(hours=3))
    assert reminders(rig, tom) == []  # and not retried every tick


async def test_the_conductors_budget_setting_is_respected(rig: Rig) -> None:
    ids = {name: await pid(rig, f"{name}@demo.baton") for name in ("maya", "tom", "arjun", "aiko")}
    now = utc(2026, 11, 20, 15, 0)
    await add_sent(rig, ids["tom"], now - timedelta(days=1))  # with the invitation: two, spent
    await add_sent(rig, ids["maya"], now - timedelta(days=7, minutes=1))  # older than a week
    await add_sent(rig, ids["maya"], now - timedelta(days=1), status="failed")  # failed sends don't count
    report = await tick(rig, now, Conductor(rig.db, sealer=rig.sealer, budget=2))
    assert {r.person_id for r in await outbox(rig, topic=f"checkin:{W47}")} >= set(ids.values())
    report = await tick(rig, now + timedelta(hours=2), Conductor(rig.db, sealer=rig.sealer, budget=2))
    reminded = {r.person_id for r in await outbox(rig, kind="reminder") if r.status != "held"}
    assert ids["tom"] not in reminded and ids["maya"] in reminded
    assert report.held["budget"] == 1


# -- 8. one reminder, and none after an answer, a skip or a snooze ----------------------------------


async def test_exactly_one_reminder_120_minutes_after_the_invitation_was_sent(rig: Rig) -> None:
    tom = await pid(rig, "tom@demo.baton")
    await tick(rig, utc(2026, 11, 20, 15, 0))
    [invite] = await outbox(rig, person_id=tom, kind="checkin")
    assert invite.status == "sent" and invite.sent_at == utc(2026, 11, 20, 15, 0)

    await tick(rig, utc(2026, 11, 20, 16, 59))  # +119 min
    assert await outbox(rig, person_id=tom, kind="reminder") == []
    report = await tick(rig, utc(2026, 11, 20, 17, 0))  # +120 min
    assert report.reminded >= 1
    [row] = await outbox(rig, person_id=tom, kind="reminder")
    assert row.topic == f"checkin-reminder:{W47}" and row.due_at == utc(2026, 11, 20, 17, 0)
    [reply] = reminders(rig, tom)
    assert "your check-in for week 47 is still open" in reply.text
    assert [c.value for c in reply.choices] == [f"checkin start {W47}", f"checkin skip {W47}"]

    for when in (
        utc(2026, 11, 20, 17, 1),
        utc(2026, 11, 20, 19, 0),
        utc(2026, 11, 21, 9, 0),
        utc(2026, 11, 22, 12, 0),
        utc(2026, 11, 23, 10, 0),
        utc(2026, 11, 26, 12, 0),
    ):
        await tick(rig, when)
    assert len(await outbox(rig, person_id=tom, kind="reminder")) == 1
    assert len(reminders(rig, tom)) == 1


async def test_the_reminder_counts_from_when_the_invitation_was_delivered(rig: Rig) -> None:
    tom = await pid(rig, "tom@demo.baton")
    rig.clock.set(utc(2026, 11, 20, 15, 0))
    await Conductor(rig.db, sealer=rig.sealer).tick(rig.clock.now())
    await tick(rig, utc(2026, 11, 20, 16, 0))  # the sender was down for an hour: delivered at 16:00
    [invite] = await outbox(rig, person_id=tom, kind="checkin")
    assert invite.sent_at == utc(2026, 11, 20, 16, 0)
    await tick(rig, utc(2026, 11, 20, 17, 30))
    assert await outbox(rig, person_id=tom, kind="reminder") == []
    await tick(rig, utc(2026, 11, 20, 18, 0))
    assert len(reminders(rig, tom)) == 1


async def test_no_reminder_after_an_answer_a_skip_or_a_snooze(rig: Rig) -> None:
    tom, maya, arjun, aiko = [await pid(rig, f"{n}@demo.baton") for n in ("tom", "maya", "arjun", "aiko")]
    tom_chat, maya_chat, arjun_chat = (
        rig.chat("tom@demo.baton"),
        rig.chat("maya@demo.baton"),
        rig.chat("arjun@demo.baton"),
    )

    await tick(rig, utc(2026, 11, 20, 10, 30))  # Arjun's 16:00 (and Aiko's, late)
    rig.clock.set(utc(2026, 11, 20, 10, 45))
    await arjun_chat.press("Snooze", on=arjun_chat.expect("check-in time for week 47"))
    await arjun_chat.press("In 1 hour", on=arjun_chat.expect("When should I ask again?"))
    arjun_chat.expect("ask again Friday at 17:15")  # 11:45 UTC in Kolkata

    await tick(rig, utc(2026, 11, 20, 11, 44))
    assert len(invitations(rig, arjun)) == 1
    report = await tick(rig, utc(2026, 11, 20, 11, 45))
    assert report.resent == 1
    [resend] = await outbox(rig, person_id=arjun, topic=f"checkin-snooze:{W47}")
    assert resend.due_at == utc(2026, 11, 20, 11, 45) and resend.status == "sent"
    assert len(invitations(rig, arjun)) == 2  # the invitation again, at the snooze time
    run = await run_of(rig, arjun, W47)
    assert run is not None and run.snoozed_until is None and run.snoozes == 1
    await tick(rig, utc(2026, 11, 20, 11, 50))
    assert len(invitations(rig, arjun)) == 2  # and only once
    await tick(rig, utc(2026, 11, 20, 12, 30))  # Arjun's +120 min: he chose his own time instead
    assert await outbox(rig, person_id=arjun, kind="reminder") == []

    await tick(rig, utc(2026, 11, 20, 15, 0))  # Maya's and Tom's 16:00
    rig.clock.set(utc(2026, 11, 20, 15, 30))
    await answer_checkin(
        tom_chat, tom_chat.expect("check-in time for week 47"), ["Shipped it", "nothing", "4", "Tests", "no"]
    )
    await maya_chat.press("Skip this week", on=maya_chat.expect("check-in time for week 47"))
    maya_chat.expect("Skipped week 47", "No reminders this week")

    for when in (utc(2026, 11, 20, 17, 0), utc(2026, 11, 20, 19, 0), utc(2026, 11, 21, 10, 0)):
        await tick(rig, when)
    assert reminders(rig, tom) == [] and reminders(rig, maya) == [] and reminders(rig, arjun) == []
    reminded = {r.person_id for r in await outbox(rig, kind="reminder")}
    # Aiko (late invitation at 10:30 UTC = 19:30 in Tokyo) did nothing: one reminder, held to 08:00 Tokyo
    assert reminded == {aiko}
    [row] = await outbox(rig, kind="reminder")
    assert row.due_at.astimezone(TOKYO).strftime("%a %H:%M") == "Sat 08:00"
    assert len(reminders(rig, aiko)) == 1


async def test_a_reminder_missed_by_days_of_downtime_is_not_made_up(rig: Rig) -> None:
    tom = await pid(rig, "tom@demo.baton")
    await tick(rig, utc(2026, 11, 20, 15, 0))
    assert len(invitations(rig, tom)) == 1
    await tick(rig, utc(2026, 11, 26, 12, 0))  # first tick after six days down; the reminder was due Friday 17:00
    assert await outbox(rig, person_id=tom, kind="reminder") == []


# -- 9. the manager's digest --------------------------------------------------------------------------


async def test_the_monday_digest_reaches_the_manager_once_and_nobody_else(rig: Rig) -> None:
    maya, _tom, _arjun = [await pid(rig, f"{n}@demo.baton") for n in ("maya", "tom", "arjun")]
    tom_chat, arjun_chat = rig.chat("tom@demo.baton"), rig.chat("arjun@demo.baton")
    await tick(rig, utc(2026, 11, 20, 10, 30))
    await tick(rig, utc(2026, 11, 20, 15, 0))
    rig.clock.set(utc(2026, 11, 20, 15, 10))
    await answer_checkin(
        tom_chat,
        tom_chat.expect("check-in time for week 47"),
        ["Finished the billing migration", "waiting on staging access", "4", "Launch prep", "review my design doc"],
    )
    await answer_checkin(
        arjun_chat,
        arjun_chat.expect("check-in time for week 47"),
        ["Fixed the flaky tests", "nothing", "2", None, "nothing"],
    )

    await tick(rig, utc(2026, 11, 23, 7, 59))
    assert await outbox(rig, kind="digest") == []
    report = await tick(rig, utc(2026, 11, 23, 8, 0))  # Monday 09:00 in Berlin
    assert report.digests == 1
    [row] = await outbox(rig, kind="digest")
    assert (row.person_id, row.topic, row.due_at) == (maya, f"digest:{W47}", utc(2026, 11, 23, 8, 0))
    [digest] = [r for r in rig.delivery.to(maya) if r.card is not None and r.card.title.startswith("Check-ins")]
    assert "check-ins for week 47 are in" in digest.text
    card = digest.card
    assert card.title == "Check-ins, week 47 — Platform"
    assert dict(card.fields)["Answered"] == "2 of 4"
    assert dict(card.fields)["Team pulse, last 4 weeks"] == "– → – → – → 3.0"
    lines = list(card.lines)
    assert "• Tom: pulse 4" in lines and "• Arjun: pulse 2" in lines
    assert "• Lucía: not answered yet" in lines and "• Aiko: not answered yet" in lines
    assert lines[lines.index("Blockers:") + 1 :][:1] == ["• Tom: waiting on staging access"]
    asks = lines[lines.index("Asks for you:") + 1 :]
    assert asks == ["• Tom: review my design doc"]
    assert not any("nothing" in line for line in lines)  # Arjun's "nothing" is not a blocker or an ask
    assert sum(line.startswith("• Arjun") for line in lines) == 1

    for when in (utc(2026, 11, 23, 8, 0), utc(2026, 11, 23, 8, 1), utc(2026, 11, 23, 12, 0)):
        await tick(rig, when)
    assert len(await outbox(rig, kind="digest")) == 1
    assert len([r for r in rig.delivery.to(maya) if r.card and r.card.title.startswith("Check-ins")]) == 1

    tom = await pid(rig, "tom@demo.baton")
    for message in rig.delivery.sent:
        if message.person_id == maya:
            continue
        card = message.reply.card
        if message.person_id == tom and card is not None and card.title.startswith("1:1 with Maya"):
            continue  # his own blocker and ask, on the agenda of his own 1:1 with Maya
        shown = message.reply.text + " ".join(message.reply.card.lines if message.reply.card else ())
        assert "staging access" not in shown and "design doc" not in shown, message.person_id
        assert message.kind != "digest"


async def test_a_digest_of_a_quiet_week_says_nobody_answered(rig: Rig) -> None:
    maya = await pid(rig, "maya@demo.baton")
    await tick(rig, utc(2026, 11, 23, 8, 0))
    [digest] = [r for r in rig.delivery.to(maya) if r.card is not None]
    assert dict(digest.card.fields)["Answered"] == "0 of 4"
    assert "Blockers:" not in digest.card.lines and "Asks for you:" not in digest.card.lines


# -- 10. participation --------------------------------------------------------------------------------


async def test_participation_and_streaks_over_two_weeks(rig: Rig) -> None:
    _tom, arjun = await pid(rig, "tom@demo.baton"), await pid(rig, "arjun@demo.baton")
    tom_chat, arjun_chat = rig.chat("tom@demo.baton"), rig.chat("arjun@demo.baton")
    for friday in (20, 27):
        await tick(rig, utc(2026, 11, friday, 10, 30))
        await tick(rig, utc(2026, 11, friday, 15, 0))
        rig.clock.set(utc(2026, 11, friday, 15, 30))
        label = f"week {47 if friday == 20 else 48}"
        await answer_checkin(
            tom_chat,
            tom_chat.expect(f"check-in time for {label}"),
            ["a", "nothing", "5" if friday == 20 else "3", "c", "no"],
        )
        invite = arjun_chat.expect(f"check-in time for {label}")
        if friday == 20:
            await answer_checkin(arjun_chat, invite, ["x", "y", "2", "z", "no"])
    assert (await run_of(rig, arjun, W48)) is None  # Arjun let week 48 pass

    report = await participation(rig.db, "Platform", 2, utc(2026, 11, 30, 10, 0))
    assert report["periods"] == [W47, W48]
    people = {p["email"]: p for p in report["people"]}
    assert people["arjun@demo.baton"]["participation"] == 0.5
    assert people["arjun@demo.baton"]["streak"] == 0
    assert people["arjun@demo.baton"]["periods"] == {
        W47: {"status": "answered", "pulse": 2.0},
        W48: {"status": "missed", "pulse": None},
    }
    assert people["tom@demo.baton"]["participation"] == 1.0
    assert people["tom@demo.baton"]["streak"] == 2
    assert people["tom@demo.baton"]["periods"][W48] == {"status": "answered", "pulse": 3.0}
    assert people["lucia@demo.baton"]["periods"][W47]["status"] == "not-invited"  # no tick at her 16:00
    assert people["lucia@demo.baton"]["participation"] is None
    assert "sam@demo.baton" not in people
    # Maya and Aiko were invited both weeks and answered neither
    assert report["team_participation"] == {W47: 0.5, W48: 0.25}

    parsed = json.loads(as_json(report))
    assert parsed == report
    assert "Lucía Gómez" in as_json(report)
    rows = list(csv.DictReader(io.StringIO(as_csv(report))))
    assert len(rows) == 5 * 2
    arjun_rows = {r["period"]: r for r in rows if r["email"] == "arjun@demo.baton"}
    assert arjun_rows[W47] == {
        "team": "Platform",
        "period": W47,
        "email": "arjun@demo.baton",
        "name": "Arjun Rao",
        "status": "answered",
        "pulse": "2",
        "participation": "0.5",
        "streak": "0",
    }
    assert arjun_rows[W48]["status"] == "missed" and arjun_rows[W48]["pulse"] == ""
    assert {r["streak"] for r in rows if r["email"] == "tom@demo.baton"} == {"2"}


async def test_participation_of_an_unknown_team_names_the_known_ones(rig: Rig) -> None:
    with pytest.raises(LookupError, match="Platform"):
        await participation(rig.db, "Plattform", 4, utc(2026, 11, 30, 10, 0))


# -- 11. send-now ---------------------------------------------------------------------------------------


async def test_send_now_twice_invites_each_member_once_for_the_open_period(rig: Rig) -> None:
    members = {name: await pid(rig, f"{name}@demo.baton") for name in ("maya", "arjun", "lucia", "tom", "aiko")}
    team = await platform_id(rig)
    await add_team(rig, "Night", checkin_time="22:00")
    nadia = await add_person(rig, "nadia@demo.baton", "Nadia Berg", "Europe/Berlin", team="Night", manager=None)
    now = utc(2026, 11, 24, 10, 0)  # Tuesday: week 47 closed with Monday's digest, week 48 not yet sent

    assert (await tick(rig, now)).invited == 0
    first = await tick(rig, now, force=True, team_id=team)
    second = await tick(rig, now + timedelta(minutes=1), force=True, team_id=team)
    assert first.invited == 5 and second.invited == 5  # attempted; the keys make the repeat a no-op
    rows = await outbox(rig, kind="checkin")
    assert sorted(r.person_id for r in rows) == sorted(members.values())
    assert {r.topic for r in rows} == {f"checkin:{W48}"}  # the coming week, never the closed one
    assert nadia not in {r.person_id for r in rows}  # another team
    # daytime people get it now; Lucía (04:00 in Mexico City) at the end of her quiet hours
    due = {r.person_id: r.due_at for r in rows}
    assert due[members["tom"]] == now and due[members["aiko"]] == now
    assert due[members["lucia"]].astimezone(ZoneInfo("America/Mexico_City")).strftime("%a %H:%M") == "Tue 08:00"
    for name in ("maya", "arjun", "tom", "aiko"):
        assert len(invitations(rig, members[name], W48)) == 1, name
