"""Away days read from a person's calendar feed (iCalendar, RFC 5545).

Google Calendar and Outlook both publish a secret iCalendar address. Baton
reads it on a schedule (bot/calendars.py fetches it) and keeps only which days
the person is away — never a title, an attendee or a description:

- an all-day event (a date, not a time) marks its days away;
- a timed event marks a day away when it is out-of-office
  (`X-MICROSOFT-CDO-BUSYSTATUS:OOF`, what Outlook writes) or its title holds
  one of the admin's away words ("OOO", "vacation", …), and it covers at least
  four hours of that day in the person's time zone.

Recurring events are expanded (`recurring-ical-events`), time zones and
daylight-saving changes honoured; a feed that cannot be read leaves the last
good days in place (the fetcher decides that).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import Leave

DEFAULT_WORDS = ("ooo", "out of office", "vacation", "holiday", "annual leave", "pto", "sick")
WINDOW_BEFORE = timedelta(days=1)
WINDOW_AFTER = timedelta(days=90)  # how far ahead a feed is read
MIN_TIMED = timedelta(hours=4)  # a timed away event must cover this much of a day to make it an away day
MAX_EVENTS = 20_000  # occurrences read from one feed at most (a runaway recurrence cannot eat the process)


class FeedError(ValueError):
    """The feed is not an iCalendar file Baton can read; `kind` names the problem for the person."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def words_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    """A pattern matching any of `words` as whole words, case-insensitively; None for no words."""
    alternatives = [re.escape(w.strip().casefold()) for w in words if w.strip()]
    return re.compile(r"\b(" + "|".join(alternatives) + r")\b") if alternatives else None


DEFAULT_PATTERN = words_pattern(DEFAULT_WORDS)


def away_days(
    data: bytes, first: date, last: date, zone: ZoneInfo, words: re.Pattern[str] | None = DEFAULT_PATTERN
) -> set[date]:
    """The days in [first, last] the feed `data` says its owner is away. Raises FeedError when unreadable.

    icalendar parses a broken property (`DTSTART:garbage`) without complaint and raises only when its value
    is read, anywhere below, with whatever exception it has: the caller (bot/calendars.py) treats any failure
    as an unreadable ("malformed") feed and keeps the last good days, since days read from the rest of such a
    feed would be a guess.
    """
    import icalendar
    import recurring_ical_events  # type: ignore[import-untyped]  # the package ships no type hints

    try:
        calendar = icalendar.Calendar.from_ical(data)
    except Exception as exc:
        raise FeedError("malformed") from exc
    if calendar.name != "VCALENDAR":
        raise FeedError("malformed")
    # Only events that can make an away day are expanded: most of a calendar is meetings, and expanding their
    # recurrences is most of the cost.
    calendar.subcomponents = [c for c in calendar.subcomponents if c.name != "VEVENT" or _candidate(c, words)]
    days: set[date] = set()
    try:
        occurrences = recurring_ical_events.of(calendar).between(first, last + timedelta(days=1))
    except Exception as exc:
        raise FeedError("malformed") from exc
    for count, event in enumerate(occurrences):
        if count >= MAX_EVENTS:
            break
        if event.name != "VEVENT" or str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        start, end = event.get("DTSTART"), event.get("DTEND")
        if start is None:
            continue
        begin = start.dt
        finish = end.dt if end is not None else None
        if not isinstance(begin, datetime):  # all-day: DTEND is exclusive, one day when missing
            stop = finish if isinstance(finish, date) and not isinstance(finish, datetime) else begin
            stop = max(stop, begin + timedelta(days=1))
            days.update(_dates(max(begin, first), min(stop - timedelta(days=1), last)))
            continue
        busy = str(event.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).upper() == "OOF"
        titled = words is not None and bool(words.search(str(event.get("SUMMARY", "")).casefold()))
        if not (busy or titled):
            continue
        finish = finish if isinstance(finish, datetime) else begin + _duration(event)
        days.update(_covered(begin, finish, zone, first, last))
    return days


def _candidate(event: Any, words: re.Pattern[str] | None) -> bool:
    """Whether this event can make an away day: all-day, out-of-office, or titled with an away word."""
    start = event.get("DTSTART")
    if start is None:
        return False
    if not isinstance(start.dt, datetime):
        return True
    if str(event.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).upper() == "OOF":
        return True
    return words is not None and bool(words.search(str(event.get("SUMMARY", "")).casefold()))


def _duration(event: object) -> timedelta:
    value = getattr(event, "get", lambda _: None)("DURATION")
    return value.dt if value is not None and isinstance(value.dt, timedelta) else timedelta(0)


def _aware(moment: datetime, zone: ZoneInfo) -> datetime:
    """A floating time (no time zone in the feed) is read in the person's own zone."""
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def _covered(begin: datetime, finish: datetime, zone: ZoneInfo, first: date, last: date) -> set[date]:
    """Local days in [first, last] of which [begin, finish) covers at least MIN_TIMED."""
    begin, finish = _aware(begin, zone).astimezone(zone), _aware(finish, zone).astimezone(zone)
    days = set()
    day = max(begin.date(), first)
    while day <= min(finish.date(), last):
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
        following = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
        if min(finish, following) - max(begin, midnight) >= MIN_TIMED:
            days.add(day)
        day += timedelta(days=1)
    return days


def _dates(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)] if end >= start else []


def stretches(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive days merged: {1, 2, 3, 5} → [(1, 3), (5, 5)]."""
    merged: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if merged and merged[-1][1] + timedelta(days=1) == day:
            merged[-1] = (merged[-1][0], day)
        else:
            merged.append((day, day))
    return merged


async def store(session: AsyncSession, person_id: int, days: set[date], first: date, now: datetime) -> None:
    """Replace what the person's calendar said from `first` on with `days` (days before stay as they were)."""
    await session.execute(
        delete(Leave).where(col(Leave.person_id) == person_id, col(Leave.source) == "calendar", col(Leave.end) >= first)
    )
    for start, end in stretches(day for day in days if day >= first):
        session.add(Leave(person_id=person_id, start=start, end=end, source="calendar", created_at=now))
