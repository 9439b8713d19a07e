"""Improvement ideas through the fake channel, on both databases: the state machine, every notification,
the anonymous relay both ways, and owner nudges within the budget and quiet hours.

The demo organisation: Maya (Europe/Berlin) manages Arjun, Lucía, Tom and Aiko in team Platform; Sam is an
admin with no manager. The clock stands at Friday 2026-11-20 09:00 UTC.
"""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from sqlalchemy import select, text

from dialogs.engine.sealing import open_payload
from dialogs.services.rhythm import Conductor
from storage.models import Idea, IdeaMessage, IdeaSubmission, OutboxMessage
from tests.harness import Chat, Rig

TEXT = "Move the stand-up to 10:00 so Tokyo can join — KOALA-5521"
ANON = "Rotate the on-call pager weekly — NUMBAT-7730"


async def _ideas(rig: Rig) -> list[Idea]:
    return list(await rig.db.run(lambda s: s.scalars(select(Idea))))


async def _tick(rig: Rig) -> None:
    await Conductor(rig.db, sealer=rig.sealer).tick(rig.clock.now())
    await rig.sender.drain_once()


def _short(idea: Idea) -> str:
    return idea.id[:6]


async def test_a_signed_idea_goes_through_every_state_and_the_sender_hears_each(rig: Rig) -> None:
    tom, maya = rig.chat("tom@demo.baton"), rig.chat("maya@demo.baton")
    await tom.send("idea")
    tom.expect("An idea for Maya", "anonymously")
    await tom.press("Signed")
    tom.expect("in a sentence or a paragraph")
    await tom.send(TEXT)
    tom.expect("Sent to Maya, with your name")
    maya.expect("Tom Becker sent you an idea", "KOALA-5521")
    [idea] = await _ideas(rig)
    assert (idea.state, idea.signed_by_id, idea.relay, idea.received_on) == (
        "received",
        tom.person.id,
        None,
        date(2026, 11, 20),
    )

    await maya.send(f"idea ack {_short(idea)}")
    maya.expect("Acknowledged")
    tom.expect("was acknowledged by Maya")
    await maya.send(f"idea decide {_short(idea)}")
    maya.expect("What have you decided")
    await maya.press("Try it")
    maya.expect("Why?")
    await maya.send("Worth a two-week trial with the whole team")
    maya.expect("Decided: will try")
    tom.expect("*will try*", "two-week trial")
    await maya.send(f"idea reply {_short(idea)} Can you draft the new invite?")
    tom.expect("Maya answered", "draft the new invite")
    await tom.send(f"idea reply {_short(idea)} Yes, today")
    maya.expect("Tom Becker answered", "Yes, today")
    await maya.send(f"idea done {_short(idea)}")
    tom.expect("is done")
    await maya.send(f"idea result {_short(idea)} Aiko joins every stand-up now")
    tom.expect("what changed", "Aiko joins every stand-up now")
    [idea] = await _ideas(rig)
    assert (idea.state, idea.decision) == ("result", "try")
    assert idea.acknowledged_on == idea.decided_on == idea.done_on == idea.result_on == date(2026, 11, 20)


async def test_a_decision_needs_a_reason_and_states_cannot_be_skipped(rig: Rig) -> None:
    tom, maya = rig.chat("tom@demo.baton"), rig.chat("maya@demo.baton")
    await tom.send(f"idea signed {TEXT}")
    tom.expect("Sent to Maya")
    [idea] = await _ideas(rig)
    await maya.send(f"idea done {_short(idea)}")
    maya.expect("Only an idea you adopted or are trying can be done")
    await maya.send(f"idea result {_short(idea)} nothing")
    maya.expect("Mark the idea done first")
    await tom.send(f"idea ack {_short(idea)}")
    tom.expect("Only the idea's owner can move it on")
    arjun = rig.chat("arjun@demo.baton")
    await arjun.send(f"idea ack {_short(idea)}")
    arjun.expect("I find no idea")
    await maya.send(f"idea decide {_short(idea)}")
    await maya.press("Decline")
    maya.expect("Why?")
    assert (await _ideas(rig))[0].state == "received"  # nothing decided before the reason


async def _anonymously(chat: Chat, text: str) -> None:
    await chat.send(f"idea anonymous {text}")
    chat.expect("Sent anonymously to Maya", "at least 3 people")


