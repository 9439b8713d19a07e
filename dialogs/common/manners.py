"""Chat manners for everything Baton sends on its own: quiet hours, leave, and a weekly budget.

Pure functions where possible, plus the two queries that need the database.
Every unsolicited message (check-in invitations, reminders, nudges, digests)
goes through `plan_unsolicited` before it is queued.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.common.periods import hhmm, local_datetime
from dialogs.engine.clock import tz
from storage.models import Leave, OutboxMessage

WEEKLY_BUDGET = 6  # unsolicited messages per person per rolling 7 days, across all of Baton


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
    """When an unsolicited message may go out, or why it may not."""

    due_at: datetime | None
    reason: str | None = None  # "leave", "budget"


BULK = 500  # above this many people, read the whole (small, time-bounded) set rather than send a huge IN list


async def leave_days(
    session: AsyncSession, person_ids: Iterable[int], first: date, last: date
) -> dict[int, list[tuple[date, date]]]:
    """Each person's leave overlapping [first, last]."""
    ids = set(person_ids)
    if not ids:
        return {}
    statement = select(Leave.person_id, Leave.start, Leave.end).where(Leave.start <= last, Leave.end >= first)
    if len(ids) <= BULK:
        statement = statement.where(Leave.person_id.in_(ids))
    found: dict[int, list[tuple[date, date]]] = {}
    for person_id, start, end in await session.execute(statement):
        if person_id in ids:
            found.setdefault(person_id, []).append((start, end))
    return found


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
            OutboxMessage.status != "failed",
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
) -> Plan:
    """Decide when (and whether) an unsolicited message to `recipient` may go out.

    Nothing on a day of leave (their local calendar), nothing beyond the weekly
    budget, and nothing during quiet hours: such a message waits for the end of
    them instead. Leave is checked on the day the message was `scheduled` for
    (default `when`) and on the day it would arrive.
    """
    if used >= budget:
        return Plan(None, "budget")
    due, local_day = _quiet_plan(when, recipient.timezone, recipient.quiet_start, recipient.quiet_end)
    if leaves:
        # Neither on the day it was meant for, nor on the day quiet hours push it to.
        intended = (scheduled or when).astimezone(tz(recipient.timezone)).date()
        if on_leave(list(leaves), intended) or on_leave(list(leaves), local_day):
            return Plan(None, "leave")
    return Plan(due)


@lru_cache(maxsize=4096)  # thousands of people share a few (time, zone, quiet hours) combinations
def _quiet_plan(when: datetime, zone_name: str, quiet_start: str, quiet_end: str) -> tuple[datetime, date]:
    zone = tz(zone_name)
    try:
        start, end = hhmm(quiet_start), hhmm(quiet_end)
    except ValueError:
        start = end = time(0)
    due = after_quiet_hours(when, zone, start, end)
    return due, due.astimezone(zone).date()
