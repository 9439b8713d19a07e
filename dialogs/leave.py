"""`leave`: record absence dates, for yourself or (as their manager) for a report. Baton stays silent then."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import delete, select

from dialogs.engine import END, Dialog, State, Transition, Turn
from dialogs.engine.errors import UserFacingError
from dialogs.engine.messages import Choice, Reply, TextInput
from storage import queries
from storage.models import Leave, Person

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

    def __init__(self) -> None:
        self.first = "menu"
        self.states = {
            "menu": State(self.menu_prompt, on_choice=self.on_menu),
            "start": State(self.start_prompt, on_text=self.on_start, max_length=40),
            "end": State(self.end_prompt, on_text=self.on_end, max_length=40),
        }

    async def begin(self, turn: Turn, args: str) -> Transition:
        words = args.split()
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

    async def _report(self, turn: Turn, email: str) -> Person:
        person = await queries.person_by_email(turn.session, email)
        if person is None or not (person.manager_id == turn.person.id or turn.person.is_admin):
            raise UserFacingError("You can record leave for yourself, or as their manager for your direct reports.")
        return person

    async def _leaves(self, turn: Turn) -> list[Leave]:
        today = turn.local_now.date()
        rows = await turn.session.execute(
            select(Leave).where(Leave.person_id == turn.data["person"], Leave.end >= today).order_by(Leave.start)
        )
        return list(rows.scalars())

    async def menu_prompt(self, turn: Turn) -> Reply:
        leaves = await self._leaves(turn)
        who = "You have" if turn.data["name"] == "you" else f"{turn.data['name']} has"
        listed = "\n".join(f"• {leave.start:%a %d %b %Y} – {leave.end:%a %d %b %Y}" for leave in leaves)
        text = f"{who} this leave coming up:\n{listed}" if leaves else f"{who} no leave recorded."
        choices = [Choice("Add leave", "add", "primary")]
        choices += [
            Choice(f"Remove {leave.start:%d %b}–{leave.end:%d %b}", f"remove:{leave.id}") for leave in leaves[:3]
        ]
        return Reply(text, choices=(*choices, Choice("Done", "done")))

    async def on_menu(self, turn: Turn, value: str) -> Transition:
        if value == "done":
            return END
        if value == "add":
            return "start"
        if value.startswith("remove:"):
            await turn.session.execute(
                delete(Leave).where(Leave.id == int(value.split(":")[1]), Leave.person_id == turn.data["person"])
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