async def test_anonymous_ideas_wait_for_three_senders_and_go_out_together_dated_that_day(rig: Rig) -> None:
    """Fewer than three anonymous senders would let a database reader, who sees who used `idea` on which
    day, point at the sender: such ideas are held, however many days pass, and go out with the third."""
    tom, arjun, lucia, maya = (rig.chat(f"{n}@demo.baton") for n in ("tom", "arjun", "lucia", "maya"))
    await _anonymously(tom, ANON)
    await _anonymously(tom, "A second idea of Tom's — WOMBAT-1")
    await _anonymously(arjun, "Pair on reviews — QUOKKA-2")
    for _ in range(3):  # two people, three ideas, three days: still held
        rig.clock.advance(days=1)
        await _tick(rig)
    assert await _ideas(rig) == []
    assert not [r.text for r in maya.replies() if "idea" in r.text]
    await tom.send("idea mine")
    tom.expect("waiting for the next batch", "NUMBAT-7730")

    await _anonymously(lucia, "Write down on-call handovers — DINGO-3")
    await _tick(rig)
    assert await _ideas(rig) == []  # the third sender's idea waits for the next day like any other
    rig.clock.advance(days=1)
    await _tick(rig)
    maya.expect("4 anonymous ideas have come in")
    ideas = await _ideas(rig)
    assert sorted(i.text.split()[-1] for i in ideas) == ["DINGO-3", "NUMBAT-7730", "QUOKKA-2", "WOMBAT-1"]
    assert {i.received_on for i in ideas} == {rig.clock.now().date()}  # the batch's day: no sender's own
    assert {i.signed_by_id for i in ideas} == {None}
    assert list(await rig.db.run(lambda s: s.scalars(select(IdeaSubmission)))) == []


async def test_an_anonymous_idea_reaches_its_owner_in_a_batch_and_the_relay_works_both_ways(rig: Rig) -> None:
    tom, arjun, lucia, maya = (rig.chat(f"{n}@demo.baton") for n in ("tom", "arjun", "lucia", "maya"))
    await tom.send("idea")
    await tom.press("Anonymous")
    await tom.send(ANON)
    reply = tom.expect("Sent anonymously to Maya")
    assert "NUMBAT" not in reply.text
    assert await _ideas(rig) == []  # only a sealed submission so far
    await tom.send("idea mine")
    tom.expect("waiting for the next batch", "NUMBAT-7730")
    await _anonymously(arjun, "Pair on reviews — QUOKKA-2")
    await _anonymously(lucia, "Write down on-call handovers — DINGO-3")

    await _tick(rig)
    assert await _ideas(rig) == []  # published with the others, on the next day
    rig.clock.advance(days=1)
    await _tick(rig)
    maya.expect("3 anonymous ideas have come in")
    ideas = {i.text.split()[-1]: i for i in await _ideas(rig)}
    idea = ideas["NUMBAT-7730"]
    assert (idea.signed_by_id, idea.received_on, idea.text) == (None, date(2026, 11, 21), ANON)
    await maya.send("idea list")
    maya.expect("from anonymous", "NUMBAT-7730")

    await maya.send(f"idea ack {_short(idea)}")
    await maya.send(f"idea reply {_short(idea)} Which rota tool would you use?")
    tom.expect_nothing()  # not in Maya's turn: the scheduler relays it on a later day
    rig.clock.advance(days=1)
    await _tick(rig)
    assert not [r.text for r in tom.replies() if "news" in r.text]  # news for one person would tie them to it
    await tom.send("idea mine")  # … but Tom can look at any time
    tom.expect("anonymous, to Maya", "acknowledged", "Which rota tool")
    for other in ("QUOKKA-2", "DINGO-3"):
        await maya.send(f"idea ack {_short(ideas[other])}")
    rig.clock.advance(days=1)
    await _tick(rig)
    rig.clock.advance(hours=12)  # Lucía's morning comes later: notices wait out quiet hours
    await rig.sender.drain_once()
    for chat in (tom, arjun, lucia):  # three people with news: told together, none of them what moved
        news = chat.expect("There's news on an idea you sent anonymously")
        assert "rota" not in news.text and "NUMBAT" not in news.text

    await tom.send(f"idea reply {_short(idea)} PagerDuty, we already pay for it")
    tom.expect("Sent anonymously")
    await arjun.send(f"idea reply {_short(ideas['QUOKKA-2'])} Thanks!")
    rig.clock.advance(hours=12)  # the next morning, 09:00 UTC
    await _tick(rig)
    assert not [r.text for r in maya.replies() if "answered" in r.text]  # two people's answers: held
    await lucia.send(f"idea reply {_short(ideas['DINGO-3'])} Happy to draft it")
    rig.clock.advance(days=1)
    await _tick(rig)
    maya.expect("The anonymous sender answered you")
    messages = list(
        await rig.db.run(
            lambda s: s.scalars(
                select(IdeaMessage).where(IdeaMessage.idea_id == idea.id).order_by(IdeaMessage.from_owner)
            )
        )
    )
    assert [(m.from_owner, m.text) for m in messages] == [
        (False, "PagerDuty, we already pay for it"),
        (True, "Which rota tool would you use?"),
    ]


