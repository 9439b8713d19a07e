"""`team`: a manager (or admin) sets the team's check-in day, time, reminders, digest and questions."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.checkin import questions_for_team, validate_questions
from dialogs.engine import END, Dialog, State, Transition, Turn
from dialogs.engine.errors import UserFacingError
from dialogs.engine.messages import Choice, Reply, TextInput
from storage.models import CheckinTemplate, Person, Team

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TIME = re.compile(r"^\s*([01]?\d|2[0-3])[:.h]([0-5]\d)\s*$")
KINDS = {"text": "Free text", "rating": "Rating 1–5", "choice": "Multiple choice", "number": "Number"}


def parse_time(text: str) -> str:
    match = TIME.match(text)
    if not match:
        raise UserFacingError("Please write a time like *16:00*.")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def parse_day(text: str) -> int:
    word = text.strip().casefold()
    for index, day in enumerate(DAYS):
        if word in (day.casefold(), day[:3].casefold(), str(index)):
            return index
    raise UserFacingError("Please name a weekday, like *Friday* or *fri*.")


def describe(team: Team) -> str:
    reminders = (
        "no reminders"
        if team.reminder_count == 0
        else f"{team.reminder_count} reminder{'s' if team.reminder_count > 1 else ''}, {team.reminder_after_minutes // 60}h{team.reminder_after_minutes % 60:02d} apart"
    )
    return (
        f"Check-ins go out {DAYS[team.checkin_weekday]}s at {team.checkin_time}, each person's own time; {reminders}. "
        f"The period closes and your digest arrives {DAYS[team.digest_weekday]}s at {team.digest_time}."
    )


async def save_questions(
    session: AsyncSession, team_id: int, questions: list[dict[str, Any]] | None, now: datetime
) -> None:
    """Store a team's questions (validated); None goes back to the default. Runs in progress keep theirs."""
    if questions is None:
        await session.execute(delete(CheckinTemplate).where(CheckinTemplate.team_id == team_id))
        return
    questions = validate_questions(questions)
    template = (
        (await session.execute(select(CheckinTemplate).where(CheckinTemplate.team_id == team_id))).scalars().first()
    )
    if template is None:
        session.add(CheckinTemplate(team_id=team_id, questions=questions, updated_at=now))
    else:
        template.questions = questions
        template.updated_at = now
        session.add(template)


