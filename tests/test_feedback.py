"""Two-way feedback, feedback requests and kudos through the fake channel, on both databases.

The demo organisation: Maya (Europe/Berlin) manages Arjun, Lucía, Tom (Berlin) and
Aiko (Asia/Tokyo) in team Platform; Sam is an admin with no team and no manager.
The clock stands at Friday 2026-11-20 09:00 UTC.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from dialogs import all_dialogs
from dialogs.checkin import DEFAULT_QUESTIONS
from dialogs.engine import END, Dialog, Engine, Transition, Turn
from dialogs.engine.messages import Reply
from dialogs.feedback import (
    QUESTIONS,
    FeedbackDialog,
    KudosDialog,
    RequestDialog,
    after_checkin,
    feedback_step,
    prompt_texts,
)
from dialogs.services.rhythm import Conductor, Due
from storage.models import CheckinAnswer, CheckinRun, FeedbackEntry, FeedbackRequest, Leave, OutboxMessage, Person, Team
from tests.harness import Chat, Rig

WELL = "WOMBAT-4417"
BETTER = "QUOKKA-2290"
KUDOS = "PANGOLIN-8813"
JUDGING = re.compile(
    r"\b(rate|rated|rating|ratings|score|scores|attitude|personality|character|judge|grade|lazy|smart|talent\w*)\b",
    re.I,
)


class CheckinEnd(Dialog):
    """Stands in for the end of a first completed check-in: calls the hook the way the check-in dialog does."""

    name = "checkin-end"
    commands = ("checkin-end",)
    summary = "Test stand-in for the end of a check-in."

    def __init__(self) -> None:
        self.first = ""
        self.states = {}

    async def begin(self, turn: Turn, args: str) -> Transition:
        manager = None
        if args == "loaded" and turn.person.manager_id is not None:
            manager = await turn.session.get(Person, turn.person.manager_id)  # the caller may pass the manager
        after_checkin(turn, None, manager)  # type: ignore[arg-type]
        return END


@pytest.fixture
async def rig(rig: Rig) -> Rig:
    """The demo rig, with the feedback dialogs registered (whether or not `all_dialogs` has them yet)."""
    dialogs = all_dialogs()
    have = {d.name for d in dialogs}
    dialogs += [d for d in (FeedbackDialog(), RequestDialog(), KudosDialog(), CheckinEnd()) if d.name not in have]
    rig.engine = Engine(rig.db, dialogs, clock=rig.clock, sealer=rig.sealer)
    return rig


# -- helpers -----------------------------------------------------------------------------------


async def rows(rig: Rig, model: type) -> list:
    async def work(session):
        return list((await session.execute(select(model).order_by(model.id))).scalars())

    return await rig.db.run(work)


async def leaks(rig: Rig, fragments: list[str], allowed: set[int]) -> list[tuple[int | None, str]]:
    """Every (person, fragment) where text reached someone outside `allowed`: delivered, or waiting in the outbox."""
    found = []
    for message in rig.delivery.sent:
        blob = json.dumps(message.reply.to_dict(), ensure_ascii=False)
        found += [(message.person_id, f) for f in fragments if f in blob and message.person_id not in allowed]
    for row in await rows(rig, OutboxMessage):
        blob = json.dumps(row.payload, ensure_ascii=False)
        found += [(row.person_id, f) for f in fragments if f in blob and row.person_id not in allowed]
    return found


def ids(*chats: Chat) -> set[int]:
    return {c.person.id for c in chats}


async def step(rig: Rig, when: datetime) -> int:
    """One feedback step at `when`, queued the way the Conductor does, then delivered."""
    rig.clock.set(when)
    conductor = Conductor(rig.db, sealer=rig.sealer)

    async def work(session) -> int:
        async def queue(person_id: int, key: str, topic: str, reply: Reply, due_at: datetime, kind: str) -> None:
            await conductor._queue(session, [Due(person_id, key, topic, reply.to_dict(), due_at, kind)], when)

        return await feedback_step(session, when, queue)

    count = await rig.db.run(work)
    await rig.sender.drain_once()
    return count


async def write(chat: Chat, well: str | None, better: str | None) -> Reply:
    """Answer the two questions (None skips one) and return the preview."""
    for answer in (well, better):
        if answer is None:
            chat.replies()  # brings the question's buttons in reach
            await chat.press("Skip")
        else:
            await chat.send(answer)
    return chat.expect("will get")


async def team_channel(rig: Rig) -> None:
    async def work(session) -> None:
        team = (await session.execute(select(Team))).scalars().one()
        team.broadcast = True
        team.broadcast_address = {"platform": "local", "channel": "platform-team"}
        session.add(team)

    await rig.db.run(work)


async def ask(
    rig: Rig, asker: Chat, who: list[str], deadline: str = "In 3 days", topic: str = "the Q3 planning doc"
) -> None:
    await asker.send("ask")
    asker.expect("What would you like feedback on?")
    await asker.send(topic)
    asker.expect("Whom should I ask?")
    await asker.send(", ".join(who))
    asker.expect("So far:")
    await asker.press("Done")
    asker.expect("By when")
    await asker.press(deadline)
    asker.expect("Send the request?")
    await asker.press("Send")
    asker.expect("Asked")


def posts(rig: Rig) -> list[str]:
    return [m.reply.text for m in rig.delivery.sent if m.person_id is None]


# -- feedback ----------------------------------------------------------------------------------


async def test_upward_feedback_reaches_the_manager_and_nobody_else(rig: Rig) -> None:
    tom, maya = rig.chat("tom@demo.baton"), rig.chat("maya@demo.baton")
    await tom.send("feedback")
    who = tom.expect("Who would you like to give feedback to?")
    assert who.choices[0].label == "Maya Chen (your manager)"
    await tom.press("Maya Chen (your manager)")
    tom.expect("Only Maya will see your answers", "how you and Maya work together")
    await tom.send(f"Planning notes arrive a day early {WELL}")
    tom.expect("would make your work go better", "Maya could clarify")
    await tom.send(f"Decisions written down {BETTER}")
    preview = tom.expect("Here's what Maya will get")
    assert (
        "Feedback from Tom about working together" in preview.text and WELL in preview.text and BETTER in preview.text
    )
    await tom.press("Send")
    tom.expect("Sent to Maya")
    got = maya.expect("Feedback from Tom about working together", WELL, BETTER)
    assert [(c.label, c.value) for c in got.choices] == [
        ("Thank", "feedback thank 1"),
        ("Reply", "feedback tom@demo.baton"),
    ]
    assert await leaks(rig, [WELL, BETTER], ids(tom, maya)) == []
    (entry,) = await rows(rig, FeedbackEntry)
    assert (entry.kind, entry.from_id, entry.to_id) == ("upward", tom.person.id, maya.person.id)
    assert WELL in entry.text and BETTER in entry.text


async def test_a_manager_responds_to_a_check_in_with_downward_feedback(rig: Rig) -> None:
    tom, maya = rig.chat("tom@demo.baton"), rig.chat("maya@demo.baton")

    async def checkin(session) -> None:
        run = CheckinRun(
            person_id=tom.person.id,
            team_id=tom.person.team_id,
            period="2026-W47",
            questions=list(DEFAULT_QUESTIONS),
            status="answered",
            started_at=rig.clock.now(),
            answered_at=rig.clock.now(),
        )
        session.add(run)
        await session.flush()
        session.add(
            CheckinAnswer(
                run_id=run.id, question_id="progress", text="Shipped the ZEPHYR migration", updated_at=rig.clock.now()
            )
        )
        session.add(CheckinAnswer(run_id=run.id, question_id="pulse", number=4, updated_at=rig.clock.now()))

    await rig.db.run(checkin)
    await maya.send("feedback tom@demo.baton checkin")
    summary = maya.expect("Tom's check-in for week 47")
    assert "What moved forward this week? — Shipped the ZEPHYR migration" in summary.text and "4 of 5" in summary.text
    maya.expect("Looking at Tom's check-in")
    await write(maya, f"The migration plan {WELL}", None)
    await maya.press("Send")
    got = tom.expect("Feedback from Maya on your check-in for week 47", WELL)
    assert "Would make the work go better" not in got.text  # the skipped question leaves no empty heading
    assert await leaks(rig, [WELL], ids(tom, maya)) == []
    (entry,) = await rows(rig, FeedbackEntry)
    assert (entry.kind, entry.from_id, entry.to_id) == ("downward", maya.person.id, tom.person.id)

    arjun = rig.chat("arjun@demo.baton")
    await arjun.send("feedback tom@demo.baton checkin")
    arjun.expect("is for Tom's manager", "feedback tom@demo.baton")


async def test_feedback_to_someone_outside_your_team_needs_their_email(rig: Rig) -> None:
    sam, lucia = rig.chat("sam@demo.baton"), rig.chat("lucia@demo.baton")
    await sam.send("feedback")
    who = sam.expect("Type their email")
    assert who.choices == ()  # no manager, no reports, no team: nobody to offer as a button
    await sam.send("Lucía")
    sam.expect("couldn't tell who that is")
    await sam.send("lucia@demo.baton")
    sam.expect("how you and Lucía work together")
    await write(sam, f"The on-call handover {WELL}", f"Runbook links {BETTER}")
    await sam.press("Send")
    lucia.expect("Feedback from Sam about working together", WELL)
    (entry,) = await rows(rig, FeedbackEntry)
    assert entry.kind == "peer"


async def test_unknown_people_and_odd_text_are_refused_and_nothing_is_recorded(rig: Rig) -> None:
    tom, maya = rig.chat("tom@demo.baton"), rig.chat("maya@demo.baton")
    for command, answer in [
        ("feedback nobody@demo.baton", "don't know anyone with that email"),
        ("feedback tom@demo.baton", "That's you"),
        ("feedback t\u043em@demo.baton", "look-alike letter"),  # a Cyrillic о
        ("feedback tom@", "doesn't look like an email"),
        ("kudos TOM@demo.baton", "Kudos go to someone else"),
    ]:
        await tom.send(command)
        tom.expect(answer)
    await tom.send("cancel")  # the kudos question stays open after its refusal, with its buttons
    await tom.send("feedback maya@demo.baton")
    tom.expect("how you and Maya work together")
    await tom.send("x" * 2001)
    tom.expect("2,001 characters", "Nothing was recorded yet")
    await tom.send("👍👍👍")
    tom.expect("couldn't find any words")
    await tom.send("ok" + "\u0301" * 12)
    tom.expect("stacked accent marks")
    await tom.press("Skip")
    tom.expect("would make your work go better")
    await tom.press("Skip")
    tom.expect("Both questions are skipped")
    await tom.send("cancel")
    tom.expect("Stopped")
    assert await rows(rig, FeedbackEntry) == []
    assert maya.replies() == []


async def test_edit_keeps_or_replaces_answers_and_cancel_sends_nothing(rig: Rig) -> None:
    tom = rig.chat("tom@demo.baton")
    await tom.send("feedback maya@demo.baton")
    await write(tom, f"First draft {WELL}", "A second thing I'd rather not send")
    await tom.press("Edit")
    again = tom.expect("how you and Maya work together", WELL)
    assert [c.label for c in again.choices] == ["Keep as it is", "Skip"]
    await tom.press("Keep as it is")
    tom.expect("would make your work go better", "rather not send")
    await tom.send(f"Shorter stand-ups {BETTER}")
    preview = tom.expect("will get")
    assert WELL in preview.text and BETTER in preview.text and "rather not send" not in preview.text
    await tom.press("Cancel")
    tom.expect("Cancelled — nothing was sent")
    assert await rows(rig, FeedbackEntry) == []
    assert await leaks(rig, [WELL, BETTER], ids(tom)) == []


async def test_a_second_send_press_changes_nothing(rig: Rig) -> None:
    tom, maya = rig.chat("tom@demo.baton"), rig.chat("maya@demo.baton")
    await tom.send("feedback maya@demo.baton")
    preview = await write(tom, f"Clear priorities {WELL}", None)
    await tom.press("Send", on=preview)
    tom.expect("Sent to Maya")
    await tom.press("Send", on=preview)
    tom.expect("already been answered")
    assert len(await rows(rig, FeedbackEntry)) == 1
    assert len([r for r in maya.replies() if WELL in r.text]) == 1


async def test_thank_tells_the_sender_once_and_reply_opens_feedback_back(rig: Rig) -> None:
    tom, maya = rig.chat("tom@demo.baton"), rig.chat("maya@demo.baton")
    await tom.send("feedback maya@demo.baton")
    await write(tom, f"Quick reviews {WELL}", None)
    await tom.press("Send")
    got = maya.expect("Feedback from Tom")
    await maya.press("Thank", on=got)
    maya.expect("passed your thanks on to Tom")
    tom.expect("Maya thanked you for your feedback")
    await maya.press("Thank", on=got)
    maya.expect("already thanked Tom")
    assert [r.text for r in tom.replies() if "thanked you" in r.text] == []
    (entry,) = await rows(rig, FeedbackEntry)
    assert entry.thanked_at is not None

    arjun = rig.chat("arjun@demo.baton")
    await arjun.send(f"feedback thank {entry.id}")
    arjun.expect("isn't addressed to you")

    await maya.press("Reply", on=got)
    maya.expect("how you and Tom work together", "a piece of work")
    await write(maya, f"Your review notes {BETTER}", None)
    await maya.press("Send")
    tom.expect("Feedback from Maya about working together", BETTER)
    back = (await rows(rig, FeedbackEntry))[-1]
    assert (back.kind, back.from_id, back.to_id) == ("downward", maya.person.id, tom.person.id)


# -- requests ----------------------------------------------------------------------------------


async def test_a_request_arrives_with_the_deadline_in_each_zone_and_the_answer_goes_to_the_requester(rig: Rig) -> None:
    maya, tom, aiko = rig.chat("maya@demo.baton"), rig.chat("tom@demo.baton"), rig.chat("aiko@demo.baton")
    await maya.send("ask")
    maya.expect("What would you like feedback on?")
    await maya.send("the Q3 planning doc")
    who = maya.expect("Whom should I ask?")
    await maya.press("Tom Becker (reports to you)", on=who)
    maya.expect("So far: Tom.")
    await maya.send("aiko@demo.baton")
    maya.expect("So far: Tom, Aiko.")
    await maya.press("Done")
    maya.expect("By when")
    await maya.press("In 3 days")
    maya.expect("I'll ask Tom and Aiko", "by Monday 23 November, 10:00")
    await maya.press("Send")
    maya.expect("Asked Tom, Aiko")
    request = tom.expect(
        "Maya Chen asks for your feedback on “the Q3 planning doc”", "by Monday 23 November, 10:00 your time"
    )
    aiko.expect("Maya Chen asks for your feedback", "by Monday 23 November, 18:00 your time")
    assert [c.label for c in request.choices] == ["Give feedback", "Decline"]

    await tom.press("Give feedback", on=request)
    tom.expect("Only Maya will see", "On “the Q3 planning doc”: what's one thing about the work that's going well?")
    await write(tom, f"The risks section {WELL}", f"A one-page summary {BETTER}")
    await tom.press("Send")
    got = maya.expect("Feedback from Tom on “the Q3 planning doc”, as you asked", WELL, BETTER)
    assert [c.label for c in got.choices] == ["Thank", "Reply"]
    assert await leaks(rig, [WELL, BETTER], ids(tom, maya)) == []
    (entry,) = await rows(rig, FeedbackEntry)
    reqs = {r.responder_id: r for r in await rows(rig, FeedbackRequest)}
    assert (entry.kind, entry.request_id) == ("requested", reqs[tom.person.id].id)
    assert (reqs[tom.person.id].status, reqs[aiko.person.id].status) == ("answered", "open")

    await tom.press("Give feedback", on=request)
    tom.expect("already answered Maya's request")
    await tom.press("Decline", on=request)
    tom.expect("already answered")
    assert len(await rows(rig, FeedbackEntry)) == 1
    assert [r for r in maya.replies() if "Feedback from Tom" in r.text] == []

    arjun = rig.chat("arjun@demo.baton")
    await arjun.send(f"ask answer {reqs[aiko.person.id].id}")
    arjun.expect("isn't addressed to you")


async def test_one_reminder_a_day_before_the_deadline_then_expiry_told_once(rig: Rig) -> None:
    maya, tom, aiko = rig.chat("maya@demo.baton"), rig.chat("tom@demo.baton"), rig.chat("aiko@demo.baton")
    await ask(rig, maya, ["tom@demo.baton", "aiko@demo.baton"])  # deadline 2026-11-23 09:00 UTC
    tom.expect("asks for your feedback")
    await aiko.press("Give feedback", on=aiko.expect("asks for your feedback"))
    await write(aiko, f"The timeline {WELL}", None)
    await aiko.press("Send")
    maya.expect("Feedback from Aiko")

    assert await step(rig, datetime(2026, 11, 20, 9, 5, tzinfo=UTC)) == 0
    assert await step(rig, datetime(2026, 11, 22, 8, 0, tzinfo=UTC)) == 0  # 25 hours before: not yet
    assert await step(rig, datetime(2026, 11, 22, 10, 0, tzinfo=UTC)) == 1
    reminder = tom.expect("A reminder: the deadline is a day away", "Maya Chen asks", "10:00 your time")
    assert await step(rig, datetime(2026, 11, 22, 12, 0, tzinfo=UTC)) == 0  # once only
    assert [r for r in aiko.replies() if "A reminder" in r.text] == []  # she answered already

    assert await step(rig, datetime(2026, 11, 23, 9, 0, tzinfo=UTC)) == 1
    maya.expect("reached its deadline: 1 of 2 answered", "Tom didn't get to it")
    assert await step(rig, datetime(2026, 11, 23, 10, 0, tzinfo=UTC)) == 0
    assert [r for r in maya.replies() if "deadline" in r.text] == []
    statuses = {r.responder_id: r.status for r in await rows(rig, FeedbackRequest)}
    assert statuses == {tom.person.id: "expired", aiko.person.id: "answered"}

    await tom.press("Give feedback", on=reminder)
    tom.expect("deadline for Maya's request", "has passed", "feedback maya@demo.baton")
    assert len(await rows(rig, FeedbackEntry)) == 1


async def test_reminders_wait_out_quiet_hours_and_skip_leave(rig: Rig) -> None:
    maya, tom = rig.chat("maya@demo.baton"), rig.chat("tom@demo.baton")
    await ask(rig, maya, ["tom@demo.baton", "aiko@demo.baton"])
    tom.replies()

    async def leave(session) -> None:
        session.add(
            Leave(person_id=tom.person.id, start=date(2026, 11, 21), end=date(2026, 11, 24), created_at=rig.clock.now())
        )

    await rig.db.run(leave)
    # 12:00 UTC is 21:00 in Tokyo (quiet until 08:00) and Tom is on leave
    assert await step(rig, datetime(2026, 11, 22, 12, 0, tzinfo=UTC)) == 1
    (row,) = [r for r in await rows(rig, OutboxMessage) if (r.key or "").startswith("feedback-reminder:")]
    assert row.person_id == rig.people["aiko@demo.baton"].id
    assert row.due_at == datetime(2026, 11, 22, 23, 0, tzinfo=UTC)  # 08:00 in Tokyo, still before the deadline
    assert [r.reminded for r in await rows(rig, FeedbackRequest)] == [False, True]
    assert [r for r in tom.replies() if "reminder" in r.text.lower()] == []


async def test_declining_tells_the_requester_and_closes_the_request(rig: Rig) -> None:
    maya, tom = rig.chat("maya@demo.baton"), rig.chat("tom@demo.baton")
    await ask(rig, maya, ["tom@demo.baton"], deadline="In two weeks", topic="my stand-up facilitation")
    request = tom.expect("asks for your feedback", "Friday 04 December")
    await tom.press("Decline", on=request)
    tom.expect("let Maya know")
    maya.expect("Tom can't give feedback on “my stand-up facilitation” this time")
    await tom.press("Give feedback", on=request)
    tom.expect("You declined Maya's request")
    (req,) = await rows(rig, FeedbackRequest)
    assert req.status == "declined" and await rows(rig, FeedbackEntry) == []


async def test_asking_stops_at_five_people_and_not_yourself(rig: Rig) -> None:
    maya = rig.chat("maya@demo.baton")
    await maya.send("ask how I run our planning")
    maya.expect("Whom should I ask?")
    await maya.send("maya@demo.baton")
    maya.expect("That's you")
    await maya.send("tom@demo.baton aiko@demo.baton arjun@demo.baton lucia@demo.baton sam@demo.baton")
    maya.expect("That's 5 — the most at a time")
    maya.expect("By when")
    assert await rows(rig, FeedbackRequest) == []  # nothing until Send


# -- kudos -------------------------------------------------------------------------------------


async def test_public_kudos_go_to_the_team_channel_and_to_the_person(rig: Rig) -> None:
    await team_channel(rig)
    maya, tom, arjun = rig.chat("maya@demo.baton"), rig.chat("tom@demo.baton"), rig.chat("arjun@demo.baton")
    await maya.send("kudos tom@demo.baton")
    maya.expect("What did Tom do?", "specific piece of work")
    await maya.send("Great job!")
    maya.expect("Kudos land best when they name the work")
    await maya.send(f"Untangled the release checklist {KUDOS}, so Friday's deploy took ten minutes")
    maya.expect("post it in the team channel too, or send it only to Tom?")
    await maya.press("Post in the team channel")
    maya.expect("It will also be posted in the team channel")
    await maya.press("Send")
    maya.expect("Sent to Tom and posted in the team channel")
    (post,) = [m for m in rig.delivery.sent if m.person_id is None]
    assert post.address == {"channel": "platform-team"} and post.reply.text.startswith(
        "Kudos to Tom Becker from Maya Chen: Untangled"
    )
    got = tom.expect("Kudos from Maya:", KUDOS, "Also posted in the team channel")
    assert "how do you like to be recognised" in got.text.lower()  # nobody had asked him yet
    assert [r for r in arjun.replies() if KUDOS in r.text] == []  # he sees it in the channel, not in a direct message
    (entry,) = await rows(rig, FeedbackEntry)
    assert (entry.kind, entry.public) == ("kudos", True)


async def test_kudos_respect_a_preference_for_private_recognition(rig: Rig) -> None:
    await team_channel(rig)
    tom, maya = rig.chat("tom@demo.baton"), rig.chat("maya@demo.baton")
    await tom.send("settings")
    tom.expect("You like recognition *either way*")
    await tom.press("Recognition")
    tom.expect("how would you like it?")
    await tom.press("In private")
    tom.expect("kudos for you will come to you alone")
    assert [p.recognition for p in await rows(rig, Person) if p.id == tom.person.id] == ["private"]

    await maya.send("kudos tom@demo.baton")
    await maya.send(f"Paired with Aiko on the flaky tests {KUDOS}")
    maya.expect("Tom prefers to be recognised in private, so I'll send this to them directly")
    preview = maya.expect("will get")
    assert "team channel" not in preview.text
    await maya.press("Send")
    got = tom.expect("Kudos from Maya:", KUDOS)
    assert "posted" not in got.text and "how do you like" not in got.text.lower()
    assert posts(rig) == []
    (entry,) = await rows(rig, FeedbackEntry)
    assert entry.public is False


async def test_a_preference_changed_before_sending_still_wins(rig: Rig) -> None:
    await team_channel(rig)
    maya, aiko = rig.chat("maya@demo.baton"), rig.chat("aiko@demo.baton")
    await maya.send("kudos aiko@demo.baton")
    await maya.send(f"Wrote the onboarding guide {KUDOS} in a week")
    maya.expect("post it in the team channel too")
    await maya.press("Post in the team channel")
    preview = maya.expect("will get")
    await aiko.send("settings")
    aiko.expect("What would you like to change?")
    await aiko.press("Recognition")
    aiko.expect("how would you like it?")
    await aiko.press("In private")
    await maya.press("Send", on=preview)
    maya.expect("Aiko prefers recognition in private, so I sent it to them directly")
    aiko.expect("Kudos from Maya:", KUDOS)
    assert posts(rig) == []


async def test_without_a_team_channel_kudos_are_private_without_asking(rig: Rig) -> None:
    maya, lucia = rig.chat("maya@demo.baton"), rig.chat("lucia@demo.baton")
    await maya.send("kudos")
    maya.expect("Whose work would you like to recognise?")
    await maya.press("Lucía Gómez (reports to you)")
    await maya.send(f"Found the root cause of the billing bug {KUDOS}")
    preview = maya.expect("will get")
    assert "team channel" not in preview.text
    await maya.press("Send")
    lucia.expect("Kudos from Maya:", KUDOS)
    assert posts(rig) == [] and (await rows(rig, FeedbackEntry))[0].public is False
    assert await leaks(rig, [KUDOS], ids(maya, lucia)) == []


# -- the check-in hook, logs, wording -----------------------------------------------------------


async def test_after_a_check_in_the_performer_is_invited_to_give_their_manager_feedback(rig: Rig) -> None:
    tom, sam = rig.chat("tom@demo.baton"), rig.chat("sam@demo.baton")
    await tom.send("checkin-end loaded")
    invite = tom.expect("only if you like", "how you and Maya work together")
    assert [(c.label, c.value) for c in invite.choices] == [
        ("Share feedback with Maya", "feedback maya@demo.baton"),
        ("Not now", "feedback later"),
    ]
    await tom.press("Not now", on=invite)
    tom.expect("No problem")
    await tom.press("Share feedback with Maya", on=invite)
    tom.expect("how you and Maya work together")
    await tom.send("cancel")
    tom.replies()

    await tom.send("checkin-end")  # the manager not loaded: the button resolves them when pressed
    plain = tom.expect("only if you like")
    assert [c.value for c in plain.choices] == ["feedback manager", "feedback later"]
    await tom.press("Share feedback with your manager", on=plain)
    tom.expect("Only Maya will see your answers")

    await sam.send("checkin-end")  # no manager: nothing
    sam.expect_nothing()


async def test_feedback_text_never_reaches_the_logs(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    await team_channel(rig)
    tom, maya = rig.chat("tom@demo.baton"), rig.chat("maya@demo.baton")
    with caplog.at_level(logging.DEBUG):
        await tom.send("feedback maya@demo.baton")
        await write(tom, f"Clear goals {WELL}", f"Fewer meetings {BETTER}")
        await tom.press("Send")
        await ask(rig, maya, ["tom@demo.baton"], topic="the Q3 planning doc")
        await tom.press("Give feedback", on=tom.expect("asks for your feedback"))
        await write(tom, f"Risks {WELL}", None)
        await tom.press("Send")
        await maya.send("kudos tom@demo.baton")
        await maya.send(f"Rebuilt the CI cache {KUDOS} overnight")
        maya.expect("post it in the team channel too")
        await maya.press("Post in the team channel")
        maya.expect("will get")
        await maya.press("Send")
        await step(rig, datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    assert "feedback entry" in caplog.text and "kudos entry" in caplog.text  # logging was captured
    for secret in (WELL, BETTER, KUDOS, "Q3 planning"):
        assert secret not in caplog.text


async def test_prompts_ask_about_the_work_never_for_a_judgement_of_the_person(rig: Rig) -> None:
    texts = prompt_texts()
    assert set(QUESTIONS) == {"upward", "downward", "peer", "checkin", "requested"}
    assert len(texts) == 2 * len(QUESTIONS) + 2
    for text in texts:
        assert not JUDGING.search(text), text
    for well, better in QUESTIONS.values():
        assert "going well" in well and "go better" in better
        assert "work" in well + better
    # and as actually shown, for each direction
    maya = rig.chat("maya@demo.baton")
    shown = []
    for command in ("feedback tom@demo.baton", "feedback sam@demo.baton", "kudos tom@demo.baton", "ask"):
        await maya.send(command)
        shown += [r.text for r in maya.replies()]
        await maya.send("cancel")
        maya.expect("Stopped")
    tom = rig.chat("tom@demo.baton")
    await tom.send("feedback maya@demo.baton")
    shown += [r.text for r in tom.replies()]
    assert len(shown) == 5
    for text in shown:
        assert not JUDGING.search(text), text


async def test_a_deadline_that_finds_the_colleague_away_moves_past_their_return(rig: Rig) -> None:
    """Issue 21: Tom's calendar says he is away over the deadline; Maya is not told it lapsed, and Tom gets
    until the same time on his second day back."""
    maya, tom = rig.chat("maya@demo.baton"), rig.chat("tom@demo.baton")
    await ask(rig, maya, ["tom@demo.baton"])  # deadline 2026-11-23 09:00 UTC, 10:00 in Berlin
    tom.expect("asks for your feedback")

    async def away(session) -> None:
        session.add(
            Leave(
                person_id=tom.person.id,
                start=date(2026, 11, 23),
                end=date(2026, 11, 25),
                source="calendar",
                created_at=rig.clock.now(),
            )
        )

    await rig.db.run(away)
    assert await step(rig, datetime(2026, 11, 23, 9, 0, tzinfo=UTC)) == 0
    (request,) = await rows(rig, FeedbackRequest)
    assert request.status == "open" and request.deadline == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert [r for r in maya.replies() if "deadline" in r.text] == []
    assert await step(rig, datetime(2026, 11, 27, 9, 0, tzinfo=UTC)) == 1  # back and still silent: now it lapses
    maya.expect("reached its deadline: 0 of 1 answered")
