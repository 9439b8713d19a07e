"""The overview (`dialogs.services.home`, Slack's App Home): goals, feedback requests, a manager's team, an admin's delivery problems.

Real database (SQLite and PostgreSQL) through the `rig` fixture with the demo
organisation: Maya manages Arjun, Lucía, Tom and Aiko; Sam is the admin. The
clock stands on Friday 2026-11-20, 09:00 UTC.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from slack_sdk.models.views import View
from sqlalchemy import select

from adapters.slack import render
from dialogs.common.periods import Rhythm, period_of
from dialogs.engine.messages import Reply
from dialogs.services.home import SCHEDULE, home
from storage.models import CheckinRun, FeedbackRequest, Goal, GoalUpdate, OutboxMessage, Person, Team
from tests.harness import Rig

SECRET = "Feedback secret: the zebra-7731 launch went badly"  # in failed rows' payloads only


async def overview(rig: Rig, email: str) -> Reply:
    async def work(session) -> Reply:
        person = (await session.execute(select(Person).where(Person.email == email))).scalar_one()
        return await home(session, person, rig.clock.now())

    return await rig.db.run(work)


def everything(reply: Reply) -> str:
    """Every piece of text the reply carries, buttons and their values included."""
    return json.dumps(reply.to_dict(), ensure_ascii=False)


async def add(rig: Rig, *rows: Any) -> list[Any]:
    async def work(session) -> list[Any]:
        session.add_all(rows)
        await session.flush()
        return list(rows)

    return await rig.db.run(work)


def goal(owner: Person | None, title: str, **kw: Any) -> Goal:
    base = dict(
        owner_id=owner.id if owner else None,
        title=title,
        start_value=0,
        target_value=10,
        start_date=date(2026, 10, 1),
        due_date=date(2026, 12, 31),
        created_at=datetime(2026, 10, 1, 9, 0, tzinfo=UTC),
    )
    return Goal(**(base | kw))


def update(goal_id: int, progress: float, rag: str, when: datetime) -> GoalUpdate:
    return GoalUpdate(
        goal_id=goal_id, value=progress * 10, progress=progress, expected=0.0, rag=rag, source="chat", recorded_at=when
    )


def failed(
    key: str,
    when: datetime,
    reason: str | None,
    *,
    person_id: int | None,
    status: str = "failed",
    channel: str = "slack",
) -> OutboxMessage:
    return OutboxMessage(
        key=key,
        person_id=person_id,
        channel=channel,
        address={"team": "T1", "channel": "U1"},
        payload=Reply(f"{SECRET} ({key})").to_dict(),
        kind="notice" if person_id else "post",
        due_at=when,
        status=status,
        attempts=1,
        last_error=reason,
        created_at=when,
    )


def mrkdwn_texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") == "mrkdwn" else []
        return own + [t for value in node.values() for t in mrkdwn_texts(value)]
    if isinstance(node, list):
        return [t for value in node for t in mrkdwn_texts(value)]
    return []


# -- goals ----------------------------------------------------------------------------------------------


async def test_goals_show_progress_and_where_the_work_stands_against_elapsed_time(rig: Rig) -> None:
    tom, now = rig.people["tom@demo.baton"], rig.clock.now()
    team_id = tom.team_id
    # 50 of 91 days elapsed: about 55% expected of a committed goal, 36% of an aspirational one.
    red, amber, green, stretch, _, undated, _, _, team_goal = await add(
        rig,
        goal(tom, "Cut <!channel> p95 & latency"),
        goal(tom, "Write the runbook"),
        goal(tom, "Ship the export"),
        goal(tom, "Open a second region", committed=False),
        goal(tom, "Learn the billing code", learning=True),
        goal(tom, "Tidy the backlog", due_date=None),
        goal(tom, "Finished goal", status="done"),
        goal(tom, "Dropped goal", status="dropped"),
        goal(None, "Team goal: on-call load", team_id=team_id),
    )
    await add(
        rig,
        update(red.id, 0.10, "green", now - timedelta(days=40)),  # green back then; well behind the time elapsed now
        update(amber.id, 0.35, "amber", now - timedelta(days=1)),
        update(green.id, 0.50, "green", now - timedelta(days=1)),
        update(stretch.id, 0.30, "amber", now - timedelta(days=1)),
        update(undated.id, 0.30, "green", now - timedelta(days=1)),
        update(team_goal.id, 0.55, "green", now - timedelta(days=1)),
    )
    reply = await overview(rig, "tom@demo.baton")
    lines = list(reply.card.lines)
    heading = lines.index("*Your goals* (7 open)")
    goal_lines = lines[heading + 1 : heading + 6]
    assert goal_lines == [
        "• Cut <!channel> p95 & latency — 10% of the way, well behind schedule · due 31 Dec",  # rendering escapes it
        "• Write the runbook — 35% of the way, a little behind schedule · due 31 Dec",
        "• Ship the export — 50% of the way, on track · due 31 Dec",
        "• Open a second region (aspirational) — 30% of the way, on track · due 31 Dec",
        "• Team goal: on-call load (team goal) — 55% of the way, on track · due 31 Dec",
    ]
    assert lines[heading + 6] == "…and 2 more — type *goals* to see them all."
    assert "Finished goal" not in everything(reply) and "Dropped goal" not in everything(reply)
    assert ("My goals", "goals") in [(c.label, c.value) for c in reply.choices] and reply.action == "cmd"


async def test_status_words_are_about_the_work_never_the_person(rig: Rig) -> None:
    words = " ".join(SCHEDULE.values())
    for verdict in ("you", "underperform", "poor", "bad", "fail", "lazy", "slow"):
        assert verdict not in words
    tom = rig.people["tom@demo.baton"]
    behind, _fresh, undated = await add(
        rig,
        goal(tom, "Ship the export"),
        goal(tom, "Learn the billing code", learning=True),
        goal(tom, "Tidy the backlog", due_date=None),
    )
    await add(rig, update(behind.id, 0.0, "red", rig.clock.now()), update(undated.id, 0.3, "green", rig.clock.now()))
    lines = list((await overview(rig, "tom@demo.baton")).card.lines)
    assert lines == [
        "*Your goals* (3 open)",
        "• Ship the export — 0% of the way, well behind schedule · due 31 Dec",
        # no status word without progress, or without a due date to measure the time elapsed by
        "• Learn the billing code (learning goal) — no progress recorded yet · due 31 Dec",
        "• Tidy the backlog — 30% of the way · no due date",
    ]  # three goals: nothing hidden, no "…and N more"


async def test_someone_without_goals_requests_or_reports_gets_no_empty_sections(rig: Rig) -> None:
    reply = await overview(rig, "arjun@demo.baton")
    assert reply.card is not None and reply.card.lines == ()
    # Friday morning: week 46 closed with Monday's digest, so "this period" is week 47, due this afternoon
    assert [f for f, _ in reply.card.fields] == ["Next check-in", "This period (week 47)"]
    assert [c.value for c in reply.choices] == ["checkin", "help"]


# -- feedback requests --------------------------------------------------------------------------------------


async def test_pending_feedback_requests_show_who_asked_and_the_deadline_in_my_time_zone(rig: Rig) -> None:
    maya, lucia, tom, now = (
        rig.people["maya@demo.baton"],
        rig.people["lucia@demo.baton"],
        rig.people["tom@demo.baton"],
        rig.clock.now(),
    )
    (gone,) = await add(rig, Person(email="former@demo.baton", name="Former Colleague", active=False, created_at=now))

    def ask(
        requester: Person, responder: Person, topic: str, deadline: datetime, status: str = "open"
    ) -> FeedbackRequest:
        return FeedbackRequest(
            requester_id=requester.id,
            responder_id=responder.id,
            topic=topic,
            deadline=deadline,
            status=status,
            created_at=now,
        )

    later, sooner = await add(
        rig,
        ask(lucia, tom, "the onboarding\nguide", datetime.fromisoformat("2026-11-27T08:30:00+00:00")),
        ask(maya, tom, "the Q3 planning doc", datetime.fromisoformat("2026-11-24T16:00:00+00:00")),
    )
    await add(
        rig,
        ask(maya, tom, "Answered already", now + timedelta(days=2), "answered"),
        ask(maya, tom, "Declined already", now + timedelta(days=2), "declined"),
        ask(maya, tom, "Marked expired", now - timedelta(days=1), "expired"),
        ask(maya, tom, "Past its deadline, not yet marked", now - timedelta(minutes=1)),
        ask(gone, tom, "From someone who left", now + timedelta(days=2)),
        ask(tom, maya, "Tom's own request to Maya", now + timedelta(days=2)),
    )
    reply = await overview(rig, "tom@demo.baton")
    lines = list(reply.card.lines)
    start = lines.index("*Feedback requests waiting for your answer* (2, times in Europe/Berlin)")
    assert lines[start + 1 :] == [
        "• Maya Chen asks for feedback on “the Q3 planning doc” — by Tue 24 Nov, 17:00",
        "• Lucía Gómez asks for feedback on “the onboarding guide” — by Fri 27 Nov, 09:30",
    ]
    text = everything(reply)
    for hidden in (
        "Answered already",
        "Declined already",
        "Marked expired",
        "Past its deadline",
        "From someone who left",
        "Tom's own request",
    ):
        assert hidden not in text
    answers = [(c.label, c.value) for c in reply.choices if c.value.startswith("ask ")]
    assert answers == [
        ("Answer Maya: the Q3 planning doc", f"ask answer {sooner.id}"),
        ("Answer Lucía: the onboarding guide", f"ask answer {later.id}"),
    ]

    # The button is a command: pressing it (in the App Home tab, on Slack) opens the request's questions.
    chat = rig.chat("tom@demo.baton")
    await chat.press("Answer Maya: the Q3 planning doc", on=reply)
    chat.expect("On “the Q3 planning doc”: what's one thing about the work that's going well?")


async def test_more_than_five_requests_are_summed_up(rig: Rig) -> None:
    maya, tom, now = rig.people["maya@demo.baton"], rig.people["tom@demo.baton"], rig.clock.now()
    await add(
        rig,
        *(
            FeedbackRequest(
                requester_id=maya.id,
                responder_id=tom.id,
                topic=f"Topic {n}",
                deadline=now + timedelta(days=1, hours=n),
                created_at=now,
            )
            for n in range(8)
        ),
    )
    lines = list((await overview(rig, "tom@demo.baton")).card.lines)
    assert "*Feedback requests waiting for your answer* (8, times in Europe/Berlin)" in lines
    assert [line.split("“")[1].split("”")[0] for line in lines if "Topic" in line] == [
        f"Topic {n}" for n in range(5)
    ]  # the soonest due
    assert "…and 3 more, due later — each request in your messages has its own buttons." in lines


# -- a manager's team -------------------------------------------------------------------------------------------


async def test_a_manager_sees_the_teams_participation_this_period(rig: Rig) -> None:
    now = rig.clock.now()

    async def answer(session) -> None:
        for email in ("arjun@demo.baton", "lucia@demo.baton"):
            person = (await session.execute(select(Person).where(Person.email == email))).scalar_one()
            team = await session.get(Team, person.team_id)
            period = period_of(Rhythm.of(team).open_send(now, person.timezone), person.timezone)
            status = "answered" if email.startswith("arjun") else "skipped"
            session.add(
                CheckinRun(
                    person_id=person.id,
                    team_id=team.id,
                    period=period,
                    questions=[],
                    status=status,
                    started_at=now,
                    answered_at=now,
                )
            )

    await rig.db.run(answer)
    maya = await overview(rig, "maya@demo.baton")
    assert dict(maya.card.fields)["Your team this period"] == "1 of 4 answered"
    team = list(maya.card.lines)
    start = team.index("*Your team this period*")
    assert sorted(team[start + 1 :]) == [
        "• Aiko Tanaka: not answered yet",
        "• Arjun Rao: answered ✓",
        "• Lucía Gómez: skipped this week",
        "• Tom Becker: not answered yet",
    ]
    tom = await overview(rig, "tom@demo.baton")
    assert "Your team this period" not in everything(tom)


# -- an admin's delivery problems -------------------------------------------------------------------------------


async def seed_failures(rig: Rig) -> None:
    tom, lucia, now = rig.people["tom@demo.baton"], rig.people["lucia@demo.baton"], rig.clock.now()
    await add(
        rig,
        failed("f1", now - timedelta(hours=2), "user_not_found", person_id=tom.id),
        failed("f2", now - timedelta(days=1), "user_not_found", person_id=lucia.id),
        failed("f3", now - timedelta(days=2), "account_inactive", person_id=tom.id),
        failed("f4", now - timedelta(days=3), "channel_not_found", person_id=None),
        failed(
            "f5", now - timedelta(days=6), "gave up after 8 attempts: network: ClientConnectorError", person_id=tom.id
        ),
        failed(
            "f6",
            now - timedelta(days=4),
            "Teams refused (403 BotDisabled): Baton was uninstalled or blocked in this chat",
            person_id=lucia.id,
            channel="teams",
        ),
        failed(
            "old", now - timedelta(days=10), "is_archived", person_id=tom.id
        ),  # older than a week: the dashboard only
        failed("sent", now - timedelta(hours=1), None, person_id=tom.id, status="sent"),
        failed("retrying", now - timedelta(hours=1), "ratelimited", person_id=tom.id, status="pending"),
        failed("leave", now - timedelta(hours=1), "on leave", person_id=tom.id, status="cancelled"),
    )


async def test_an_admin_sees_delivery_problems_with_reasons_but_never_content(rig: Rig) -> None:
    await seed_failures(rig)
    sam = await overview(rig, "sam@demo.baton")
    problems = dict(sam.card.fields)["Delivery problems"]
    assert problems == (
        "6 messages in the last 7 days could not be delivered: user_not_found (2), account_inactive (1), "
        "channel_not_found (1) and 2 other reasons. The dashboard's Deliveries page lists them — type *dashboard* for a link."
    )
    assert ("Open the dashboard", "dashboard") in [(c.label, c.value) for c in sam.choices]
    text = everything(sam)
    assert "zebra" not in text and SECRET not in text
    for other in ("is_archived", "ratelimited", "on leave"):
        assert other not in text


async def test_someone_who_is_not_an_admin_never_sees_delivery_problems(rig: Rig) -> None:
    await seed_failures(rig)
    for email in ("maya@demo.baton", "tom@demo.baton", "arjun@demo.baton"):
        text = everything(await overview(rig, email))
        assert (
            "Delivery problems" not in text and "user_not_found" not in text and "could not be delivered" not in text
        ), email
        assert "zebra" not in text
        assert "dashboard" not in [c.value for c in (await overview(rig, email)).choices]


async def test_an_admin_without_delivery_problems_sees_no_such_line(rig: Rig) -> None:
    tom, now = rig.people["tom@demo.baton"], rig.clock.now()
    await add(rig, failed("old", now - timedelta(days=8), "user_not_found", person_id=tom.id))
    sam = await overview(rig, "sam@demo.baton")
    assert "Delivery problems" not in dict(sam.card.fields)
    assert [c.value for c in sam.choices] == ["help"]


# -- the Slack App Home tab ---------------------------------------------------------------------------------------


async def test_a_big_overview_renders_as_a_valid_app_home_within_slacks_limits(rig: Rig) -> None:
    now = rig.clock.now()
    maya = rig.people["maya@demo.baton"]

    async def promote(session) -> None:
        person = await session.get(Person, maya.id)
        person.is_admin = True  # an admin who manages a team: every section at once
        session.add(person)

    await rig.db.run(promote)
    long_title = "Ship <!channel> & <https://evil.example|click> " + "x" * 150
    goals = await add(rig, *(goal(maya, f"{n:02d} {long_title}"[:200]) for n in range(40)))
    await add(rig, *(update(g.id, 0.05 * (n % 20), "green", now) for n, g in enumerate(goals)))
    askers = await add(
        rig,
        *(
            Person(email=f"asker{n}@demo.baton", name=f"Asker {n} " + "Longname" * 20, created_at=now)
            for n in range(30)
        ),
    )
    await add(
        rig,
        *(
            FeedbackRequest(
                requester_id=a.id,
                responder_id=maya.id,
                topic=f"Topic {n} <!here> " + "y" * 280,
                deadline=now + timedelta(days=3, minutes=n),
                created_at=now,
            )
            for n, a in enumerate(askers)
        ),
    )
    await add(
        rig,
        *(
            Person(
                email=f"report{n}@demo.baton",
                name=f"Report {n}",
                team_id=maya.team_id,
                manager_id=maya.id,
                created_at=now,
            )
            for n in range(200)
        ),
    )
    await seed_failures(rig)
    await add(
        rig,
        *(
            failed(f"many{n}", now - timedelta(hours=n + 1), f"reason_{n:02d}_" + "z" * 100, person_id=None)
            for n in range(20)
        ),
    )

    reply = await overview(rig, "maya@demo.baton")
    view = render.home_view(reply)

    # slack_sdk's own models check every limit again (blocks, text lengths, buttons, action ids)
    assert View(**view).to_dict() == view
    blocks = view["blocks"]
    assert view["type"] == "home" and len(blocks) <= 100
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Your overview"},
    }  # not the text-only fallback
    assert blocks[-1]["type"] == "actions"
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert len({b["action_id"] for b in buttons}) == len(buttons) <= 25
    assert all(len(b["text"]["text"]) <= 75 for b in buttons)
    assert [b["value"] for b in buttons][:2] == ["checkin", "goals"] and buttons[-1]["value"] == "help"
    assert sum(b["value"].startswith("ask answer ") for b in buttons) == 5

    shown = json.dumps(view, ensure_ascii=False)
    # mrkdwn is escaped, so nothing typed can ping or link; plain_text (button labels) Slack never parses
    mrkdwn = json.dumps(mrkdwn_texts(blocks), ensure_ascii=False)
    assert "<!channel>" not in mrkdwn and "<!here>" not in mrkdwn and "<https://evil" not in mrkdwn
    assert "&lt;!channel&gt;" in mrkdwn and "…and 35 more" in shown and "…and 25 more" in shown
    assert "Delivery problems" in shown and "Report 199" in shown
    assert "zebra" not in shown and SECRET not in shown