async def test_what_an_anonymous_sender_is_told_is_sealed_in_the_outbox(rig: Rig) -> None:
    tom = rig.chat("tom@demo.baton")
    await tom.send(f"idea anonymous {ANON}")
    tom.expect("Sent anonymously to Maya")
    await tom.send("idea mine")
    tom.expect("NUMBAT-7730")
    rows = list(
        await rig.db.run(lambda s: s.scalars(select(OutboxMessage).where(OutboxMessage.person_id == tom.person.id)))
    )
    assert rows and all(set(row.payload) == {"sealed"} for row in rows)
    assert all("NUMBAT" not in str(row.payload) and "Maya" not in str(row.payload) for row in rows)
    opened = [open_payload(rig.sealer, row.payload, row.key)["text"] for row in rows]
    assert any("Sent anonymously to Maya" in text for text in opened)


async def test_an_owner_is_nudged_once_after_a_week_within_quiet_hours_and_the_budget(rig: Rig) -> None:
    tom, maya = rig.chat("tom@demo.baton"), rig.chat("maya@demo.baton")
    await tom.send(f"idea signed {TEXT}")
    maya.expect("sent you an idea")
    rig.clock.advance(days=6)
    await _tick(rig)
    maya.expect_nothing()
    rig.clock.advance(days=1, hours=11)  # Friday 20:00 UTC: 21:00 in Berlin, Maya's quiet hours
    await _tick(rig)
    [nudge] = list(await rig.db.run(lambda s: s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "nudge"))))
    assert nudge.person_id == maya.person.id and nudge.due_at.hour == 7  # 08:00 Berlin
    await _tick(rig)
    assert (
        len(list(await rig.db.run(lambda s: s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "nudge")))))
        == 1
    )


async def test_a_nudge_waits_when_the_owners_budget_is_spent(rig: Rig) -> None:
    tom, maya = rig.chat("tom@demo.baton"), rig.chat("maya@demo.baton")
    await tom.send(f"idea signed {TEXT}")
    rig.clock.advance(days=7)
    await Conductor(rig.db, sealer=rig.sealer, budget=0).tick(rig.clock.now())
    nudges = list(await rig.db.run(lambda s: s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "nudge"))))
    assert nudges == []
    [idea] = await _ideas(rig)
    assert idea.nudged_on is None  # asked again at a later tick, once the budget allows
    await _tick(rig)
    maya.expect("waited a week")


async def test_an_idea_for_a_team_goes_to_its_owner_and_a_person_without_one_is_told(rig: Rig) -> None:
    sam = rig.chat("sam@demo.baton")
    await sam.send("idea signed More pairing")
    sam.expect("you have no manager")
    await sam.send("idea for Platform")
    sam.expect("An idea for Maya")
    await sam.press("Signed")
    await sam.send("More pairing on Fridays")
    sam.expect("Sent to Maya")
    [idea] = await _ideas(rig)
    assert idea.team_id is not None and idea.owner_id == rig.people["maya@demo.baton"].id


async def test_a_chat_without_ideas_is_told_how_to_send_one(chat: Chat) -> None:
    await chat.send("idea mine")
    chat.expect("You haven't sent an idea yet")


