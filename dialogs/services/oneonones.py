"""The scheduler's side of 1:1s: meetings from each pair's rhythm, moved around leave, the agenda the day
before, "How did it go?" after, three skips mentioned once, and nudges for overdue action items.

Called by the Conductor at every tick with its own `plan` (quiet hours, leave, budget) and `queue`
(keyed outbox rows); every effect is keyed or recorded on the meeting, so repeats and replicas are no-ops.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col

from dialogs.common import agenda as ag
from dialogs.common.cadence import AGENDA_BEFORE, action_nudge_key, local_label, next_slot
from dialogs.common.manners import Plan, after_quiet_hours, in_quiet_hours, leave_days, on_leave
from dialogs.common.periods import hhmm, local_datetime
from dialogs.common.wording import shorten
from dialogs.engine.clock import tz
from dialogs.engine.contract import COMMAND_ACTION
from dialogs.engine.messages import Choice, Reply
from dialogs.services.steps import PlanFn, QueueFn, Send
from storage.models import ActionItem, Meeting, OneOnOne, Person

AHEAD = AGENDA_BEFORE + timedelta(days=2)  # meetings this close get a row, a leave check and an agenda
UNRECORDED_AFTER = timedelta(days=3)  # a 1:1 nobody recorded by then counts towards "skipped in a row"
ASK_WITHIN = timedelta(days=2)  # after downtime, "How did it go?" is not asked later than this
AGENDAS_PER_TICK = 250  # agendas built in one tick; more wait for the next (a minute later by default)
ASK_KIND = "1on1"  # what manners see: owed to the pair (not budgeted), out of quiet hours, after leave


async def one_on_one_step(session: AsyncSession, now: datetime, plan: PlanFn, queue: QueueFn) -> int:
    """Everything 1:1s need at `now`; returns how many messages were queued (attempted)."""
    await ag.ensure_pairs(session, now)
    manager, report = aliased(Person), aliased(Person)
    rows = (
        await session.execute(
            select(OneOnOne, manager, report)
            .join(manager, col(manager.id) == col(OneOnOne.manager_id))
            .join(report, col(report.id) == col(OneOnOne.report_id))
            .where(col(OneOnOne.active).is_(True), col(manager.active).is_(True), col(report.active).is_(True))
            .where(col(report.manager_id) == col(OneOnOne.manager_id))
        )
    ).all()
    if not rows:
        return await _action_nudges(session, now, plan, queue)
    pairs = {pair.id: (pair, m, r) for pair, m, r in rows}
    meetings: dict[int, list[Meeting]] = {}
    for meeting in (
        await session.execute(
            select(Meeting)
            .where(
                col(Meeting.status) == "planned", col(Meeting.starts_at) > now - UNRECORDED_AFTER - timedelta(days=2)
            )
            .order_by(col(Meeting.starts_at))
        )
    ).scalars():
        if meeting.pair_id in pairs:
            meetings.setdefault(meeting.pair_id, []).append(meeting)
    await _create_soon(session, pairs, meetings, now)
    sends: list[Send] = []
    for pair_id, (pair, m, r) in pairs.items():
        mine = meetings.get(pair_id or 0, [])
        for meeting in mine:
            sends += await _past(session, pair, m, r, meeting, now)
        meetings[pair_id or 0] = [x for x in mine if x.status == "planned" and x.starts_at > now]
    sends += await _move_for_leave(session, pairs, meetings, now)
    due = sorted(
        (
            (min(agenda_time(x.starts_at, p) for p in pairs[pid][1:]), pid, x)
            for pid, xs in meetings.items()
            if pid in pairs
            for x in xs
            if x.agenda_at is None
        ),
        key=lambda item: (item[0], item[1]),
    )
    ready = [(pair_id, meeting) for at, pair_id, meeting in due if at <= now][:AGENDAS_PER_TICK]
    # (the rest at the next ticks: an organisation whose 1:1s all fall on Tuesday at 10:00 must not become
    # one huge transaction)
    sends += await _agendas(session, [(pairs[pair_id], meeting) for pair_id, meeting in ready], now)
    count = await _send(sends, plan, queue)
    return count + await _action_nudges(session, now, plan, queue)


async def _create_soon(
    session: AsyncSession,
    pairs: dict[int | None, tuple[OneOnOne, Person, Person]],
    meetings: dict[int, list[Meeting]],
    now: datetime,
) -> None:
    """Rows for the 1:1s within `AHEAD` that have none yet, in one INSERT (`agenda.peek`'s rule: the
    rhythm's next slot no held or called-off row has taken), added to `meetings`."""
    taken = {
        (pair_id, planned_at)
        for pair_id, planned_at in await session.execute(
            select(col(Meeting.pair_id), col(Meeting.planned_at)).where(
                col(Meeting.planned_at) > now - timedelta(days=1),
                col(Meeting.status).in_(("held", "skipped", "unrecorded")),
            )
        )
    }
    wanted: dict[int, datetime] = {}
    for pair_id, (pair, manager, _) in pairs.items():
        running = now - timedelta(minutes=pair.minutes)
        if pair_id is None or any(x.starts_at > running for x in meetings.get(pair_id, [])):
            continue
        slot = next_slot(pair, manager.timezone, running)
        while (pair_id, slot) in taken:
            slot = next_slot(pair, manager.timezone, slot + timedelta(minutes=1))
        if slot <= now + AHEAD:
            wanted[pair_id] = slot
    if not wanted:
        return
    rows = [
        {"pair_id": pid, "planned_at": slot, "starts_at": slot, "status": "planned", "created_at": now}
        for pid, slot in wanted.items()
    ]
    for start in range(0, len(rows), 1000):
        await session.execute(ag.insert_for(session)(Meeting).on_conflict_do_nothing(), rows[start : start + 1000])
    ids = list(wanted)
    for start in range(0, len(ids), 1000):
        for meeting in (
            await session.execute(
                select(Meeting).where(
                    col(Meeting.pair_id).in_(ids[start : start + 1000]),
                    col(Meeting.status) == "planned",
                    col(Meeting.starts_at) > now - timedelta(hours=2),
                )
            )
        ).scalars():
            if wanted.pop(meeting.pair_id, None) == meeting.planned_at:
                meetings.setdefault(meeting.pair_id, []).append(meeting)
    for pair_id in wanted:  # a slot a change of rhythm had set aside: upcoming() brings its row back
        pair, manager, _ = pairs[pair_id]
        meetings.setdefault(pair_id, []).append(await ag.upcoming(session, pair, manager, now))


async def _send(sends: list[Send], plan: PlanFn, queue: QueueFn) -> int:
    if not sends:
        return 0
    planned: list[tuple[Send, Plan]] = []
    for kind in sorted({s.kind for s in sends}):
        batch = [s for s in sends if s.kind == kind]
        plans = await plan([(s.person, s.when) for s in batch], kind)
        planned += list(zip(batch, plans, strict=True))
    return await queue(planned)


# -- after a 1:1 ---------------------------------------------------------------------------------------


async def _past(
    session: AsyncSession, pair: OneOnOne, manager: Person, report: Person, meeting: Meeting, now: datetime
) -> list[Send]:
    """ "How did it go?" after a 1:1; a 1:1 nobody recorded counts as skipped; three in a row, told once."""
    sends: list[Send] = []
    ask_at = ag.ask_time(pair, meeting)
    if meeting.asked_at is None and ask_at <= now and await _claim(session, meeting, "asked_at", now):
        if now < ask_at + ASK_WITHIN:
            askees = [manager] + ([report] if pair.ask_report else [])
            for person, other in ((p, report if p is manager else manager) for p in askees):
                sends.append(
                    Send(
                        person,
                        f"1on1-ask:{meeting.id}:{person.id}",
                        "1on1-ask",
                        ask_reply(other, meeting, person),
                        ask_at,
                        ASK_KIND,
                    )
                )
    if meeting.starts_at + UNRECORDED_AFTER <= now and await _claim(session, meeting, "status", "unrecorded"):
        if await ag.count_skip(session, pair):
            sends.append(
                Send(
                    manager,
                    ag.skips_key(pair, meeting),
                    "1on1-skips",
                    ag.skips_reply(pair, report, meeting),
                    now,
                    ASK_KIND,
                )
            )
    return sends


def ask_reply(other: Person, meeting: Meeting, person: Person) -> Reply:
    when = local_label(meeting.starts_at, person.timezone)
    return Reply(
        f"How did your 1:1 with {ag.first_name(other)} ({when}) go? Notes and action items take a minute; "
        "anything not discussed moves to the next agenda.",
        choices=(
            Choice("Add notes and actions", f"1:1 notes meeting:{meeting.id}", "primary"),
            Choice("We skipped it", f"1:1 skipped meeting:{meeting.id}"),
        ),
        action=COMMAND_ACTION,
    )


# -- leave ---------------------------------------------------------------------------------------------


async def _move_for_leave(
    session: AsyncSession,
    pairs: dict[int | None, tuple[OneOnOne, Person, Person]],
    meetings: dict[int, list[Meeting]],
    now: datetime,
) -> list[Send]:
    """A 1:1 on a day either side is away moves to the next working day both are in, at the same time,
    before the one after it; if there is none, it is skipped without counting against the pair."""
    soon = [(pid, x) for pid, xs in meetings.items() for x in xs if x.starts_at <= now + AHEAD and pid in pairs]
    if not soon:
        return []
    ids = {p.id or 0 for pid, _ in soon for p in pairs[pid][1:]}
    first = now.date() - timedelta(days=1)
    last = max(pairs[pid][0].every_weeks for pid, _ in soon) * 7 + (now + AHEAD).date().toordinal()
    away = await leave_days(session, ids, first, date.fromordinal(last))
    sends: list[Send] = []
    for pid, meeting in soon:
        pair, manager, report = pairs[pid]

        def free(when: datetime, pair_people: tuple[Person, Person] = (manager, report)) -> bool:
            return not any(
                on_leave(away.get(p.id or 0, []), when.astimezone(tz(p.timezone)).date()) for p in pair_people
            )

        if free(meeting.starts_at):
            continue
        who = next(
            p
            for p in (report, manager)
            if on_leave(away.get(p.id or 0, []), meeting.starts_at.astimezone(tz(p.timezone)).date())
        )
        zone = tz(manager.timezone)
        day = meeting.starts_at.astimezone(zone).date()
        found = None
        for step in range(1, 7 * pair.every_weeks):
            candidate_day = day + timedelta(days=step)
            if candidate_day.weekday() >= 5 and pair.weekday < 5:
                continue
            candidate = local_datetime(candidate_day, hhmm(pair.at), zone)
            if free(candidate):
                found = candidate
                break
        old = meeting.starts_at
        if found is None:
            meeting.status, meeting.moved = "skipped", "leave"
        else:
            meeting.starts_at, meeting.moved = found, "leave"
            meeting.agenda_at = None  # a fresh agenda for the new day
        session.add(meeting)
        for person, other in ((manager, report), (report, manager)):
            away_name = "you are" if person is who else f"{ag.first_name(who)} is"
            if found is None:
                text = (
                    f"Your 1:1 with {ag.first_name(other)} on {local_label(old, person.timezone)} is off: {away_name} "
                    "away and there's no day you're both in before the next one. Its agenda moves along."
                )
            else:
                text = (
                    f"Your 1:1 with {ag.first_name(other)} moved to {local_label(found, person.timezone)} because "
                    f"{away_name} away on {local_label(old, person.timezone)[:10]}."
                )
            key = f"1on1-moved:{meeting.id}:{(found or old):%Y%m%d}:{person.id}"
            sends.append(Send(person, key, "1on1-moved", Reply(text), now, "notice"))
    return sends


# -- the agenda ----------------------------------------------------------------------------------------


def agenda_time(starts_at: datetime, person: Person) -> datetime:
    """The day before, at the same time — unless that is in the person's quiet hours: then when they end,
    or, if quiet hours last until the 1:1 itself, before they begin the evening before."""
    zone, start, end = tz(person.timezone), hhmm(person.quiet_start), hhmm(person.quiet_end)
    wanted = starts_at - AGENDA_BEFORE
    moved = after_quiet_hours(wanted, zone, start, end)
    if moved <= starts_at - timedelta(hours=1):
        return moved
    earlier = wanted
    for _ in range(48):
        earlier -= timedelta(minutes=30)
        if not in_quiet_hours(earlier.astimezone(zone), start, end):
            return earlier
    return wanted


async def _claim(session: AsyncSession, meeting: Meeting, column: str, value: object) -> bool:
    """Set a meeting's step (agenda built, asked, unrecorded) only if it is still undone — one statement, so
    of two replicas ticking together (PostgreSQL re-checks the condition after the other's commit) one wins."""
    undone = col(Meeting.status) == "planned" if column == "status" else getattr(Meeting, column).is_(None)
    result: Any = await session.execute(
        update(Meeting)
        .where(col(Meeting.id) == meeting.id, undone, col(Meeting.starts_at) == meeting.starts_at)
        .values({column: value})
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    set_committed_value(meeting, column, value)  # what the row now holds, without a second UPDATE
    return True


async def _agendas(
    session: AsyncSession, ready: list[tuple[tuple[OneOnOne, Person, Person], Meeting]], now: datetime
) -> list[Send]:
    """Build the agendas of `ready` meetings together and address each to both sides, at their own time."""
    claimed = await _claim_agendas(session, [meeting for _, meeting in ready], now)
    ready = [(people, meeting) for people, meeting in ready if meeting.id in claimed]
    if not ready:
        return []
    agendas = await ag.build_many(session, [(pair, meeting) for (pair, _, _), meeting in ready], now)
    actions = await ag.actions_by_pair(session, [pair for (pair, _, _), _ in ready])
    from dialogs.oneonone import agenda_reply

    sends = []
    for (pair, manager, report), meeting in ready:
        names = {manager.id or 0: ag.first_name(manager), report.id or 0: ag.first_name(report)}
        for person, other in ((manager, report), (report, manager)):
            today = now.astimezone(tz(person.timezone)).date()
            reply = agenda_reply(
                person,
                other,
                pair,
                meeting,
                agendas[meeting.id or 0],
                actions.get(pair.id or 0, []),
                names | {person.id or 0: "you"},
                built=True,
                today=today,
                commands=True,
            )
            key = f"1on1-agenda:{meeting.id}:{person.id}:{meeting.starts_at:%Y%m%d%H%M}"
            when = max(now, agenda_time(meeting.starts_at, person))
            sends.append(Send(person, key, "1on1-agenda", reply, when, "agenda"))
    return sends


async def _claim_agendas(session: AsyncSession, meetings: list[Meeting], now: datetime) -> set[int]:
    """Mark the meetings' agendas built in one statement; only those this tick claimed come back (another
    replica's tick, running at the same moment, gets the rest: PostgreSQL re-checks after its commit)."""
    if not meetings:
        return set()
    claimed = {
        meeting_id or 0
        for meeting_id in (
            await session.execute(
                update(Meeting)
                .where(col(Meeting.id).in_([m.id for m in meetings]), col(Meeting.agenda_at).is_(None))
                .values(agenda_at=now)
                .returning(col(Meeting.id))
                .execution_options(synchronize_session=False)
            )
        ).scalars()
    }
    for meeting in meetings:
        if meeting.id in claimed:
            set_committed_value(meeting, "agenda_at", now)
    return claimed


# -- action items ----------------------------------------------------------------------------------------


async def _action_nudges(session: AsyncSession, now: datetime, plan: PlanFn, queue: QueueFn) -> int:
    """Open action items past their due day (the owner's calendar): a nudge a week, within the budget."""
    rows = (
        await session.execute(
            select(ActionItem, Person)
            .join(Person, col(Person.id) == col(ActionItem.owner_id))
            .where(col(ActionItem.done_at).is_(None), col(ActionItem.due_on) <= (now + timedelta(days=1)).date())
            .where(col(Person.active).is_(True))
        )
    ).all()
    sends = []
    for action, owner in rows:
        today = now.astimezone(tz(owner.timezone)).date()
        if action.due_on is None or action.due_on > today:
            continue
        reply = Reply(
            f"An action item is due: “{shorten(action.text, 200)}” (since {action.due_on:%a} {action.due_on.day} "
            f"{action.due_on:%b}).",
            choices=(
                Choice("Done", f"1:1 done-action action:{action.id}", "primary"),
                Choice("A week later", f"1:1 later-action action:{action.id}"),
            ),
            action=COMMAND_ACTION,
        )
        sends.append(Send(owner, action_nudge_key(action.id or 0, today), "action-nudge", reply, now, "nudge"))
    if not sends:
        return 0
    fresh = await _unqueued(session, sends)
    return await _send(fresh, plan, queue)


async def _unqueued(session: AsyncSession, sends: list[Send]) -> list[Send]:
    """Only what is not queued yet (held ones included, so the budget is not spent twice)."""
    from storage.models import OutboxMessage

    keys = [s.key for s in sends]
    existing = set(
        (await session.execute(select(col(OutboxMessage.key)).where(col(OutboxMessage.key).in_(keys)))).scalars()
    )
    held = set(
        (
            await session.execute(
                select(col(OutboxMessage.key)).where(
                    col(OutboxMessage.key).in_(keys), col(OutboxMessage.status) == "held"
                )
            )
        ).scalars()
    )
    return [s for s in sends if s.key not in existing or s.key in held]
