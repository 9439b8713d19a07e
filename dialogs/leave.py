"""`leave`: absence, for yourself or (as their manager) for a report. Baton stays silent then.

Typed leave sits beside what Baton reads by itself (dialogs/common/absence.py):
the person's calendar feed (`leave calendar ADDRESS`, read by bot/calendars.py)
and their team's public holidays. `leave` lists every away day with where it
came from; `leave working DAY` says "I'm working that day" against any source.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import delete, select

from dialogs.common.absence import (
    PRIVATE_TODO,
    SOURCES,
    away,
    feed_address,
    masked,
    private_host,
    seal_address,
    shown_address,
)
from dialogs.common.cadence import local_label
from dialogs.engine import END, Dialog, State, Transition, Turn
from dialogs.engine.errors import UserFacingError
from dialogs.engine.messages import Choice, Reply, TextInput
from storage import queries
from storage.models import AwayOverride, CalendarFeed, Leave, Person

LISTED_DAYS = 90  # how far ahead `leave` lists away days
HOW_TO_FIND = (
    "Google Calendar: Settings → your calendar → *Secret address in iCal format*. Outlook: Settings → "
    "Calendar → Shared calendars → *Publish a calendar* → the ICS link."
)

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_day(text: str, today: date) -> date:
    """'2026-12-21', 'today', 'tomorrow' → a date. Raises UserFacingError otherwise."""
    word = text.strip().casefold()
    if word == "today":
        return today
    if word == "tomorrow":
        return today + timedelta(days=1)
    if DATE.match(word):
        try:
            return date.fromisoformat(word)
        except ValueError:
            pass
    raise UserFacingError("Please write the date like *2026-12-21* (or *today*, *tomorrow*).")


def check_range(start: date, end: date, today: date) -> None:
    if end < start:
        raise UserFacingError("The last day is before the first one. Which is the last day of the leave?")
    if end < today:
        raise UserFacingError("That leave is already over, so there's nothing for me to hold back.")
    if (end - start).days > 366:
        raise UserFacingError("Leave can cover at most a year at a time.")


class LeaveDialog(Dialog):
    name = "leave"
    title = "your leave"
    commands = ("leave",)
    summary = "Record leave (yours, or a report's): I send nothing on my own on those days."

    def __init__(self, private_calendars: bool = False) -> None:
        # BATON_CALENDAR_PRIVATE_HOSTS: an address on a private network is accepted (the reader allows it too).
        self.private_calendars = private_calendars
        self.first = "menu"
        self.states = {
            "menu": State(self.menu_prompt, on_choice=self.on_menu),
            "start": State(self.start_prompt, on_text=self.on_start, max_length=40),
            "end": State(self.end_prompt, on_text=self.on_end, max_length=40),
        }

    async def begin(self, turn: Turn, args: str) -> Transition:
        words = args.split()
        if words and words[0].casefold() == "calendar":
            return await self._calendar(turn, words[1:])
        if words and words[0].casefold() == "working":
            return await self._working(turn, words[1:])
        target = turn.person
        if words and "@" in words[0]:
            target = await self._report(turn, words.pop(0))
        turn.data["person"] = target.id
        turn.data["name"] = target.name.split(" ")[0] if target.id != turn.person.id else "you"
        if len(words) == 2:
            today = turn.local_now.date()
            start, end = parse_day(words[0], today), parse_day(words[1], today)
            check_range(start, end, today)
            await self._save(turn, start, end)
            return END
        if words:
            raise UserFacingError(
                "Write it as *leave 2026-12-21 2027-01-04*, or just *leave* to be asked step by step."
            )
        return "menu"

    async def _calendar(self, turn: Turn, words: list[str]) -> Transition:
        """`leave calendar` (status), `leave calendar ADDRESS` (connect), `leave calendar off` (stop)."""
        person_id = turn.person.id
        feed = await turn.session.get(CalendarFeed, person_id)
        if not words:
            if feed is None:
                turn.say(
                    "No calendar is connected. Send *leave calendar* followed by your calendar's secret iCal "
                    f"address, and I'll treat your days off there as away. {HOW_TO_FIND}"
                )
            else:
                state = f"last read {local_label(feed.ok_at, turn.person.timezone)}" if feed.ok_at else "not read yet"
                if feed.problem:
                    state += " — the last try failed; I keep the days I read before"
                address = shown_address(turn.sealer, person_id, feed.sealed_url)
                turn.say(f"Your calendar {address} is connected ({state}). *leave calendar off* disconnects it.")
            return END
        if words[0].casefold() == "off":
            if feed is not None:
                await turn.session.delete(feed)
            await turn.session.execute(
                delete(Leave).where(
                    Leave.person_id == person_id, Leave.source == "calendar", Leave.end >= turn.local_now.date()
                )
            )
            turn.say("Disconnected: I no longer read your calendar, and forgot the away days it gave me.")
            return END
        url = feed_address(words[0]) if len(words) == 1 else None
        if url is None:
            raise UserFacingError(
                f"That doesn't look like a calendar address. It starts with https:// and ends in .ics. {HOW_TO_FIND}"
            )
        if not self.private_calendars and private_host(url):
            # Said at once; a name that only resolves to such an address is refused when it is read.
            raise UserFacingError(
                f"{masked(url)} is on a private or internal network, and I only read calendars on the public "
                f"internet. {PRIVATE_TODO}"
            )
        sealed = seal_address(turn.sealer, person_id, url)
        if feed is None:
            turn.session.add(CalendarFeed(person_id=person_id, sealed_url=sealed, created_at=turn.now))
        else:
            feed.sealed_url, feed.checked_at, feed.ok_at, feed.problem, feed.told_at = sealed, None, None, None, None
            feed.digest, feed.read_for = None, None
        turn.say(
            f"Connected {masked(url)}. I'll read it within a few minutes and then every hour: all-day events and "
            "out-of-office time count as away. I keep only the days, never titles or who's invited. "
            "*leave* shows what I found; *leave working DAY* overrides a day."
        )
        return END

    async def _working(self, turn: Turn, words: list[str]) -> Transition:
        """`leave working DAY`: not away that day, whatever a calendar or a holiday says."""
        if len(words) != 1:
            raise UserFacingError("Write it as *leave working 2026-12-24* (or *today*, *tomorrow*).")
        today = turn.local_now.date()
        day = parse_day(words[0], today)
        if day < today:
            raise UserFacingError("That day is over already, so there's nothing to change.")
        await queries.insert_ignore(turn.session, AwayOverride, person_id=turn.person.id, day=day)
        turn.say(f"Noted: you're working on {day:%a %d %b}. I'll treat it as a normal day.")
        return END

    async def _report(self, turn: Turn, email: str) -> Person:
        person = await queries.person_by_email(turn.session, email)
        if person is None or not (person.manager_id == turn.person.id or turn.person.is_admin):
            raise UserFacingError("You can record leave for yourself, or as their manager for your direct reports.")
        return person

    async def _leaves(self, turn: Turn) -> list[Leave]:
        today = turn.local_now.date()
        rows = await turn.session.execute(
            select(Leave)
            .where(Leave.person_id == turn.data["person"], Leave.end >= today, Leave.source == "typed")
            .order_by(Leave.start)
        )
        return list(rows.scalars())

    async def menu_prompt(self, turn: Turn) -> Reply:
        today = turn.local_now.date()
        person_id = turn.data["person"]
        stretches = (await away(turn.session, [person_id], today, today + timedelta(days=LISTED_DAYS))).get(
            person_id, []
        )
        who = "You are" if turn.data["name"] == "you" else f"{turn.data['name']} is"
        lines = []
        for stretch in stretches:
            days = f"{stretch.start:%a %d %b}" + (f" – {stretch.end:%a %d %b}" if stretch.end != stretch.start else "")
            source = SOURCES.get(stretch.source, stretch.source)
            lines.append(f"• {days} ({source}{': ' + stretch.label if stretch.label else ''})")
        working = list(
            await turn.session.scalars(
                select(AwayOverride.day)
                .where(AwayOverride.person_id == person_id, AwayOverride.day >= today)
                .order_by(AwayOverride.day)
            )
        )
        text = f"{who} away on these days:\n" + "\n".join(lines) if lines else f"{who} not away on any day ahead."
        if working:
            text += "\nWorking despite a calendar or holiday: " + ", ".join(f"{d:%a %d %b}" for d in working)
        typed = [stretch for stretch in await self._leaves(turn)]
        choices = [Choice("Add leave", "add", "primary")]
        choices += [
            Choice(f"Remove {leave.start:%d %b}–{leave.end:%d %b}", f"remove:{leave.id}") for leave in typed[:3]
        ]
        choices += [Choice(f"Away after all on {day:%d %b}", f"unwork:{day.isoformat()}") for day in working[:2]]
        return Reply(text, choices=(*choices, Choice("Done", "done")))

    async def on_menu(self, turn: Turn, value: str) -> Transition:
        if value == "done":
            return END
        if value == "add":
            return "start"
        if value.startswith("unwork:"):
            day = date.fromisoformat(value.split(":", 1)[1])
            await turn.session.execute(
                delete(AwayOverride).where(AwayOverride.person_id == turn.data["person"], AwayOverride.day == day)
            )
            turn.say("Changed back.")
            return "menu"
        if value.startswith("remove:"):
            await turn.session.execute(
                delete(Leave).where(
                    Leave.id == int(value.split(":")[1]),
                    Leave.person_id == turn.data["person"],
                    Leave.source == "typed",
                )
            )
            turn.say("Removed.")
            return "menu"
        return None

    def start_prompt(self, turn: Turn) -> Reply:
        return Reply("What's the first day of the leave?", input=TextInput("2026-12-21", 40, False))

    async def on_start(self, turn: Turn, text: str) -> Transition:
        turn.data["start"] = parse_day(text, turn.local_now.date()).isoformat()
        return "end"

    def end_prompt(self, turn: Turn) -> Reply:
        return Reply("And the last day (inclusive)?", input=TextInput("2027-01-04", 40, False))

    async def on_end(self, turn: Turn, text: str) -> Transition:
        today = turn.local_now.date()
        start, end = date.fromisoformat(turn.data["start"]), parse_day(text, today)
        check_range(start, end, today)
        await self._save(turn, start, end)
        return "menu"

    async def _save(self, turn: Turn, start: date, end: date) -> None:
        turn.session.add(
            Leave(
                person_id=turn.data["person"], start=start, end=end, created_by_id=turn.person.id, created_at=turn.now
            )
        )
        who = "you" if turn.data["name"] == "you" else turn.data["name"]
        turn.say(f"Noted: {start:%a %d %b} to {end:%a %d %b}. I won't send {who} anything on my own then.")
