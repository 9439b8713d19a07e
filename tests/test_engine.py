"""The dialog engine through the fake channel, on both databases."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import func, select

from dialogs.engine import Dialog, Engine, State
from dialogs.engine.errors import UnknownPerson
from dialogs.engine.messages import Choice, Inbound, Reply, Sender
from storage.models import DialogState, OutboxMessage, Person
from tests.harness import Chat, Rig


async def person(rig: Rig, email: str) -> Person:
    async def load(session):
        return (await session.execute(select(Person).where(Person.email == email))).scalars().one()

    return await rig.db.run(load)


async def test_help_lists_what_a_manager_can_do(chat: Chat) -> None:
    await chat.send("help")
    reply = chat.expect("as a manager", "settings", "cancel")
    assert reply.action == "cmd" and any(c.value == "checkin" for c in reply.choices)
    assert "*goals*" in reply.text and "*360*" in reply.text and "*team*" in reply.text


async def test_help_speaks_to_a_performer_as_a_team_member(rig: Rig) -> None:
    arjun = rig.chat("arjun@demo.baton")
    await arjun.send("HELP")
    arjun.expect("as a team member")


async def test_unknown_text_gets_a_helpful_answer_with_a_suggestion(chat: Chat) -> None:
    await chat.send("setings please")
    chat.expect("didn't understand", "Did you mean *settings*", "help")


async def test_a_dialog_changes_a_setting_step_by_step(rig: Rig, chat: Chat) -> None:
    await chat.send("settings")
    chat.expect("time zone is *Europe/Berlin*")
    await chat.press("Time zone")
    chat.expect("Which time zone")
    await chat.send("tokyo")
    chat.expect("now *Asia/Tokyo*")
    chat.expect("What would you like to change?")
    await chat.press("Done")
    chat.expect("All set")
    assert (await person(rig, "maya@demo.baton")).timezone == "Asia/Tokyo"


async def test_bad_answer_is_refused_politely_and_the_question_stays(rig: Rig, chat: Chat) -> None:
    await chat.send("settings")
    chat.replies()
    await chat.press("Quiet hours")
    chat.replies()
    await chat.send("whenever")
    chat.expect("couldn't read that", "21:00-07:30")
    await chat.send("22-6:30")
    chat.expect("now *22:00–06:30*")
    maya = await person(rig, "maya@demo.baton")
    assert (maya.quiet_start, maya.quiet_end) == ("22:00", "06:30")


async def test_typed_label_or_number_answers_a_button_question(rig: Rig, chat: Chat) -> None:
    await chat.send("settings")
    chat.replies()
    await chat.send("quiet hours")
    chat.expect("When should I stay quiet?")
    await chat.send("1")  # the quiet-hours state takes text, so "1" is read as text and refused
    chat.expect("couldn't read that")


async def test_a_restarted_engine_continues_at_the_same_question(rig: Rig, chat: Chat) -> None:
    await chat.send("settings")
    chat.replies()
    await chat.press("Time zone")
    chat.expect("Which time zone")
    restarted = rig.restart()
    again = Chat(restarted, chat.person)
    again._seen = chat._seen
    await again.send("Lisbon")
    again.expect("now *Europe/Lisbon*")


async def test_a_retried_delivery_is_handled_once(rig: Rig, chat: Chat) -> None:
    await chat.send("settings", event_id="evt-1")
    await chat.send("settings", event_id="evt-1")
    assert len(chat.replies()) == 1
    state = await rig.db.run(lambda s: s.get(DialogState, chat.person.id))
    assert state.version == 1


async def test_two_concurrent_presses_of_the_same_button_are_recorded_once(rig: Rig, chat: Chat) -> None:
    await chat.send("settings")
    chat.replies()
    await chat.press("Quiet hours")
    prompt = chat.expect("When should I stay quiet?")
    first = chat.inbound(action=prompt.action, value="22:00-07:00")
    second = chat.inbound(action=prompt.action, value="20:00-08:00")
    await asyncio.gather(rig.engine.handle(first), rig.engine.handle(second))
    await rig.sender.drain_once()
    texts = [r.text for r in chat.replies()]
    assert sum("quiet hours are now" in t for t in texts) == 1
    assert sum("already been answered" in t for t in texts) == 1
    maya = await person(rig, "maya@demo.baton")
    assert (maya.quiet_start, maya.quiet_end) in {("22:00", "07:00"), ("20:00", "08:00")}


async def test_an_old_button_is_answered_as_expired(chat: Chat) -> None:
    await chat.send("settings")
    menu = chat.expect("What would you like to change?")
    await chat.press("Time zone", on=menu)
    chat.replies()
    await chat.press("Quiet hours", on=menu)
    chat.expect("earlier message", "already been answered or has expired")


async def test_cancel_leaves_the_dialog_and_keeps_what_was_answered(rig: Rig, chat: Chat) -> None:
    await chat.send("settings")
    chat.replies()
    await chat.press("Time zone")
    await chat.send("Tokyo")
    chat.replies()
    await chat.send("cancel")
    chat.expect("Stopped")
    await chat.send("Lisbon")
    chat.expect("didn't understand")
    assert (await person(rig, "maya@demo.baton")).timezone == "Asia/Tokyo"


async def test_oversized_text_is_refused_whole_and_nothing_changes(rig: Rig, chat: Chat) -> None:
    await chat.send("settings")
    chat.replies()
    await chat.press("Time zone")
    chat.replies()
    await chat.send("x" * 100)
    chat.expect("100 characters", "up to 64", "Nothing was recorded")
    await chat.send("y" * 5000)
    chat.expect("5,000 characters", "at most 4,000")
    assert (await person(rig, "maya@demo.baton")).timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    "text",
    ["\u200b\u200bhelp\u200b", "help\x00", "\u202ehelp", "ｈｅｌｐ", "🎻", "   ", "\n\n"],
    ids=["zero-width", "nul", "rtl-override", "fullwidth", "emoji", "spaces", "newlines"],
)
async def test_odd_unicode_always_gets_an_answer(chat: Chat, text: str) -> None:
    await chat.send(text)
    replies = chat.replies()
    assert len(replies) == 1 and replies[0].text


async def test_unknown_sender_is_refused_without_recording(rig: Rig) -> None:
    stranger = Inbound(Sender(platform="local", user_id="99999"), text="help", event_id="x")
    with pytest.raises(UnknownPerson):
        await rig.engine.handle(stranger)
    count = await rig.db.run(lambda s: s.scalar(select(func.count()).select_from(OutboxMessage)))
    assert count == 0


class Exploding(Dialog):
    """A dialog whose second step has a bug, to exercise the error hook."""

    name = "explode"
    commands = ("explode",)
    summary = "Test only."

    def __init__(self) -> None:
        self.first = "ask"
        self.states = {"ask": State(lambda turn: Reply("Say something secret."), on_text=self.boom)}

    async def boom(self, turn, text: str):
        turn.data["leaked"] = text
        raise ValueError(f"cannot handle {text}")


async def test_a_handler_bug_apologises_keeps_state_and_logs_no_user_text(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.engine = Engine(rig.db, [Exploding()], clock=rig.clock, sealer=rig.sealer)
    chat = rig.chat("tom@demo.baton")
    await chat.send("explode")
    chat.expect("Say something secret")
    with caplog.at_level(logging.DEBUG):
        await chat.send("my salary is 1234 and I hate Mondays")
    apology = chat.expect("something went wrong", "ref")
    ref = apology.text.split("(ref ")[1].split(")")[0]
    assert ref in caplog.text and "ValueError" in caplog.text
    assert "salary" not in caplog.text and "Mondays" not in caplog.text
    state = await rig.db.run(lambda s: s.get(DialogState, chat.person.id))
    assert state.state == "ask" and "leaked" not in state.data


async def test_inbound_repr_hides_what_the_person_wrote() -> None:
    inbound = Inbound(
        Sender("slack", "U1"), text="confidential words", value="also secret", raw={"text": "confidential"}
    )
    assert "confidential" not in repr(inbound) and "secret" not in repr(inbound)


async def test_reply_round_trips_through_its_stored_form() -> None:
    from dialogs.engine.messages import Card, Rating, TextInput

    reply = Reply(
        "t",
        (Choice("A", "a", "primary"),),
        Rating(1, 5, "low", "high"),
        TextInput("p", 10, False),
        Card("T", (("k", "v"),), ("l",)),
        "d:1",
    )
    assert Reply.from_dict(reply.to_dict()) == reply
