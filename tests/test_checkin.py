"""The `checkin` and `leave` dialogs through the fake channel, on both databases.

Tom (Europe/Berlin) is invited by a real tick at his Friday 16:00 (15:00 UTC,
2026-11-20, ISO week 2026-W47) and answers by pressing the invitation's
buttons and typing, as he would in chat. His period closes on Monday
2026-11-23 at 09:00 Berlin (08:00 UTC).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from dialogs.checkin import CheckinDialog
from dialogs.engine.messages import Rating, Reply, TextInput
from dialogs.services.rhythm import Conductor
from storage.models import CheckinAnswer, CheckinRun, Leave
from tests.harness import Chat, Rig

W47 = "2026-W47"
TOM_SENDS = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # Friday 16:00 in Berlin
TOM_CLOSES = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin
SECRET = "ZEBRA-PINEAPPLE-7731"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


async def invited(rig: Rig, email: str = "tom@demo.baton", when: datetime = TOM_SENDS) -> tuple[Chat, Reply]:
    """Tick at `when`, deliver, and return the person's chat and the invitation they received."""
    chat = rig.chat(email)
    rig.clock.set(when)
    await Conductor(rig.db, sealer=rig.sealer).tick(when)
    await rig.sender.drain_once()
    return chat, chat.expect("check-in time")


async def runs(rig: Rig, email: str) -> list[CheckinRun]:
    person_id = rig.people[email].id

    async def work(session) -> list[CheckinRun]:
        return list(
            (
                await session.execute(
                    select(CheckinRun).where(CheckinRun.person_id == person_id).order_by(CheckinRun.id)
                )
            ).scalars()
        )

    return await rig.db.run(work)


async def answers(rig: Rig, run_id: int) -> dict[str, tuple[str | None, float | None]]:
    async def work(session) -> list[CheckinAnswer]:
        return list((await session.execute(select(CheckinAnswer).where(CheckinAnswer.run_id == run_id))).scalars())

    return {a.question_id: (a.text, a.number) for a in await rig.db.run(work)}


async def answer_rows(rig: Rig, run_id: int, question_id: str) -> int:
    async def work(session) -> int:
        statement = select(CheckinAnswer).where(
            CheckinAnswer.run_id == run_id, CheckinAnswer.question_id == question_id
        )
        return len(list((await session.execute(statement)).scalars()))

    return await rig.db.run(work)


async def leaves(rig: Rig) -> list[tuple[str, date, date, str]]:
    """(person email, start, end, recorded by email) for every Leave row."""
    emails = {p.id: email for email, p in rig.people.items()}

    async def work(session) -> list[Leave]:
        return list((await session.execute(select(Leave).order_by(Leave.id))).scalars())

    return [
        (emails[leave.person_id], leave.start, leave.end, emails.get(leave.created_by_id, "?"))
        for leave in await rig.db.run(work)
    ]


async def answer_all(chat: Chat, invitation: Reply, values: list[str | None]) -> None:
    await chat.press("Start", on=invitation)
    for number, value in enumerate(values, 1):
        prompt = chat.expect(f"Question {number} of {len(values)}")
        if value is None:
            await chat.press("Skip question", on=prompt)
        elif prompt.rating:
            await chat.press(value, on=prompt)
        else:
            await chat.send(value)
    chat.expect("Thanks, that's your check-in")


# -- 1. a whole check-in ---------------------------------------------------------------------------


