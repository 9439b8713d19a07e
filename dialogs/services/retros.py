"""The scheduler's side of appreciative retros: invitations, one reminder, the close and its synthesis, the
vote's close, and the follow-up after each commitment's date.

Called by the Conductor at every tick with its own `plan` (quiet hours, leave, and the weekly budget for the
budgeted kinds) and `queue` (keyed outbox rows). Invitations, results and the starter's "choose the
commitments" are owed ("retro": never held by the budget, moved out of quiet hours and leave); the
reminder is a budgeted "reminder" and the follow-up a budgeted "follow-up". Each step that must happen
once is claimed with one conditional UPDATE (`_claim`), so of two replicas ticking together one does it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dialogs.common.manners import Plan
from dialogs.engine.clock import tz
from dialogs.engine.contract import COMMAND_ACTION
from dialogs.engine.messages import Choice, Reply
from dialogs.engine.sealing import Sealer
from dialogs.retro import (
    close_retro,
    close_vote,
    count_helped,
    first_name,
    follow_up_reply,
    participants,
    questions,
    results_reply,
)
from dialogs.services.steps import PlanFn, QueueFn, Send
from storage import queries
from storage.models import ActionItem, OutboxMessage, Person, Retro, RetroParticipant, RetroProposal, Team

REMIND_WITHIN = timedelta(days=2)  # who has not answered is reminded once, this close to the close
FOLLOW_UP_FOR = timedelta(days=14)  # after a commitment's date, the follow-up may still go out this long
OWED = "retro"


async def retro_step(session: AsyncSession, now: datetime, plan: PlanFn, queue: QueueFn, sealer: Sealer) -> int:
    """Everything retros need at `now`; returns how many messages were queued (attempted)."""
    sends: list[Send] = []
    sends += await _invitations(session, now)
    sends += await _reminders(session, now)
    sends += await _closes(session, now, sealer)
    sends += await _vote_closes(session, now, sealer)
    sends += await _follow_ups(session, now)
    counted = await _count_helped(session, now, sealer)  # deleted sealed answers: the caller checkpoints the WAL
    if not sends:
        return counted
    planned: list[tuple[Send, Plan]] = []
    for kind in sorted({s.kind for s in sends}):
        batch = [s for s in sends if s.kind == kind]
        planned += list(zip(batch, await plan([(s.person, s.when) for s in batch], kind), strict=True))
    return await queue(planned)


async def _claim(session: AsyncSession, retro: Retro, column: str, was: Any, value: Any) -> bool:
    """Move one step of a retro on only if it is still where it was — one statement, so one replica wins."""
    current = getattr(Retro, column)
    result: Any = await session.execute(
        update(Retro)
        .where(col(Retro.id) == retro.id, current.is_(None) if was is None else current == was)
        .values({column: value})
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    setattr(retro, column, value)
    return True


def invitation(retro: Retro, starter: Person, person: Person) -> Reply:
    who = "you" if starter.id == person.id else first_name(starter)
    closes = retro.closes_at.astimezone(tz(person.timezone))
    return Reply(
        f"A team retro on “{retro.theme}” ({who} started it): three short questions, each skippable, about a time "
        f"the team was at its best. Answers are sealed until {closes:%A} {closes.day} {closes:%B} and shown only "
        f"as themes at least {retro.threshold} people share, unless you sign your story.",
        choices=(Choice("Start", f"retro answer {retro.id}", "primary"),),
        action=COMMAND_ACTION,
    )


async def _invitations(session: AsyncSession, now: datetime) -> list[Send]:
    retros = list(
        await session.scalars(
            select(Retro).where(
                col(Retro.status) == "collecting", col(Retro.invited_at).is_(None), col(Retro.closes_at) > now
            )
        )
    )
    sends = []
    for retro in retros:
        if not await _claim(session, retro, "invited_at", None, now):
            continue
        starter = await session.get(Person, retro.started_by_id)
        assert starter is not None and retro.id is not None
        for person in await participants(session, retro.id):
            sends.append(
                Send(
                    person,
                    f"retro-invite:{retro.id}:{person.id}",
                    "retro-invite",
                    invitation(retro, starter, person),
                    now,
                    OWED,
                )
            )
    return sends


async def _reminders(session: AsyncSession, now: datetime) -> list[Send]:
    rows = (
        await session.execute(
            select(Retro, Person)
            .join(RetroParticipant, col(RetroParticipant.retro_id) == col(Retro.id))
            .join(Person, col(Person.id) == col(RetroParticipant.person_id))
            .where(
                col(Retro.status) == "collecting",
                col(Retro.invited_at).is_not(None),
                col(Retro.closes_at) > now,
                col(Retro.closes_at) <= now + REMIND_WITHIN,
                col(RetroParticipant.answered).is_(False),
                col(Person.active).is_(True),
            )
        )
    ).all()
    sends = []
    for retro, person in rows:
        closes = retro.closes_at.astimezone(tz(person.timezone))
        reply = Reply(
            f"A reminder: the team retro on “{retro.theme}” closes {closes:%A} at {closes:%H:%M}. Three short "
            f"questions, each skippable: {questions(retro.theme)['discover']}",
            choices=(Choice("Start", f"retro answer {retro.id}", "primary"),),
            action=COMMAND_ACTION,
        )
        sends.append(Send(person, f"retro-reminder:{retro.id}:{person.id}", "retro-reminder", reply, now, "reminder"))
    return await _unqueued(session, sends)


async def _closes(session: AsyncSession, now: datetime, sealer: Sealer) -> list[Send]:
    retros = list(
        await session.scalars(select(Retro).where(col(Retro.status) == "collecting", col(Retro.closes_at) <= now))
    )
    sends = []
    for retro in retros:
        if not await _claim(session, retro, "status", "collecting", "closing"):
            continue  # another replica closes it
        result = await close_retro(session, retro, now, sealer)
        assert retro.id is not None
        people = await participants(session, retro.id)
        authors = {p.id or 0: p.name for p in people}
        for person in people:
            reply = results_reply(retro, result, authors, person)
            sends.append(Send(person, f"retro-results:{retro.id}:{person.id}", "retro-results", reply, now, OWED))
        await _post(
            session, retro, results_reply(retro, result, authors, people[0]) if people else None, "results", now
        )
    return sends


async def _vote_closes(session: AsyncSession, now: datetime, sealer: Sealer) -> list[Send]:
    retros = list(
        await session.scalars(select(Retro).where(col(Retro.status) == "voting", col(Retro.vote_closes_at) <= now))
    )
    sends = []
    for retro in retros:
        if not await _claim(session, retro, "status", "voting", "counting"):
            continue
        top = await close_vote(session, retro, now, sealer)
        starter = await session.get(Person, retro.started_by_id)
        if starter is None:
            continue
        if retro.voters >= retro.threshold:
            lines = [f"{p.number}. “{p.text[:200]}” — {p.votes} votes" for p in top]
            head = f"The vote on the retro “{retro.theme}” has closed ({retro.voters} people voted). The top proposals:"
        else:
            lines = [f"{p.number}. “{p.text[:200]}”" for p in top]
            head = (
                f"The vote on the retro “{retro.theme}” has closed with {retro.voters} voters — fewer than "
                f"{retro.threshold}, so no totals are kept (they would tell how those few voted). You choose:"
            )
        reply = Reply(
            head + "\n" + "\n".join(lines) + "\nGive each an owner and a date; they become action items.",
            choices=(Choice("Choose owners and dates", f"retro commit {retro.id}", "primary"),),
            action=COMMAND_ACTION,
        )
        sends.append(Send(starter, f"retro-choose:{retro.id}", "retro-choose", reply, now, OWED))
    return sends


async def _follow_ups(session: AsyncSession, now: datetime) -> list[Send]:
    """After a commitment's date (its owner's calendar), the team is asked whether it helped: a budgeted
    follow-up, tried at each tick for `FOLLOW_UP_FOR` (held ones are released when the budget allows)."""
    rows = (
        await session.execute(
            select(RetroProposal, ActionItem, Retro)
            .join(ActionItem, col(ActionItem.id) == col(RetroProposal.action_item_id))
            .join(Retro, col(Retro.id) == col(RetroProposal.retro_id))
            .where(
                col(RetroProposal.chosen).is_(True),
                col(ActionItem.due_on) < now.date(),
                col(ActionItem.due_on) >= (now - FOLLOW_UP_FOR).date(),
            )
        )
    ).all()
    sends = []
    for proposal, item, retro in rows:
        assert item.due_on is not None
        for person in await participants(session, proposal.retro_id):
            if now.astimezone(tz(person.timezone)).date() <= item.due_on:
                continue
            reply = follow_up_reply(retro, proposal, item.due_on)
            sends.append(
                Send(person, f"retro-followup:{proposal.id}:{person.id}", "retro-followup", reply, now, "follow-up")
            )
        if proposal.followed_up_at is None:
            await session.execute(
                update(RetroProposal)
                .where(col(RetroProposal.id) == proposal.id, col(RetroProposal.followed_up_at).is_(None))
                .values(followed_up_at=now)
            )
    return await _unqueued(session, sends)


async def _count_helped(session: AsyncSession, now: datetime, sealer: Sealer) -> int:
    """When a commitment's "Has it helped?" has been open `FOLLOW_UP_FOR`, count every answer at once
    (claimed by one conditional UPDATE, so one replica counts). How many commitments were counted."""
    rows = (
        await session.execute(
            select(RetroProposal, Retro)
            .join(Retro, col(Retro.id) == col(RetroProposal.retro_id))
            .where(
                col(RetroProposal.followed_up_at).is_not(None),
                col(RetroProposal.followed_up_at) <= now - FOLLOW_UP_FOR,
                col(RetroProposal.helped_counted_on).is_(None),
            )
        )
    ).all()
    counted = 0
    for proposal, retro in rows:
        claim: Any = await session.execute(
            update(RetroProposal)
            .where(col(RetroProposal.id) == proposal.id, col(RetroProposal.helped_counted_on).is_(None))
            .values(helped_counted_on=now.date())
            .execution_options(synchronize_session=False)
        )
        if claim.rowcount == 1:
            await count_helped(session, proposal, retro, sealer, now.date())
            counted += 1
    return counted


async def _post(session: AsyncSession, retro: Retro, reply: Reply | None, what: str, now: datetime) -> None:
    """The results in the team's channel, when the team opted in to posting there."""
    team = await session.get(Team, retro.team_id)
    if reply is None or team is None or not team.broadcast or not (team.broadcast_address or {}).get("channel"):
        return
    address = dict(team.broadcast_address)
    channel = address.pop("platform", "local")
    public = Reply(reply.text, card=reply.card)  # no buttons in a channel: voting is private
    await queries.enqueue(
        session,
        key=f"retro-{what}:{retro.id}:channel",
        person_id=None,
        channel=channel,
        address=address,
        payload=public.to_dict(),
        due_at=now,
        now=now,
        kind="post",
    )


async def _unqueued(session: AsyncSession, sends: list[Send]) -> list[Send]:
    """Only what is not queued yet, or was held (so the budget is not spent twice and held ones are retried)."""
    if not sends:
        return []
    keys = [s.key for s in sends]
    rows = await session.execute(
        select(col(OutboxMessage.key), col(OutboxMessage.status)).where(col(OutboxMessage.key).in_(keys))
    )
    seen = {key: status for key, status in rows.all()}
    return [s for s in sends if s.key not in seen or seen[s.key] == "held"]
