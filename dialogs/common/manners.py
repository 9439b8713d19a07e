"""Chat manners for everything Baton sends that is not a reply: quiet hours, leave, and a weekly budget.

Three classes of message:
- replies to a person's own action: sent at once, never counted;
- what a person must get — check-in invitations, digests, 360 results and
  invitations, feedback or kudos someone sent them, a colleague's request
  (every kind not in `BUDGETED`): never dropped by the budget; they wait for
  the end of quiet hours and for the person's return from leave (check-in
  invitations alone are skipped on a day of leave, `SKIPPED_ON_LEAVE`);
- nudges and reminders (`BUDGETED`): the only messages the weekly budget
  holds. A held one is recorded with its reason (the person sees it in
  `settings`), and released by a later tick if the budget allows. Everything
  unsolicited counts towards the budget.

Pure functions where possible, plus the queries that need the database.
Every message that is not a reply goes through `plan_unsolicited` before it is queued.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.common.absence import away_ranges
from dialogs.common.periods import hhmm, local_datetime
from dialogs.engine.clock import tz
from dialogs.engine.contract import COMMAND_ACTION
from dialogs.engine.delivery import Outgoing
from dialogs.engine.messages import Choice, Reply
from storage.models import OutboxMessage, Person

WEEKLY_BUDGET = 6  # unsolicited messages per person per rolling 7 days, across all of Baton
BUDGETED = frozenset({"reminder", "nudge", "follow-up"})  # the kinds the budget may hold
# On a day of leave these are not sent at all: a nudge can wait for the next one, and a check-in
# invitation asks about a week the person was not working. Everything else waits for their return.
SKIPPED_ON_LEAVE = BUDGETED | {"checkin"}
HELD_NAMES = {
    "reminder": "reminder",
    "nudge": "goal nudge",
    "follow-up": "tool follow-up",
    "checkin": "check-in invitation",
}
REASONS = {"budget": "your weekly limit for nudges was reached", "leave": "you were on leave"}


def skipped_on_leave(kind: str) -> bool:
    """Whether a message of this kind is dropped, rather than delayed, on a day of leave."""
    return kind in SKIPPED_ON_LEAVE


def budgeted(kind: str) -> bool:
    """Whether the weekly budget may hold a message of this kind (only nudges and reminders)."""
    return kind in BUDGETED


def in_quiet_hours(local: datetime, start: time, end: time) -> bool:
    if start == end:
        return False
    now = local.time()
    return start <= now < end if start < end else now >= start or now < end


def after_quiet_hours(when: datetime, zone: ZoneInfo, start: time, end: time) -> datetime:
    """`when`, or the end of the quiet hours it falls in (aware UTC either way)."""
    local = when.astimezone(zone)
    if not in_quiet_hours(local, start, end):
        return when
    day = local.date() if local.time() < end else local.date() + timedelta(days=1)
    return local_datetime(day, end, zone)


@dataclass(frozen=True, slots=True)
class Recipient:
    """What manners need to know about a person."""

    person_id: int
    timezone: str
    quiet_start: str
    quiet_end: str


@dataclass(frozen=True, slots=True)
class Plan:
    """When a message may go out, or why it is held (`due_at` None).

    `reason` also says why a message that does go out was moved: "quiet hours" or "leave".
    """

    due_at: datetime | None
    reason: str | None = None  # "leave", "budget", "quiet hours"


BULK = 500  # above this many people, read the whole (small, time-bounded) set rather than send a huge IN list


async def leave_days(
    session: AsyncSession, person_ids: Iterable[int], first: date, last: date
) -> dict[int, list[tuple[date, date]]]:
    """Each person's away days overlapping [first, last]: typed leave, their calendar, their team's public
    holidays, less the days they said they are working (dialogs/common/absence.py)."""
    return await away_ranges(session, person_ids, first, last)


async def budget_used(session: AsyncSession, person_ids: Iterable[int], now: datetime) -> dict[int, int]:
    """Unsolicited messages queued for each person in the 7 days before `now` (failed ones don't count)."""
    ids = set(person_ids)
    if not ids:
        return {}
    statement = (
        select(OutboxMessage.person_id, func.count())
        .where(
            OutboxMessage.unsolicited.is_(True),
            OutboxMessage.due_at > now - timedelta(days=7),
            OutboxMessage.status.not_in(("failed", "held", "cancelled")),
        )
        .group_by(OutboxMessage.person_id)
    )
    if len(ids) <= BULK:
        statement = statement.where(OutboxMessage.person_id.in_(ids))
    return {person_id: count for person_id, count in await session.execute(statement) if person_id in ids}


def on_leave(leaves: list[tuple[date, date]], day: date) -> bool:
    return any(start <= day <= end for start, end in leaves)


def plan_unsolicited(
    recipient: Recipient,
    when: datetime,
    *,
    leaves: list[tuple[date, date]] = (),  # type: ignore[assignment]
    used: int = 0,
    budget: int = WEEKLY_BUDGET,
    scheduled: datetime | None = None,
    kind: str = "nudge",
) -> Plan:
    """Decide when (and whether) a message that is not a reply may go to `recipient`.

    Never during quiet hours: it waits for their end. On a day of leave (the
    person's local calendar; checked on the day it was `scheduled` for and on
    the day it would arrive) a nudge is held, and anything else waits for the
    first morning back (nudges and check-in invitations are skipped). Only nudges and reminders
    count against the budget.
    """
    if budgeted(kind) and used >= budget:
        return Plan(None, "budget")
    due, local_day = _quiet_plan(when, recipient.timezone, recipient.quiet_start, recipient.quiet_end)
    reason = "quiet hours" if due > when else None
    if leaves:
        intended = (scheduled or when).astimezone(tz(recipient.timezone)).date()
        if on_leave(list(leaves), intended) or on_leave(list(leaves), local_day):
            if skipped_on_leave(kind):
                return Plan(None, "leave")
            back = back_from_leave(list(leaves), max(intended, local_day))
            morning = _quiet_end(recipient.quiet_end) if recipient.quiet_start != recipient.quiet_end else time(9)
            start = local_datetime(back, morning, tz(recipient.timezone))
            return Plan(max(due, start), "leave")
    return Plan(due, reason)


def back_from_leave(leaves: list[tuple[date, date]], day: date) -> date:
    """The first day on or after `day` that no leave covers."""
    while on_leave(leaves, day):
        day = max(end for start, end in leaves if start <= day <= end) + timedelta(days=1)
    return day


def _quiet_end(text: str) -> time:
    try:
        return hhmm(text)
    except ValueError:
        return time(9)


@lru_cache(maxsize=4096)  # thousands of people share a few (time, zone, quiet hours) combinations
def _quiet_plan(when: datetime, zone_name: str, quiet_start: str, quiet_end: str) -> tuple[datetime, date]:
    zone = tz(zone_name)
    try:
        start, end = hhmm(quiet_start), hhmm(quiet_end)
    except ValueError:
        start = end = time(0)
    due = after_quiet_hours(when, zone, start, end)
    return due, due.astimezone(zone).date()


async def plan_notices(
    session: AsyncSession, person_ids: set[int], now: datetime
) -> dict[int, tuple[datetime, str | None]]:
    """When a message someone else's action sends to each person may arrive, and a note for that someone
    when it waits (quiet hours, leave). The engine's `plan_notices` hook."""
    if not person_ids:
        return {}
    people = await session.execute(
        select(Person.id, Person.name, Person.timezone, Person.quiet_start, Person.quiet_end).where(
            Person.id.in_(person_ids)
        )
    )
    rows = list(people)
    leaves = await leave_days(session, person_ids, now.date() - timedelta(days=1), now.date() + timedelta(days=60))
    found: dict[int, tuple[datetime, str | None]] = {}
    for person_id, name, zone, quiet_start, quiet_end in rows:
        plan = plan_unsolicited(
            Recipient(person_id, zone, quiet_start, quiet_end), now, leaves=leaves.get(person_id, []), kind="notice"
        )
        due = plan.due_at or now
        found[person_id] = (due, arrival_note(name, zone, due, plan.reason, now) if due > now else None)
    return found


def arrival_note(name: str, zone: str, due: datetime, reason: str | None, now: datetime) -> str:
    """ "Lucía gets it at 08:00 their time (…)." — without guessing pronouns."""
    first = name.split(" ")[0]
    local = due.astimezone(tz(zone))
    today = now.astimezone(tz(zone)).date()
    day = (
        ""
        if local.date() == today
        else ("tomorrow " if local.date() == today + timedelta(days=1) else f"on {local:%a %d %b} ")
    )
    why = "they're on leave until then" if reason == "leave" else "it's outside their working hours now"
    return f"{first} gets it {day}at {local:%H:%M} their time ({why})."


HELD_DAYS = 7  # `settings` and the overview show what was held for a person in this many days


async def held_summary(session: AsyncSession, person_id: int, now: datetime) -> str | None:
    """What Baton held back from a person lately, and why: "1 reminder and 2 goal nudges (your weekly
    limit for nudges was reached)". None when nothing was held."""
    rows = await session.execute(
        select(OutboxMessage.kind, OutboxMessage.last_error, func.count())
        .where(
            OutboxMessage.person_id == person_id,
            OutboxMessage.due_at > now - timedelta(days=HELD_DAYS),
            (OutboxMessage.status == "held")
            | ((OutboxMessage.status == "cancelled") & (OutboxMessage.last_error == "leave")),
        )
        .group_by(OutboxMessage.kind, OutboxMessage.last_error)
    )
    by_reason: dict[str, list[str]] = {}
    for kind, reason, count in rows:
        name = HELD_NAMES.get(kind, "message")
        by_reason.setdefault(reason or "budget", []).append(f"{count} {name}{'' if count == 1 else 's'}")
    if not by_reason:
        return None
    parts = [f"{_and(items)} ({REASONS.get(reason, reason)})" for reason, items in sorted(by_reason.items())]
    return "; ".join(parts)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# -- several messages that waited: one "while you were away" ----------------------------------------

FOLD_MAX_CHOICES = 10  # buttons in one folded message; Slack's and Teams' cards take more, people don't
FOLD_MAX_TEXT = 2800  # characters: one Slack section holds 3,000


def _foldable(message: Outgoing) -> bool:
    reply = message.reply
    return (
        message.unsolicited
        and message.person_id is not None
        and not (reply.rating or reply.form or reply.input or reply.card)
        and (not reply.choices or reply.action == COMMAND_ACTION)  # a command button means the same anywhere
    )


def fold_waiting(messages: list[Outgoing]) -> list[tuple[Outgoing, list[int]]]:
    """One recipient's claimed messages as (what to send, the rows it stands for), in order.

    When two or more messages that are not replies come due together — they waited for the end of
    quiet hours or for a return from leave, or simply fell due at once — those made of text and command
    buttons go out as one message, at the place of the first: each text numbered, each button labelled
    with its number. "While you were away" heads it only when one of them really waited.
    Anything else (a question waiting for a typed answer, a rating, a form) goes out as it is."""
    candidates = [m for m in messages if _foldable(m)]
    folded: list[Outgoing] = []
    text, buttons = 0, 0
    for message in candidates:
        if message.channel != candidates[0].channel:
            continue
        size, count = len(message.reply.text) + 8, len(message.reply.choices)
        if folded and (text + size > FOLD_MAX_TEXT or buttons + count > FOLD_MAX_CHOICES):
            break
        folded.append(message)
        text, buttons = text + size, buttons + count
    if len(folded) < 2:
        return [(m, [m.id]) for m in messages]
    waited = any(m.waited for m in folded)
    parts = [f"While you were away, {len(folded)} messages came in:" if waited else f"{len(folded)} messages for you:"]
    choices: list[Choice] = []
    for number, message in enumerate(folded, 1):
        parts.append(f"*{number}.* {message.reply.text}")
        choices += [Choice(f"{number} · {c.label}", c.value, c.style) for c in message.reply.choices]
    head = folded[0]
    merged = replace(
        head, reply=Reply("\n\n".join(parts), choices=tuple(choices), action=COMMAND_ACTION if choices else None)
    )
    inside = {m.id for m in folded}
    plan: list[tuple[Outgoing, list[int]]] = []
    for message in messages:
        if message.id == head.id:
            plan.append((merged, [m.id for m in folded]))
        elif message.id not in inside:
            plan.append((message, [message.id]))
    return plan