async def test_a_check_in_from_the_invitation_to_the_thanks(rig: Rig) -> None:
    tom, invitation = await invited(rig)
    assert "week 47" in invitation.text and "5 short questions" in invitation.text
    rig.clock.set(TOM_SENDS + timedelta(minutes=5))

    await tom.press("Start", on=invitation)
    first = tom.expect("Question 1 of 5", "What moved forward this week?")
    assert isinstance(first.input, TextInput) and first.input.max_length == 2000
    assert first.choices[0].label == "Skip question"  # (other ways to answer may follow it)
    assert first.rating is None

    await tom.send("Shipped the importer")
    second = tom.expect("Question 2 of 5", "What slowed you down")
    assert [c.label for c in second.choices] == ["Skip question"]
    await tom.send("waiting on staging access")
    pulse = tom.expect("Question 3 of 5", "How was this week")
    assert pulse.rating == Rating(1, 5, "Hard going", "Great flow")
    assert pulse.action and pulse.action.startswith("checkin:")

    await tom.press("4", on=pulse)
    priorities = tom.expect("Question 4 of 5", "top priorities")
    await tom.press("Skip question", on=priorities)
    tom.expect("Question 5 of 5", "need from your manager")
    await tom.send("a review of my design doc")
    thanks = tom.expect("Thanks, that's your check-in for week 47")
    assert "until Monday 09:00" in thanks.text  # Tom's own zone
    tom.expect("While it's fresh")  # the thanks first, then the offer of a word with the manager
    tom.expect_nothing()

    [run] = await runs(rig, "tom@demo.baton")
    assert (run.period, run.status) == (W47, "answered")
    assert run.answered_at == TOM_SENDS + timedelta(minutes=5)
    assert await answers(rig, run.id) == {
        "progress": ("Shipped the importer", None),
        "blockers": ("waiting on staging access", None),
        "pulse": (None, 4.0),
        "needs": ("a review of my design doc", None),
    }


async def test_a_typed_number_answers_the_rating_question(rig: Rig) -> None:
    tom, invitation = await invited(rig)
    await tom.press("Start", on=invitation)
    await tom.send("progress")
    await tom.send("nothing")
    tom.expect("Question 3 of 5")
    await tom.send(" 4 ")
    tom.expect("Question 4 of 5")
    [run] = await runs(rig, "tom@demo.baton")
    assert (await answers(rig, run.id))["pulse"] == (None, 4.0)


async def test_typing_skip_question_skips_the_optional_rating(rig: Rig) -> None:
    tom, invitation = await invited(rig)
    await tom.press("Start", on=invitation)
    await tom.send("progress")
    await tom.send("nothing")
    tom.expect("Question 3 of 5")
    await tom.send("Skip question")
    tom.expect("Question 4 of 5")


# -- 2. refused answers ------------------------------------------------------------------------------


async def test_a_bad_rating_is_refused_politely_and_the_question_stays(rig: Rig) -> None:
    tom, invitation = await invited(rig)
    await tom.press("Start", on=invitation)
    await tom.send("progress")
    await tom.send("nothing")
    tom.expect("Question 3 of 5")
    for bad in ("seven", "6", "0", "3.5"):
        await tom.send(bad)
        [refusal] = tom.replies()
        assert "Please pick a number from 1 to 5" in refusal.text, bad
    [run] = await runs(rig, "tom@demo.baton")
    assert "pulse" not in await answers(rig, run.id)
    await tom.send("3")
    tom.expect("Question 4 of 5")
    assert (await answers(rig, run.id))["pulse"] == (None, 3.0)


async def test_an_over_long_answer_is_refused_and_nothing_is_stored(rig: Rig) -> None:
    tom, invitation = await invited(rig)
    await tom.press("Start", on=invitation)
    tom.expect("Question 1 of 5")
    await tom.send("x" * 2001)
    [refusal] = tom.replies()
    assert (
        "2,001 characters" in refusal.text and "up to 2,000" in refusal.text and "Nothing was recorded" in refusal.text
    )
    await tom.send("y" * 4500)  # beyond what any single message may carry
    [refusal] = tom.replies()
    assert "4,500 characters" in refusal.text and "Nothing was recorded" in refusal.text
    [run] = await runs(rig, "tom@demo.baton")
    assert await answers(rig, run.id) == {}
    await tom.send("z" * 2000)  # exactly the limit is fine
    tom.expect("Question 2 of 5")
    assert await answers(rig, run.id) == {"progress": ("z" * 2000, None)}


async def test_an_empty_looking_answer_is_refused(rig: Rig) -> None:
    tom, invitation = await invited(rig)
    await tom.press("Start", on=invitation)
    tom.expect("Question 1 of 5")
    await tom.send("\u200b\u200b")  # zero-width spaces only: nothing readable
    [reply] = tom.replies()
    assert "Question 2" not in reply.text
    [run] = await runs(rig, "tom@demo.baton")
    assert await answers(rig, run.id) == {}
    await tom.send("a real answer")  # the question stayed where it was
    tom.expect("Question 2 of 5")
    assert await answers(rig, run.id) == {"progress": ("a real answer", None)}