async def test_a_waiting_anonymous_idea_can_be_sent_signed_or_taken_back(rig: Rig) -> None:
    """Anonymous ideas may wait a long time for company: the sender has a way out, both ways."""
    tom, arjun, lucia, maya = (rig.chat(f"{n}@demo.baton") for n in ("tom", "arjun", "lucia", "maya"))
    await _anonymously(tom, ANON)
    await _anonymously(arjun, "Pair on reviews — QUOKKA-2")
    await tom.send("idea mine")
    listing = tom.expect("waiting for the next batch", "NUMBAT-7730", "idea sign")
    [sign, withdraw] = listing.choices
    await tom.press(sign.label)
    tom.expect("Sent to Maya, with your name")
    maya.expect("Tom Becker sent you an idea", "NUMBAT-7730")
    await tom.press(withdraw.label)  # an old button, pressed after the idea went out signed
    tom.expect("Name a waiting idea")
    [idea] = await _ideas(rig)
    assert (idea.signed_by_id, idea.relay, idea.text) == (tom.person.id, None, ANON)

    await arjun.send("idea mine")
    ref = arjun.expect("QUOKKA-2").choices[1].value.split()[-1]
    await arjun.send(f"idea withdraw {ref}")
    arjun.expect("Taken back", "never reached anyone")
    await arjun.send("idea mine")
    arjun.expect("You haven't sent an idea yet")
    assert list(await rig.db.run(lambda s: s.scalars(select(IdeaSubmission)))) == []

    for n, chat in enumerate((lucia, rig.chat("aiko@demo.baton"), arjun)):  # a batch of three, without them
        await _anonymously(chat, f"Another idea — EMU-{n}")
    rig.clock.advance(days=1)
    await _tick(rig)
    texts = sorted(i.text for i in await _ideas(rig))
    assert [t for t in texts if "QUOKKA" in t] == [] and len(texts) == 4  # the withdrawn one never appears


async def test_a_batch_that_loses_a_sender_while_it_is_claimed_is_held_not_published(rig: Rig) -> None:
    """Three senders, and one withdraws while the scheduler claims the batch (another connection's delete
    commits under the claim's feet): two people's ideas alone must not go out. PostgreSQL only: on SQLite
    the one writer makes the two transactions take turns."""
    if rig.db.is_sqlite:
        pytest.skip("SQLite runs one transaction at a time: the race needs PostgreSQL's row locks")
    maya = rig.chat("maya@demo.baton")
    for n, name in enumerate(("tom", "arjun", "lucia")):
        await _anonymously(rig.chat(f"{name}@demo.baton"), f"Idea number {n} — KIWI-{n}")
    rig.clock.advance(days=1)

    async with rig.db.engine.connect() as other:  # a withdraw, caught before its commit
        await other.begin()
        submissions = (await other.execute(text("SELECT id FROM idea_submission"))).scalars().all()
        assert len(submissions) == 3
        await other.execute(text("DELETE FROM idea_submission WHERE id = :i"), {"i": submissions[0]})
        tick = asyncio.create_task(_tick(rig))
        await asyncio.sleep(0.5)  # the tick has read all three and waits for the row this transaction holds
        assert not tick.done()
        await other.commit()
        await tick
    assert await _ideas(rig) == []  # two people's ideas left: held, not published
    assert len(list(await rig.db.run(lambda s: s.scalars(select(IdeaSubmission))))) == 2
    assert not [r.text for r in maya.replies() if "anonymous idea" in r.text]


async def test_news_for_someone_who_left_does_not_count_toward_the_three(rig: Rig) -> None:
    """Only people who get a message cover each other: with one of three senders gone, news for the other two
    would tie each of them to one of two ideas."""
    tom, arjun, lucia, maya = (rig.chat(f"{n}@demo.baton") for n in ("tom", "arjun", "lucia", "maya"))
    for n, chat in enumerate((tom, arjun, lucia)):
        await _anonymously(chat, f"Idea number {n} — KIWI-{n}")
    rig.clock.advance(days=1)
    await _tick(rig)
    ideas = await _ideas(rig)
    assert len(ideas) == 3
    await rig.db.run(
        lambda s: s.execute(text("UPDATE person SET active = false WHERE id = :i"), {"i": lucia.person.id})
    )
    for idea in ideas:
        await maya.send(f"idea ack {_short(idea)}")
    rig.clock.advance(days=1)
    await _tick(rig)
    rig.clock.advance(hours=12)
    await rig.sender.drain_once()
    for chat in (tom, arjun):
        assert not [r.text for r in chat.replies() if "news" in r.text]
    assert all(i.relay_pending for i in await _ideas(rig))  # kept for when there is company
