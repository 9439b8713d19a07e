"""The appreciative retro: thresholds on themes and quotes, the vote, commitments as action items, and the
reminder and follow-up within the weekly budget and quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select, text

from dialogs.services.rhythm import Conductor
from storage.models import (
    ActionItem,
    OutboxMessage,
    Retro,
    RetroProposal,
    RetroQuote,
    RetroTheme,
    SealedDraft,
    metadata,
)
from tests.harness import Chat, Rig

MEMBERS = ["arjun@demo.baton", "lucia@demo.baton", "tom@demo.baton", "aiko@demo.baton"]
# Three people tell about the checklist, two about customer support: only the first theme reaches 3 people.
STORIES = {
    "maya@demo.baton": "We paired on the release checklist and it made the launch calm (mark-a)",
    "arjun@demo.baton": "Pairing on the release checklist caught the config bug early (mark-b)",
    "lucia@demo.baton": "The release checklist and pairing meant nobody worked late (mark-c)",
    "tom@demo.baton": "Customers thanked us for the fast support replies (mark-d)",
    "aiko@demo.baton": "Fast customer support answers during the launch week (mark-e)",
}
DESIGNS = {
    "maya@demo.baton": "Keep a shared release checklist for every launch",
    "arjun@demo.baton": "Pair on every release for an hour",
    "lucia@demo.baton": "A checklist review in the planning meeting",
}


async def tick(rig: Rig):
    report = await Conductor(rig.db, sealer=rig.sealer).tick(rig.clock.now())
    await rig.sender.drain_once()
    return report


async def start(rig: Rig, chat: Chat, theme: str = "how we handled the Q3 launch") -> Retro:
    await chat.send("retro")
    chat.expect("What should the retro be about?")
    await chat.send(theme)
    chat.expect(f"A retro on “{theme}”", "at least 3 people")
    await chat.press("Start")
    chat.expect("Started. 5 people are asked")
    return await latest(rig)


async def latest(rig: Rig) -> Retro:
    rows = await rig.db.run(lambda s: s.execute(select(Retro).order_by(Retro.id.desc())))
    return rows.scalars().first()


async def answer(
    rig: Rig, email: str, retro: Retro, story: str | None, design: str | None, *, sign: bool = False
) -> None:
    person = rig.chat(email)
    await person.send(f"retro answer {retro.id}")
    person.expect("1 of 3 — Discover")
    if story:
        await person.send(story)
        person.expect("sign that story")
        await person.press("Sign it with my name" if sign else "Keep it anonymous")
    else:
        await person.press("Skip")
    person.expect("2 of 3 — Dream")
    await person.send("We would ship without stress (dream)")
    person.expect("3 of 3 — Design")
    if design:
        await person.send(design)
    else:
        await person.press("Skip")
    person.expect("saved and sealed")


async def dump(rig: Rig) -> str:
    async def work(session):
        found = []
        for table in metadata.sorted_tables:
            rows = await session.execute(text(f'SELECT * FROM "{table.name}"'))
            found += [f"{table.name}: {dict(r._mapping)!r}" for r in rows]
        return "\n".join(found)

    return await rig.db.run(work)


async def collect(rig: Rig, chat: Chat) -> Retro:
    retro = await start(rig, chat)
    await tick(rig)  # invitations
    for email, story in STORIES.items():
        rig.clock.advance(minutes=30)
        await answer(rig, email, retro, story, DESIGNS.get(email))
    return retro


async def close(rig: Rig, retro: Retro) -> None:
    rig.clock.set(retro.closes_at + timedelta(minutes=1))
    await tick(rig)


async def test_a_theme_from_two_people_is_not_shown_and_nothing_is_readable_before_the_close(
    rig: Rig, chat: Chat
) -> None:
    retro = await collect(rig, chat)
    before = await dump(rig)
    for mark in ("mark-a", "mark-b", "mark-c", "mark-d", "mark-e", "release checklist", "Customers"):
        assert mark not in before  # sealed drafts only

    tom = rig.chat("tom@demo.baton")
    await close(rig, retro)
    themes = (await rig.db.run(lambda s: s.execute(select(RetroTheme)))).scalars().all()
    quotes = (await rig.db.run(lambda s: s.execute(select(RetroQuote)))).scalars().all()
    discover = [t for t in themes if t.stage == "discover"]
    assert len(discover) == 1 and discover[0].people == 3 and "checklist" in discover[0].name
    assert all(q.author_id is None for q in quotes)
    after = await dump(rig)
    # The customer theme (two people) is dropped without ever being written readable.
    assert "mark-d" not in after and "mark-e" not in after and "Customers" not in after
    assert "sealed_draft" not in after  # every draft deleted at the close
    assert {str(t.written_on) for t in themes} == {str(rig.clock.now().date())}
    proposals = (await rig.db.run(lambda s: s.execute(select(RetroProposal)))).scalars().all()
    assert sorted(p.text for p in proposals) == sorted(DESIGNS.values())
    # Everyone gets the results privately, with the vote.
    reply = tom.expect("has closed: 5 people answered", "Now the vote")
    assert reply.card is not None and any("checklist" in line for line in reply.card.lines)
    assert not any("Customers" in line for line in reply.card.lines)


async def test_below_the_threshold_nothing_is_released_but_a_signed_story_is(rig: Rig, chat: Chat) -> None:
    retro = await start(rig, chat)
    await answer(
        rig, "tom@demo.baton", retro, "Tom's signed story about the launch (mark-s)", "Ship smaller", sign=True
    )
    await answer(rig, "aiko@demo.baton", retro, "Aiko's story about the launch (mark-t)", "Ship smaller too")
    await close(rig, retro)
    quotes = (await rig.db.run(lambda s: s.execute(select(RetroQuote)))).scalars().all()
    assert [(q.text, q.author_id) for q in quotes] == [
        ("Tom's signed story about the launch (mark-s)", rig.people["tom@demo.baton"].id)
    ]
    after = await dump(rig)
    assert "mark-t" not in after and "Ship smaller" not in after
    assert (await rig.db.run(lambda s: s.scalar(select(func.count()).select_from(RetroProposal)))) == 0
    assert (await latest(rig)).status == "done"


async def test_the_vote_and_commitments_feed_action_items_and_a_follow_up(rig: Rig, chat: Chat) -> None:
    retro = await collect(rig, chat)
    await close(rig, retro)
    proposals = {p.text: p for p in (await rig.db.run(lambda s: s.execute(select(RetroProposal)))).scalars().all()}
    shared = proposals[DESIGNS["maya@demo.baton"]].number
    pair = proposals[DESIGNS["arjun@demo.baton"]].number
    for email in ("arjun@demo.baton", "lucia@demo.baton", "tom@demo.baton"):
        voter = rig.chat(email)
        await voter.send(f"retro vote {retro.id}")
        voter.expect("Pick up to 3 proposals")
        await voter.press(str(shared))
        voter.expect("(1 chosen)")
        if email != "tom@demo.baton":
            await voter.press(str(pair))
            voter.expect("(2 chosen)")
        await voter.press("Done")
        voter.expect("saved, sealed until the vote closes")
    assert "retro_vote" not in await dump(rig)  # no table links a voter to a proposal
    retro = await latest(rig)
    rig.clock.set(retro.vote_closes_at + timedelta(minutes=1))
    await tick(rig)
    counted = {p.text: p.votes for p in (await rig.db.run(lambda s: s.execute(select(RetroProposal)))).scalars()}
    assert counted[DESIGNS["maya@demo.baton"]] == 3 and counted[DESIGNS["arjun@demo.baton"]] == 2

    team = rig.chat("tom@demo.baton")
    chat.expect("The vote on the retro", "3 people voted", "3 votes")
    await chat.press("Choose owners and dates")
    chat.expect(DESIGNS["maya@demo.baton"], "Who will own it?")
    await chat.press("Lucía Gómez")
    chat.expect("By when?")
    await chat.press("In 2 weeks")
    chat.expect(DESIGNS["arjun@demo.baton"], "Who will own it?")
    await chat.press("Arjun Rao")
    await chat.press("In 4 weeks")
    chat.expect("Done: 2 commitments")
    items = (await rig.db.run(lambda s: s.execute(select(ActionItem)))).scalars().all()
    retro_items = sorted((i.text, i.owner_id, i.source, i.pair_id) for i in items if i.source == "retro")
    assert retro_items == sorted(
        [
            (DESIGNS["maya@demo.baton"], rig.people["lucia@demo.baton"].id, "retro", None),
            (DESIGNS["arjun@demo.baton"], rig.people["arjun@demo.baton"].id, "retro", None),
        ]
    )
    team.expect("The team's commitments")
    assert (await latest(rig)).status == "done"

    # After the first commitment's date, the team is asked whether it helped: a budgeted follow-up.
    lucia_item = next(i for i in items if i.owner_id == rig.people["lucia@demo.baton"].id and i.source == "retro")
    rig.clock.set(rig.clock.now().replace(hour=12) + timedelta(days=16))
    await tick(rig)
    rows = (
        (await rig.db.run(lambda s: s.execute(select(OutboxMessage).where(OutboxMessage.topic == "retro-followup"))))
        .scalars()
        .all()
    )
    assert rows and {r.kind for r in rows} == {"follow-up"}
    assert lucia_item.due_on is not None
    rig.clock.advance(hours=12)  # past everyone's quiet hours: Tokyo's and Mexico City's questions go out too
    await rig.sender.drain_once()
    # Answers stay sealed, changeable, until they are counted all at once; nothing counts them in the turn.
    votes = {"tom": ("No", "Yes"), "arjun": ("Yes",), "aiko": ("Partly",), "lucia": ("Yes",)}
    for first, presses in votes.items():
        person = rig.chat(f"{first}@demo.baton")
        asked = next((r for r in reversed(rig.delivery.to(person.person.id)) if "Has it helped" in r.text), None)
        assert asked is not None, first
        for label in presses:  # by value: a question that waited may arrive folded with others
            value = next(c.value for c in asked.choices if c.value.endswith(f" {label.lower()}"))
            await person.press(value, on=asked)
            person.expect("counted together when the question closes")

    async def chosen(session):
        return list((await session.execute(select(RetroProposal).where(RetroProposal.chosen))).scalars())

    async def sealed(session):
        return list(
            (await session.execute(select(SealedDraft).where(SealedDraft.scope.like("%retro-helped%")))).scalars()
        )

    assert all((p.helped_yes, p.helped_partly, p.helped_no) == (0, 0, 0) for p in await rig.db.run(chosen))
    assert await rig.db.run(sealed)  # kept, sealed, one per person who answered
    drafts = await rig.db.run(sealed)  # sealed and padded: one size whatever was answered, no plaintext
    assert len({len(d.sealed) for d in drafts}) == 1 and not any('"helped"' in d.sealed for d in drafts)
    # Two weeks after the question, the scheduler counts them in its own transaction and forgets the answers.
    rig.clock.set(rig.clock.now() + timedelta(days=15))
    await tick(rig)
    counted = [p for p in await rig.db.run(chosen) if p.helped_counted_on is not None]
    assert counted and await rig.db.run(sealed) == []
    first = min(counted, key=lambda p: p.followed_up_at or datetime.max.replace(tzinfo=UTC))  # all followed up
    # Tom changed his mind (No → Yes): his last answer counts, once.
    assert (first.helped_yes, first.helped_partly, first.helped_no) == (3, 1, 0)
    # A commitment fewer than the threshold answered about keeps no counts at all (they could name people).
    for later in (p for p in counted if p.id != first.id):
        assert (later.helped_yes, later.helped_partly, later.helped_no) == (0, 0, 0)


async def test_the_reminder_waits_for_quiet_hours_and_is_held_by_the_budget(rig: Rig, chat: Chat) -> None:
    retro = await start(rig, chat)
    await tick(rig)
    aiko = rig.people["aiko@demo.baton"]  # Tokyo: 09:00 UTC on the reminder day is 18:00 there
    tom = rig.people["tom@demo.baton"]
    # Tom's budget is spent this week by six other nudges.
    now = rig.clock.now()
    await rig.db.run(
        lambda s: s.execute(
            insert(OutboxMessage),
            [
                {
                    "key": f"other-nudge:{n}",
                    "person_id": tom.id,
                    "channel": "local",
                    "address": {},
                    "payload": {"text": "x"},
                    "kind": "nudge",
                    "unsolicited": True,
                    "due_at": now,
                    "status": "sent",
                    "attempts": 1,
                    "created_at": now,
                }
                for n in range(6)
            ],
        )
    )
    # Lucía (Mexico City) at 13:00 UTC on the reminder day is 07:00: inside her quiet hours.
    rig.clock.set(retro.closes_at - timedelta(days=1, hours=20))
    await tick(rig)
    reminders = {
        r.person_id: r
        for r in (
            await rig.db.run(lambda s: s.execute(select(OutboxMessage).where(OutboxMessage.topic == "retro-reminder")))
        ).scalars()
    }
    lucia = rig.people["lucia@demo.baton"]
    assert reminders[tom.id].status == "held" and reminders[tom.id].kind == "reminder"
    assert reminders[aiko.id].status in ("pending", "sent")
    local = reminders[lucia.id].due_at.astimezone(__import__("zoneinfo").ZoneInfo(lucia.timezone))
    assert local.hour >= 8  # moved to the end of her quiet hours
    # One reminder only: a later tick queues nothing new for those already reminded.
    rig.clock.advance(hours=6)
    await tick(rig)
    count = await rig.db.run(
        lambda s: s.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.topic == "retro-reminder")
        )
    )
    assert count == len(reminders) == 5


async def test_only_a_manager_starts_unless_the_team_allows_members(rig: Rig, chat: Chat) -> None:
    tom = rig.chat("tom@demo.baton")
    await tom.send("retro")
    tom.expect("started by its manager")
    await tom.send("retro allow members")
    tom.expect("Only a manager")
    await chat.send("retro allow members")
    chat.expect("Anyone in your team can now start")
    await tom.send("retro")
    tom.expect("What should the retro be about?")


async def test_stopping_deletes_every_draft_unread(rig: Rig, chat: Chat) -> None:
    retro = await start(rig, chat)
    await answer(rig, "tom@demo.baton", retro, "A story (mark-z)", "A change")
    await chat.send(f"retro stop {retro.id}")
    chat.expect("Stop this retro?")
    await chat.press("Stop it")
    chat.expect("Stopped.")
    assert "sealed_draft:" not in await dump(rig)
    assert (await latest(rig)).status == "stopped"
    tom = rig.chat("tom@demo.baton")
    await tom.send(f"retro answer {retro.id}")
    tom.expect("stopped")


async def test_the_demo_holds_one_finished_retro_closed_through_the_real_functions(db, clock) -> None:
    from bot.demo import seed_demo
    from tests.harness import SECRET, Sealer

    assert await seed_demo(db, clock, sealer=Sealer(SECRET.encode()), history=True)
    retros = (await db.run(lambda s: s.execute(select(Retro)))).scalars().all()
    assert [r.status for r in retros] == ["done"]
    themes = (await db.run(lambda s: s.execute(select(RetroTheme)))).scalars().all()
    assert any(t.stage == "discover" and t.people >= 3 for t in themes)
    text_of_everything = str((await db.run(lambda s: s.execute(select(RetroQuote)))).scalars().all())
    assert "Customers thanked us" not in text_of_everything  # one person's theme is never written
    items = (await db.run(lambda s: s.execute(select(ActionItem).where(ActionItem.source == "retro")))).scalars().all()
    assert len(items) == 2
    left = await db.run(
        lambda s: s.scalar(text("SELECT count(*) FROM sealed_draft WHERE scope LIKE 'anonymous:retro%'"))
    )
    assert left == 0