# -- 3. review, edit, and the close -------------------------------------------------------------------


async def test_answers_can_be_edited_until_the_period_closes(rig: Rig) -> None:
    tom, invitation = await invited(rig)
    await answer_all(tom, invitation, ["Shipped the importer", "nothing", "4", "Launch", "no"])
    [run] = await runs(rig, "tom@demo.baton")

    rig.clock.set(TOM_CLOSES - timedelta(hours=1))
    await tom.send("checkin")
    review = tom.expect("Your check-in for week 47", "Shipped the importer", "Change an answer?")
    assert [c.label for c in review.choices] == ["Edit 1", "Edit 2", "Edit 3", "Edit 4", "Edit 5", "Done"]
    await tom.press("Edit 1", on=review)
    tom.expect("Question 1 of 5", "What moved forward")
    await tom.send("Shipped the importer and the exporter")
    tom.expect("Updated.")
    review = tom.expect("Your check-in for week 47", "Shipped the importer and the exporter")
    await tom.press("Edit 3", on=review)
    tom.expect("Question 3 of 5")
    await tom.send("2")  # typed, this time
    tom.expect("Updated.")
    await tom.press("Done", on=tom.expect("Your check-in for week 47"))
    tom.expect("your check-in is saved")

    stored = await answers(rig, run.id)
    assert stored["progress"] == ("Shipped the importer and the exporter", None)
    assert stored["pulse"] == (None, 2.0)
    assert await answer_rows(rig, run.id, "progress") == 1
    [run] = await runs(rig, "tom@demo.baton")
    assert run.status == "answered"

    rig.clock.set(TOM_CLOSES)
    await tom.send("checkin start 2026-W47")  # the old invitation's button
    closed = tom.expect("closed")
    assert "can't be edited" in closed.text
    assert not closed.choices
    assert (await answers(rig, run.id))["progress"] == ("Shipped the importer and the exporter", None)
    await tom.send("checkin")  # week 47 has closed: a check-in started now is the coming week's
    tom.expect("Question 1 of 5")
    assert {r.period for r in await runs(rig, "tom@demo.baton")} == {"2026-W47", "2026-W48"}


async def test_a_review_left_open_cannot_edit_after_the_close(rig: Rig) -> None:
    tom, invitation = await invited(rig)
    await answer_all(tom, invitation, ["first", "nothing", "4", "next", "no"])
    rig.clock.set(TOM_CLOSES - timedelta(minutes=1))
    await tom.send("checkin")
    review = tom.expect("Your check-in for week 47")
    rig.clock.set(TOM_CLOSES + timedelta(minutes=1))
    await tom.press("Edit 1", on=review)
    tom.expect("has closed")
    [run] = await runs(rig, "tom@demo.baton")
    assert (await answers(rig, run.id))["progress"] == ("first", None)


async def test_an_edit_typed_after_the_close_is_refused(rig: Rig) -> None:
    tom, invitation = await invited(rig)
    await answer_all(tom, invitation, ["first", "nothing", "4", "next", "no"])
    rig.clock.set(TOM_CLOSES - timedelta(minutes=5))
    await tom.send("checkin")
    await tom.press("Edit 1", on=tom.expect("Your check-in for week 47"))
    tom.expect("Question 1 of 5")
    rig.clock.set(TOM_CLOSES + timedelta(days=1))  # Tuesday: the digest went out on Monday
    await tom.send("rewritten after the digest")
    [run] = await runs(rig, "tom@demo.baton")
    assert (await answers(rig, run.id))["progress"] == ("first", None)