class TeamDialog(Dialog):
    name = "team"
    title = "your team's settings"
    commands = ("team",)
    summary = "Set your team's check-in day, time, reminders, digest and questions."
    audience = "manager"

    def __init__(self) -> None:
        self.first = "menu"
        self.states = {
            "menu": State(self.menu_prompt, on_choice=self.on_menu),
            "day": State(self.day_prompt, on_choice=self.on_day),
            "time": State(self.time_prompt, on_text=self.on_time, max_length=10),
            "reminders": State(self.reminders_prompt, on_choice=self.on_reminders),
            "digest": State(self.digest_prompt, on_text=self.on_digest, max_length=30),
            "questions": State(self.questions_prompt, on_choice=self.on_questions),
            "add_kind": State(self.add_kind_prompt, on_choice=self.on_add_kind),
            "add_prompt": State(self.add_prompt_prompt, on_text=self.on_add_prompt, max_length=300),
            "add_options": State(self.add_options_prompt, on_text=self.on_add_options, max_length=800),
            "remove": State(self.remove_prompt, on_choice=self.on_remove),
        }

    async def begin(self, turn: Turn, args: str) -> Transition:
        team = await self._find_team(turn, args.strip())
        turn.data["team"] = team.id
        return "menu"

    async def _find_team(self, turn: Turn, name: str) -> Team:
        if name:
            team = (
                (await turn.session.execute(select(Team).where(func.lower(Team.name) == name.casefold())))
                .scalars()
                .first()
            )
            if team is None:
                raise UserFacingError(f"I don't know a team called {name}.")
            if not turn.role.admin and not await self._manages(turn, team.id):
                raise UserFacingError("You can change the settings of the team you manage.")
            return team
        row = await turn.session.execute(
            select(Person.team_id, func.count())
            .where(Person.manager_id == turn.person.id, Person.team_id.is_not(None))
            .group_by(Person.team_id)
            .order_by(func.count().desc())
        )
        first = row.first()
        team_id = first[0] if first else turn.person.team_id
        if team_id is None:
            raise UserFacingError("I couldn't tell which team is yours. Try *team NAME*.")
        team = await turn.session.get(Team, team_id)
        assert team is not None
        return team

    async def _manages(self, turn: Turn, team_id: int) -> bool:
        count = await turn.session.scalar(
            select(func.count())
            .select_from(Person)
            .where(Person.manager_id == turn.person.id, Person.team_id == team_id)
        )
        return bool(count)

    async def _team(self, turn: Turn) -> Team:
        team = await turn.session.get(Team, turn.data["team"])
        if team is None:
            raise UserFacingError("That team no longer exists.")
        return team

    # -- menu ----------------------------------------------------------------------------------

    async def menu_prompt(self, turn: Turn) -> Reply:
        team = await self._team(turn)
        count = len(await questions_for_team(turn.session, team.id))
        return Reply(
            f"*{team.name}*: {describe(team)} The check-in has {count} questions. What would you like to change?",
            choices=(
                Choice("Day", "day"),
                Choice("Time", "time"),
                Choice("Reminders", "reminders"),
                Choice("Digest", "digest"),
                Choice("Questions", "questions"),
                Choice("Done", "done", "primary"),
            ),
        )

    async def on_menu(self, turn: Turn, value: str) -> Transition:
        if value == "done":
            turn.say("Saved. Changes apply from the next check-in.")
            return END
        return value if value in self.states else None

    def day_prompt(self, turn: Turn) -> Reply:
        return Reply("Which day should check-ins go out?", choices=tuple(Choice(d, str(i)) for i, d in enumerate(DAYS)))

    async def on_day(self, turn: Turn, value: str) -> Transition:
        team = await self._team(turn)
        team.checkin_weekday = parse_day(value)
        turn.session.add(team)
        return "menu"

    def time_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "At what local time? (Each person gets it at that time in their own time zone.)",
            input=TextInput("16:00", 10, False),
        )

    async def on_time(self, turn: Turn, text: str) -> Transition:
        team = await self._team(turn)
        team.checkin_time = parse_time(text)
        turn.session.add(team)
        return "menu"

    def reminders_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "How many reminders for an unanswered check-in?",
            choices=(
                Choice("None", "0:120"),
                Choice("One, after 2 hours", "1:120"),
                Choice("One, after 4 hours", "1:240"),
                Choice("Two, 3 hours apart", "2:180"),
            ),
        )

    async def on_reminders(self, turn: Turn, value: str) -> Transition:
        count, minutes = (int(part) for part in value.split(":"))
        team = await self._team(turn)
        team.reminder_count, team.reminder_after_minutes = count, minutes
        turn.session.add(team)
        return "menu"

    def digest_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "When should the period close and your digest arrive? A day and a time, like *Monday 09:00*.",
            input=TextInput("Monday 09:00", 30, False),
        )

    async def on_digest(self, turn: Turn, text: str) -> Transition:
        day, _, at = text.strip().partition(" ")
        team = await self._team(turn)
        team.digest_weekday, team.digest_time = parse_day(day), parse_time(at)
        turn.session.add(team)
        return "menu"

    # -- questions -----------------------------------------------------------------------------

    async def questions_prompt(self, turn: Turn) -> Reply:
        questions = await questions_for_team(turn.session, turn.data["team"])
        listed = "\n".join(
            f"{n}. {q['prompt']} ({KINDS[q['kind']].lower()}{', private' if q.get('private') else ''})"
            for n, q in enumerate(questions, 1)
        )
        return Reply(
            f"The check-in asks:\n{listed}",
            choices=(
                Choice("Add a question", "add"),
                Choice("Remove a question", "remove"),
                Choice("Reset to default", "reset", "danger"),
                Choice("Back", "back"),
            ),
        )

    async def on_questions(self, turn: Turn, value: str) -> Transition:
        if value == "back":
            return "menu"
        if value == "add":
            if len(await questions_for_team(turn.session, turn.data["team"])) >= 12:
                raise UserFacingError("A check-in has at most 12 questions. Remove one first.")
            return "add_kind"
        if value == "remove":
            return "remove"
        if value == "reset":
            await save_questions(turn.session, turn.data["team"], None, turn.now)
            turn.say("Back to the default questions.")
            return "questions"
        return None

    def add_kind_prompt(self, turn: Turn) -> Reply:
        return Reply("What kind of answer?", choices=tuple(Choice(label, kind) for kind, label in KINDS.items()))

    async def on_add_kind(self, turn: Turn, value: str) -> Transition:
        turn.data["new"] = {"kind": value}
        return "add_prompt"

    def add_prompt_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "What should the question say? Ask about the work, not the person — e.g. *What would make next week easier?*",
            input=TextInput("Your question", 300, False),
        )

    async def on_add_prompt(self, turn: Turn, text: str) -> Transition:
        if len(text) < 3:
            raise UserFacingError("That's a bit short for a question.")
        turn.data["new"]["prompt"] = text
        if turn.data["new"]["kind"] == "choice":
            return "add_options"
        return await self._add(turn)

    def add_options_prompt(self, turn: Turn) -> Reply:
        return Reply("List the options, separated by commas (2 to 10).", input=TextInput("Yes, Partly, No", 800, False))

    async def on_add_options(self, turn: Turn, text: str) -> Transition:
        turn.data["new"]["options"] = [o.strip() for o in text.split(",") if o.strip()]
        return await self._add(turn)

    async def _add(self, turn: Turn) -> Transition:
        questions = await questions_for_team(turn.session, turn.data["team"])
        taken = {q["id"] for q in questions}
        new = dict(turn.data.pop("new"))
        new["id"] = next(f"q{n}" for n in range(1, 100) if f"q{n}" not in taken)
        try:
            await save_questions(turn.session, turn.data["team"], [*questions, new], turn.now)
        except ValueError as exc:
            raise UserFacingError(f"I couldn't add that: {exc}.") from None
        turn.say("Added. It will be asked from the next check-in.")
        return "questions"

    async def remove_prompt(self, turn: Turn) -> Reply:
        questions = await questions_for_team(turn.session, turn.data["team"])
        return Reply(
            "Which one should go?",
            choices=(
                *tuple(Choice(f"{n}. {q['prompt'][:60]}", q["id"]) for n, q in enumerate(questions, 1)),
                Choice("Back", "__back"),
            ),
        )

    async def on_remove(self, turn: Turn, value: str) -> Transition:
        if value == "__back":
            return "questions"
        questions = await questions_for_team(turn.session, turn.data["team"])
        kept = [q for q in questions if q["id"] != value]
        if not kept:
            raise UserFacingError("A check-in needs at least one question.")
        await save_questions(turn.session, turn.data["team"], kept, turn.now)
        turn.say("Removed.")
        return "questions"
