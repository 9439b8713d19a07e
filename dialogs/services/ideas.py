"""The scheduler's side of ideas: publishing anonymous ideas and answers, relaying news, nudging owners.

Called by the Conductor at every tick (`idea_step`); each effect is claimed in the database, so repeats
and replicas are no-ops:
- anonymous submissions of earlier days are opened in one batch and, once at least `anonymity.FLOOR`
  distinct people have sent them, deleted (the delete claims them) and published shuffled — as `idea`
  rows, or as answers in an idea's thread — dated the day of publishing, and their owners told; so the
  readable rows share the tick's transaction, never the sender's turn, and a database reader who sees who
  used `idea` on which day can narrow an idea down to no fewer than FLOOR people, as for 360s;
- anonymous senders with news from earlier days (`relay_pending`) are told there is news, without its
  content (`idea mine` shows it at any time), once at least FLOOR distinct people have news waiting, one
  message each; the relays are opened here, in one batch, and the counter is reset by a conditional UPDATE;
- an owner who has not acknowledged an idea in seven days is nudged once ("nudge": budgeted, quiet hours
  and leave apply).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dialogs.common import anonymity
from dialogs.common.wording import shorten
from dialogs.engine.contract import COMMAND_ACTION
from dialogs.engine.messages import Choice, Reply
from dialogs.engine.sealing import Sealer
from dialogs.ideas import open_submission, relay_person, short
from dialogs.services.steps import Due, PlanFn
from storage.models import Idea, IdeaMessage, IdeaSubmission, Person

NUDGE_AFTER = timedelta(days=7)
NEWS = "There's news on an idea you sent anonymously — *idea mine* shows it."


QueueFn = Callable[[list[Due]], Awaitable[int]]


async def idea_step(session: AsyncSession, now: datetime, sealer: Sealer, plan: PlanFn, queue: QueueFn) -> int:
    """Everything ideas need at `now`; returns how many messages were queued (attempted)."""
    today = now.date()  # UTC: the day boundary every replica agrees on
    dues = await _publish(session, now, today, sealer, plan)
    dues += await _relay(session, now, today, sealer, plan)
    dues += await _nudges(session, now, today, plan)
    return await queue(dues) if dues else 0


async def _publish(session: AsyncSession, now: datetime, today: date, sealer: Sealer, plan: PlanFn) -> list[Due]:
    rows = list(await session.scalars(select(IdeaSubmission)))
    ready: list[tuple[str, dict[str, Any]]] = []
    for row in rows:
        opened = open_submission(sealer, row)
        if opened is None:
            continue  # another secret: left alone, and never published readable
        if date.fromisoformat(str(opened.get("day"))) < today:
            ready.append((row.id, opened))
    if len({opened.get("person") for _, opened in ready}) < anonymity.FLOOR:
        return []  # fewer senders than that would let the days they used `idea` point to them: held
    # The delete claims them: a replica that read the same rows publishes only what it deleted. A sender
    # who withdraws meanwhile (PostgreSQL: their delete commits while this one waits for the row) can leave
    # fewer than FLOOR people claimed; then the claim is undone and the batch waits for more company.
    savepoint = await session.begin_nested()
    claimed = set(
        (
            await session.execute(
                delete(IdeaSubmission)
                .where(col(IdeaSubmission.id).in_([i for i, _ in ready]))
                .returning(col(IdeaSubmission.id))
            )
        ).scalars()
    )
    if len({opened.get("person") for i, opened in ready if i in claimed}) < anonymity.FLOOR:
        await savepoint.rollback()
        return []
    await savepoint.commit()
    dues: list[Due] = []
    new_ideas: dict[int, int] = {}
    answered: dict[int, list[Idea]] = {}
    for submission_id, opened in anonymity.shuffled(ready):
        if submission_id not in claimed:
            continue
        if opened.get("kind") == "idea":
            owner = await session.get(Person, opened["owner"])
            if owner is None:
                continue
            session.add(
                Idea(
                    id=opened["idea"],
                    owner_id=opened["owner"],
                    team_id=opened.get("team"),
                    text=opened["text"],
                    relay=opened["relay"],
                    received_on=today,  # the batch's day, not the sender's: that would single them out
                )
            )
            new_ideas[opened["owner"]] = new_ideas.get(opened["owner"], 0) + 1
        else:
            idea = await session.get(Idea, opened["idea"])
            if idea is None:
                continue
            session.add(
                IdeaMessage(
                    id=anonymity.new_id(), idea_id=idea.id, from_owner=False, text=opened["text"], written_on=today
                )
            )
            answered.setdefault(idea.owner_id, []).append(idea)
    await session.flush()
    owners = {p.id: p for p in await session.scalars(select(Person).where(col(Person.id).in_({*new_ideas, *answered})))}
    wanted = [owners[o] for o in {*new_ideas, *answered} if o in owners]
    due_at = {
        p.id: pl.due_at or now
        for p, pl in zip(wanted, await plan([(p, now) for p in wanted], "notice") if wanted else [], strict=True)
    }
    for owner_id, count in new_ideas.items():
        text = (
            f"{'An anonymous idea has' if count == 1 else f'{count} anonymous ideas have'} come in for you. "
            "*idea list* shows them."
        )
        reply = Reply(text, choices=(Choice("Show my ideas", "idea list"),), action=COMMAND_ACTION)
        dues.append(
            Due(
                owner_id,
                f"idea-in:{owner_id}:{today}:{anonymity.new_id()[:8]}",
                "idea-in",
                reply.to_dict(),
                due_at.get(owner_id, now),
                "notice",
            )
        )
    for owner_id, ideas in answered.items():
        names = ", ".join(f"*{short(i.id)}* “{shorten(i.text, 40)}”" for i in ideas)
        reply = Reply(f"The anonymous sender answered you about {names}. *idea list* shows your ideas.")
        dues.append(
            Due(
                owner_id,
                f"idea-answer:{owner_id}:{today}:{anonymity.new_id()[:8]}",
                "idea-answer",
                reply.to_dict(),
                due_at.get(owner_id, now),
                "notice",
            )
        )
    return dues


async def _relay(session: AsyncSession, now: datetime, today: date, sealer: Sealer, plan: PlanFn) -> list[Due]:
    pending = list(
        await session.scalars(
            select(Idea).where(col(Idea.relay_pending) > 0, col(Idea.relay_on) < today, col(Idea.relay).is_not(None))
        )
    )
    senders = {idea.id: relay_person(sealer, idea) for idea in pending}
    if len({p for p in senders.values() if p is not None}) < anonymity.FLOOR:
        return []  # news for fewer people than that would tie them to the ideas that moved: held
    told: set[int] = set()
    savepoint = await session.begin_nested()  # undone if a concurrent change leaves fewer people to tell
    for idea in pending:
        person_id = senders[idea.id]
        claimed = await session.execute(
            update(Idea)
            .where(col(Idea.id) == idea.id, col(Idea.relay_pending) == idea.relay_pending)
            .values(relay_pending=0, relay_on=None)
        )
        if claimed.rowcount == 1 and person_id is not None:  # type: ignore[attr-defined]
            told.add(person_id)
    # Counted among the people who will get a message: news for someone who left is not a cover for others.
    people = list(await session.scalars(select(Person).where(col(Person.id).in_(told), col(Person.active).is_(True))))
    if len(people) < anonymity.FLOOR:
        await savepoint.rollback()
        return []
    await savepoint.commit()
    plans = await plan([(p, now) for p in people], "notice")
    reply = Reply(NEWS, choices=(Choice("Show my ideas", "idea mine"),), action=COMMAND_ACTION)
    # One content-free message a person a day, however many ideas moved: the count is not told either.
    return [
        Due(p.id or 0, f"idea-news:{p.id}:{today}", "idea-news", reply.to_dict(), pl.due_at or now, "notice")
        for p, pl in zip(people, plans, strict=True)
    ]


async def _nudges(session: AsyncSession, now: datetime, today: date, plan: PlanFn) -> list[Due]:
    waiting = list(
        await session.scalars(
            select(Idea).where(
                col(Idea.state) == "received",
                col(Idea.received_on) <= today - NUDGE_AFTER,
                col(Idea.nudged_on).is_(None),
            )
        )
    )
    if not waiting:
        return []
    owners = {
        p.id: p for p in await session.scalars(select(Person).where(col(Person.id).in_({i.owner_id for i in waiting})))
    }
    by_owner: dict[int, list[Idea]] = {}
    for idea in waiting:
        if idea.owner_id in owners and owners[idea.owner_id].active:
            by_owner.setdefault(idea.owner_id, []).append(idea)
    if not by_owner:
        return []
    plans = await plan([(owners[o], now) for o in by_owner], "nudge")
    dues: list[Due] = []
    for (owner_id, ideas), planned in zip(by_owner.items(), plans, strict=True):
        if planned.due_at is None:
            continue  # held by the budget or leave: asked again at a later tick
        claimed = await session.execute(
            update(Idea)
            .where(col(Idea.id).in_([i.id for i in ideas]), col(Idea.nudged_on).is_(None))
            .values(nudged_on=today)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            continue  # another replica nudged them
        first = ideas[0]
        more = f" (and {len(ideas) - 1} more)" if len(ideas) > 1 else ""
        reply = Reply(
            f"An idea has waited a week for your acknowledgement: “{shorten(first.text, 80)}”{more}. "
            "People stop sending ideas that get no answer.",
            choices=(Choice("Acknowledge", f"idea ack {short(first.id)}"), Choice("All my ideas", "idea list")),
            action=COMMAND_ACTION,
        )
        dues.append(
            Due(owner_id, f"idea-nudge:{owner_id}:{today}", "idea-nudge", reply.to_dict(), planned.due_at, "nudge")
        )
    return dues