async def test_a_late_first_answer_is_not_promised_edits_until_a_past_time(rig: Rig) -> None:
    tom, invitation = await invited(rig)
    rig.clock.set(utc(2026, 11, 24, 10, 0))  # Tuesday: closed for edits, but a late answer still counts
    await answer_all(tom, invitation, ["late", "nothing", "3", "next", "no"])
    [run] = await runs(rig, "tom@demo.baton")
    assert run.status == "answered"  # this part holds
    thanks = [r for r in rig.delivery.to(tom.person.id) if "Thanks, that's your check-in" in r.text][-1]
    assert "until Monday 09:00" not in thanks.text


# -- 4. a restart in the middle ----------------------------------------------------------------------


async def test_a_restart_mid_check_in_continues_at_the_same_question(rig: Rig) -> None:
    tom, invitation = await invited(rig)
    await tom.press("Start", on=invitation)
    await tom.send("Shipped the importer")
    tom.expect("Question 2 of 5")

    restarted = rig.restart()
    again = Chat(restarted, tom.person)
    again._seen = tom._seen
    await again.send("waiting on staging access")
    pulse = again.expect("Question 3 of 5")
    await again.press("5", on=pulse)
    again.expect("Question 4 of 5")
    await again.send("Launch")
    await again.send("no")
    again.expect("Thanks, that's your check-in for week 47")

    [run] = await runs(rig, "tom@demo.baton")
    assert run.status == "answered"
    assert await answers(rig, run.id) == {
        "progress": ("Shipped the importer", None),
        "blockers": ("waiting on staging access", None),
        "pulse": (None, 5.0),
        "priorities": ("Launch", None),
        "needs": ("no", None),
    }


# -- 5. double presses and old buttons ----------------------------------------------------------------


async def test_pressing_start_twice_makes_one_run(rig: Rig) -> None:
    tom, invitation = await invited(rig)
    await tom.press("Start", on=invitation)
    await tom.press("Start", on=invitation)
    assert len(await runs(rig, "tom@demo.baton")) == 1
    # the same delivery retried by the platform, and two replicas handling two presses at once
    await tom.press("Start", on=invitation, event_id="evt-start")
    await tom.press("Start", on=invitation, event_id="evt-start")
    other = rig.restart()
    await asyncio.gather(
        rig.engine.handle(tom.inbound(action="cmd", value=f"checkin start {W47}")),
        other.engine.handle(tom.inbound(action="cmd", value=f"checkin start {W47}")),
    )
    await rig.sender.drain_once()
    assert len(await runs(rig, "tom@demo.baton")) == 1
    prompts = [r for r in tom.replies() if "Question 1 of 5" in r.text]
    assert len(prompts) == 5  # two presses, one retried delivery dropped, two concurrent presses
    await tom.send("still one check-in")
    tom.expect("Question 2 of 5")
    [run] = await runs(rig, "tom@demo.baton")
    assert await answers(rig, run.id) == {"progress": ("still one check-in", None)}


async def test_last_weeks_buttons_are_closed_once_the_next_period_opens(rig: Rig) -> None:
    tom, invitation = await invited(rig)
    await Conductor(rig.db, sealer=rig.sealer).tick(utc(2026, 11, 27, 15, 0))  # next Friday: week 48 opens for Tom
    rig.clock.set(utc(2026, 11, 27, 15, 5))
    for label in ("Start", "Skip this week", "Snooze"):
        await tom.press(label, on=invitation)
        reply = tom.expect("closed")
        assert "The check-in for week 47 has closed; week 48's is open now" in reply.text, label
    assert await runs(rig, "tom@demo.baton") == []  # nothing created for either week


async def test_a_late_first_answer_counts_until_the_next_period_opens(rig: Rig) -> None:
    tom, invitation = await invited(rig)
    rig.clock.set(utc(2026, 11, 27, 14, 59))  # a week later, a minute before week 48 opens
    await tom.press("Start", on=invitation)
    tom.expect("Question 1 of 5")
    [run] = await runs(rig, "tom@demo.baton")
    assert run.period == W47


