"""When a manager–report pair's 1:1s fall: the one reading of a `OneOnOne` row.

The scheduler, the 1:1 dialog, the `.ics` invitation, the dashboard and the rhythm picture all ask this
module, so what people are shown and what Baton runs cannot disagree. Times are the manager's wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dialogs.common.periods import hhmm, local_datetime
from dialogs.engine.clock import tz
from storage.models import OneOnOne

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
EVERY = (1, 2, 3, 4)  # weeks between 1:1s people may choose
LENGTHS = (15, 25, 30, 45, 60)  # minutes
DEFAULT_WEEKDAY, DEFAULT_AT, DEFAULT_EVERY, DEFAULT_MINUTES = 1, "10:00", 2, 30
FIRST_AFTER = timedelta(days=3)  # a new pair's first 1:1: far enough away for an agenda the day before
AGENDA_BEFORE = timedelta(hours=24)  # the agenda goes to both the day before (moved out of quiet hours)
ASK_AFTER = timedelta(minutes=30)  # "How did it go?" this long after the 1:1's planned end
# An overdue action item is nudged at most once a calendar week (budgeted): one key per ISO week of its owner's day.
ACTION_NUDGE_RULE = "at most once a calendar week (Monday to Sunday, on the owner's own clock)"


def action_nudge_key(action_id: int, owners_day: date) -> str:
    """The outbox key of an action item's nudge: one per ISO week of the owner's local day."""
    year, week, _ = owners_day.isocalendar()
    return f"action-nudge:{action_id}:{year}-W{week:02d}"


SKIPS_TOLD = 3  # this many skipped in a row are mentioned to the manager, once


@dataclass(frozen=True, slots=True)
class Cadence:
    """A 1:1 rhythm without its row: every `every_weeks` weeks on `weekday` at `at` for `minutes`."""

    every_weeks: int = DEFAULT_EVERY
    minutes: int = DEFAULT_MINUTES
    weekday: int = DEFAULT_WEEKDAY
    at: str = DEFAULT_AT

    @classmethod
    def of(cls, pair: OneOnOne) -> Cadence:
        return cls(pair.every_weeks, pair.minutes, pair.weekday, pair.at)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Cadence:
        every, minutes, weekday = (int(str(data[k])) for k in ("every_weeks", "minutes", "weekday"))
        at = str(data["at"])
        hhmm(at)  # raises on a malformed time
        if every not in EVERY or minutes not in LENGTHS or not 0 <= weekday <= 6:
            raise ValueError("not a cadence Baton offers")
        return cls(every, minutes, weekday, at)

    def to_dict(self) -> dict[str, object]:
        return {"every_weeks": self.every_weeks, "minutes": self.minutes, "weekday": self.weekday, "at": self.at}

    def describe(self) -> str:
        """'every 2 weeks on Tuesday at 10:00, 30 minutes'."""
        every = "every week" if self.every_weeks == 1 else f"every {self.every_weeks} weeks"
        return f"{every} on {DAYS[self.weekday]} at {self.at}, {self.minutes} minutes"


def first_anchor(weekday: int, today: date) -> date:
    """The first `weekday` at least `FIRST_AFTER` after `today`: where a new or re-timed rhythm starts."""
    earliest = today + FIRST_AFTER
    return earliest + timedelta(days=(weekday - earliest.weekday()) % 7)


def slots(pair: OneOnOne, manager_zone: str, start: datetime, end: datetime) -> list[datetime]:
    """The pair's regular 1:1 times (aware UTC) in [start, end), on the manager's wall clock."""
    zone = tz(manager_zone)
    at = hhmm(pair.at)
    step = 7 * max(1, pair.every_weeks)
    offset = (start.astimezone(zone).date() - timedelta(days=1) - pair.anchor).days
    day = pair.anchor + timedelta(days=max(0, -(-offset // step)) * step)
    found = []
    while (when := local_datetime(day, at, zone)) < end:
        if when >= start:
            found.append(when)
        day += timedelta(days=step)
    return found


def next_slot(pair: OneOnOne, manager_zone: str, after: datetime) -> datetime:
    """The first regular 1:1 time at or after `after`."""
    span = timedelta(weeks=max(1, pair.every_weeks) + 1)
    return slots(pair, manager_zone, after, after + span)[0]


def local_label(when: datetime, zone_name: str) -> str:
    """'Tue 8 Dec 10:00' on `zone_name`'s wall clock."""
    local = when.astimezone(tz(zone_name))
    return f"{local:%a} {local.day} {local:%b %H:%M}"
