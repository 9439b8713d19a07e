"""Time in a person's own zone, ISO-week periods, and a team's weekly rhythm.

A period is the ISO week of a check-in's local send date ("2026-W47"). It
opens when the check-in is sent (the team's weekday and time, in each
person's own time zone) and closes at the digest time. Shared by the check-in
dialog, the scheduler, the Home tab, the reports and the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from dialogs.engine.clock import tz
from storage.models import Team


@lru_cache(maxsize=256)
def hhmm(text: str) -> time:
    """'16:00' → time(16, 0). Raises ValueError on anything else."""
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def local_datetime(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`day` at `at` on the wall clock of `zone`, as aware UTC.

    On a spring-forward day a wall time that does not exist comes out moved
    forward by the gap (02:30 → 03:30), as an alarm clock would ring; on a
    fall-back day an ambiguous time means its first occurrence (fold=0).
    """
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


@lru_cache(maxsize=4096)
def period_of(moment: datetime, zone_name: str) -> str:
    year, week, _ = moment.astimezone(tz(zone_name)).isocalendar()
    return f"{year}-W{week:02d}"


def checkin_day(period: str, weekday: int) -> date:
    """The local day of `period` ("2026-W47") on which a team checking in on `weekday` (0 = Monday) is asked."""
    year, week = (int(part) for part in period.split("-W"))
    return date.fromisocalendar(year, week, weekday + 1)


def week_label(period: str) -> str:
    return f"week {int(period.split('-W')[1])}"


@dataclass(frozen=True, slots=True)
class Rhythm:
    """A team's weekly schedule, read off its row."""

    weekday: int = 4
    at: str = "16:00"
    digest_weekday: int = 0
    digest_at: str = "09:00"
    reminder_count: int = 1
    reminder_after: timedelta = timedelta(hours=2)

    @classmethod
    def of(cls, team: Team | None) -> Rhythm:
        if team is None:
            return cls()
        return cls(
            team.checkin_weekday,
            team.checkin_time,
            team.digest_weekday,
            team.digest_time,
            team.reminder_count,
            timedelta(minutes=team.reminder_after_minutes),
        )

    def sends_around(self, now: datetime, zone_name: str) -> tuple[datetime, datetime, datetime]:
        """Last week's, this week's and next week's send times (aware UTC) for someone in `zone_name`."""
        return weekly_times(now, zone_name, self.weekday, self.at)

    def open_send(self, now: datetime, zone_name: str) -> datetime:
        """The send time of the period open now: the latest one not in the future."""
        last, this, _ = self.sends_around(now, zone_name)
        return this if this <= now else last

    def current_send(self, now: datetime, zone_name: str) -> datetime:
        """The send time of the period a check-in started now is for: the one open now until it closes
        (the digest), then the coming one, which may be answered early. The closed one still takes late
        answers from its own buttons until the next send (`open_send`), but is never offered anew."""
        return _current_send(self, now, zone_name)

    def next_send(self, now: datetime, zone_name: str) -> datetime:
        _, this, following = self.sends_around(now, zone_name)
        return this if this > now else following

    def close_after(self, send: datetime, zone_name: str) -> datetime:
        """When the period sent at `send` closes: the first digest time after it."""
        zone = tz(zone_name)
        local = send.astimezone(zone)
        days = (self.digest_weekday - local.weekday()) % 7
        close = local_datetime(local.date() + timedelta(days=days), hhmm(self.digest_at), zone)
        return close if close > send else close + timedelta(days=7)


@lru_cache(maxsize=4096)  # a tick asks this for thousands of people sharing a few zones and schedules
def weekly_times(now: datetime, zone_name: str, weekday: int, at: str) -> tuple[datetime, datetime, datetime]:
    """A weekly wall-clock time in `zone_name` for last, this and next ISO week (aware UTC)."""
    zone = tz(zone_name)
    local = now.astimezone(zone)
    monday = local.date() - timedelta(days=local.weekday())
    clock = hhmm(at)
    return tuple(local_datetime(monday + timedelta(days=weekday + 7 * k), clock, zone) for k in (-1, 0, 1))  # type: ignore[return-value]


@lru_cache(maxsize=4096)  # send-now asks this for thousands of people sharing a few zones
def _current_send(rhythm: Rhythm, now: datetime, zone_name: str) -> datetime:
    send = rhythm.open_send(now, zone_name)
    return send if now < rhythm.close_after(send, zone_name) else rhythm.next_send(now, zone_name)