# -- 6. snooze and skip -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "until", "said"),
    [
        ("In 1 hour", utc(2026, 11, 20, 16, 0), "Friday at 17:00."),
        ("In 3 hours", utc(2026, 11, 20, 18, 0), "Friday at 19:00."),
        ("Tomorrow morning", utc(2026, 11, 21, 8, 0), "Saturday at 09:00."),
        (
            "Monday morning",
            utc(2026, 11, 23, 8, 0),
            "Monday at 09:00 (after it closes, but a late answer still counts).",
        ),
    ],
)
async def test_snooze_stores_the_time_and_says_it_in_local_time(
    rig: Rig, label: str, until: datetime, said: str
) -> None:
    tom, invitation = await invited(rig)
    await tom.press("Snooze", on=invitation)
    choices = tom.expect("When should I ask again?")
    assert [c.label for c in choices.choices] == ["In 1 hour", "In 3 hours", "Tomorrow morning", "Monday morning"]
    await tom.press(label, on=choices)
    reply = tom.expect("OK, I'll ask again")
    assert reply.text == f"OK, I'll ask again {said}"
    [run] = await runs(rig, "tom@demo.baton")
    assert (run.status, run.snoozed_until, run.snoozes) == ("open", until, 1)


async def test_skip_this_week_records_a_skip_and_promises_no_reminders(rig: Rig) -> None:
    tom, invitation = await invited(rig)
    await tom.press("Skip this week", on=invitation)
    reply = tom.expect("Skipped week 47")
    assert "No reminders this week" in reply.text
    [run] = await runs(rig, "tom@demo.baton")
    assert run.status == "skipped" and run.answered_at is None
    # changing one's mind later still works, and then a skip is no longer possible
    await tom.press("Start", on=invitation)
    tom.expect("Question 1 of 5")
    [run] = await runs(rig, "tom@demo.baton")
    assert run.status == "open"
    for value in ("a", "nothing", "3", "b", "no"):
        await tom.send(value)
    tom.expect("Thanks, that's your check-in")
    await tom.press("Skip this week", on=invitation)
    tom.expect("already answered", "nothing to skip")
    [run] = await runs(rig, "tom@demo.baton")
    assert run.status == "answered"


async def test_an_unknown_checkin_verb_is_explained(rig: Rig) -> None:
    tom = rig.chat("tom@demo.baton")
    await tom.send("checkin later")
    tom.expect("Try *checkin*")
    assert await runs(rig, "tom@demo.baton") == []


# -- 7. the leave dialog ------------------------------------------------------------------------------


async def test_leave_for_oneself_in_one_line(rig: Rig) -> None:
    tom = rig.chat("tom@demo.baton")
    await tom.send("leave 2026-12-21 2027-01-04")
    tom.expect("Noted: Mon 21 Dec to Mon 04 Jan", "I won't send you anything on my own then")
    assert await leaves(rig) == [("tom@demo.baton", date(2026, 12, 21), date(2027, 1, 4), "tom@demo.baton")]


async def test_leave_step_by_step_then_removed(rig: Rig) -> None:
    tom = rig.chat("tom@demo.baton")
    await tom.send("leave")
    await tom.press("Add leave", on=tom.expect("You are not away on any day ahead."))
    tom.expect("first day")
    await tom.send("tomorrow")
    tom.expect("last day")
    await tom.send("2026-11-27")
    tom.expect("Noted: Sat 21 Nov to Fri 27 Nov")
    menu = tom.expect("You are away on these days", "Sat 21 Nov – Fri 27 Nov (leave)")
    assert await leaves(rig) == [("tom@demo.baton", date(2026, 11, 21), date(2026, 11, 27), "tom@demo.baton")]
    await tom.press("Remove 21 Nov–27 Nov", on=menu)
    tom.expect("Removed.")
    await tom.press("Done", on=tom.expect("You are not away on any day ahead."))
    assert await leaves(rig) == []


async def test_a_manager_records_leave_for_a_report_by_email(rig: Rig) -> None:
    maya = rig.chat("maya@demo.baton")
    await maya.send("leave Tom@Demo.Baton 2026-12-21 2026-12-24")
    maya.expect("Noted: Mon 21 Dec to Thu 24 Dec", "I won't send Tom anything")
    assert await leaves(rig) == [("tom@demo.baton", date(2026, 12, 21), date(2026, 12, 24), "maya@demo.baton")]


@pytest.mark.parametrize("target", ["maya@demo.baton", "arjun@demo.baton", "nobody@demo.baton"])
async def test_a_report_cannot_record_leave_for_anyone_else(rig: Rig, target: str) -> None:
    tom = rig.chat("tom@demo.baton")
    await tom.send(f"leave {target} 2026-12-21 2026-12-24")
    tom.expect("You can record leave for yourself, or as their manager for your direct reports.")
    assert await leaves(rig) == []


@pytest.mark.parametrize(
    ("dates", "refusal"),
    [
        ("2026-13-01 2026-12-24", "Please write the date like"),
        ("2026-02-30 2026-03-02", "Please write the date like"),
        ("21/12/2026 2027-01-04", "Please write the date like"),
        ("2027-01-04 2026-12-21", "The last day is before the first one"),
        ("2026-01-01 2026-01-05", "already over"),
        ("2026-12-01 2028-01-01", "at most a year"),
        ("2026-12-21", "Write it as *leave 2026-12-21 2027-01-04*"),
    ],
)
async def test_bad_leave_dates_are_refused(rig: Rig, dates: str, refusal: str) -> None:
    tom = rig.chat("tom@demo.baton")
    await tom.send(f"leave {dates}")
    tom.expect(refusal)
    assert await leaves(rig) == []


# -- 8. someone without a team ------------------------------------------------------------------------


async def test_a_person_without_a_team_is_told_politely(rig: Rig) -> None:
    sam = rig.chat("sam@demo.baton")
    await sam.send("checkin")
    reply = sam.expect("not in a team with check-ins yet")
    assert "Ask your manager or admin" in reply.text
    assert await runs(rig, "sam@demo.baton") == []


# -- 9. privacy: what people write stays out of the logs ----------------------------------------------

BATON_LOGGERS = ("bot", "dialogs", "storage", "adapters")


async def run_a_check_in_with_a_secret(rig: Rig) -> None:
    tom, invitation = await invited(rig)
    await answer_all(tom, invitation, [f"progress {SECRET}", f"blocked by {SECRET}", "2", None, f"please {SECRET}"])
    await tom.send("checkin")
    await tom.press("Edit 2", on=tom.expect("Your check-in", SECRET))
    await tom.send(f"still blocked by {SECRET}")
    tom.expect("Updated.")
    await Conductor(rig.db, sealer=rig.sealer).tick(TOM_CLOSES)  # the digest carries the secret to Maya
    rig.clock.set(TOM_CLOSES)
    await rig.sender.drain_once()
    [digest] = [r for r in rig.delivery.to(rig.people["maya@demo.baton"].id) if r.card]
    assert any(SECRET in line for line in digest.card.lines)


async def test_baton_never_logs_what_people_answer(
    rig: Rig, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    await run_a_check_in_with_a_secret(rig)

    # a bug in the dialog whose exception message carries the answer: the error hook logs it without the text
    async def broken(self, turn, run, question, raw):
        raise ValueError(f"could not store {raw!r}")

    monkeypatch.setattr(CheckinDialog, "_record", broken)
    arjun, invitation = await invited(rig, "arjun@demo.baton", utc(2026, 11, 27, 10, 30))
    await arjun.press("Start", on=invitation)
    arjun.expect("Question 1 of 5")
    await arjun.send(f"my {SECRET} answer")
    arjun.expect("something went wrong on my side", "ref ")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and "ValueError" in errors[-1].getMessage()

    ours = [r for r in caplog.records if r.name.split(".")[0] in BATON_LOGGERS]
    assert ours, "expected Baton's own loggers to have logged something"
    for record in ours:
        assert SECRET not in record.getMessage(), record.name
        assert SECRET not in (record.exc_text or ""), record.name


async def test_no_log_at_debug_carries_what_people_answer(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """Every logger, the database drivers' included (aiosqlite logs statements with their parameters at DEBUG)."""
    caplog.set_level(logging.DEBUG)
    await run_a_check_in_with_a_secret(rig)
    assert logging.getLogger().getEffectiveLevel() == logging.DEBUG  # as `baton serve` with BATON_LOG_LEVEL=DEBUG
    assert SECRET not in caplog.text
