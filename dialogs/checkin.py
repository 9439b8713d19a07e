"""Weekly check-ins: the questions, the period arithmetic, and the `checkin` dialog.

A period is the ISO week of the check-in's local send date ("2026-W47"). It
opens when the check-in is sent (the team's weekday and time, in each
person's own time zone) and closes at the digest time: answers can be edited
until then, and a late first answer still counts until the next period opens.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from sqlalchemy import select
from sqlmodel import col

from dialogs.common.agenda import discuss_choice
from dialogs.common.periods import Rhythm, hhmm, local_datetime, period_of, week_label
from dialogs.common.wording import is_nothing, shorten
from dialogs.engine import END, Dialog, State, Transition, Turn
from dialogs.engine.clock import tz
from dialogs.engine.contract import COMMAND_ACTION
from dialogs.engine.errors import UserFacingError
from dialogs.engine.messages import Choice, Form, FormField, Rating, Reply, TextInput
from storage import queries
from storage.models import CheckinAnswer, CheckinRun, CheckinTemplate, Team

FORM = "__form__"
ONE_AT_A_TIME = "__one__"
SKIP = "__skip__"
MAX_ANSWER = 2000


class Question(BaseModel):
    """One check-in question. `feeds` says which report section reads it."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    kind: Literal["text", "rating", "choice", "number"]
    prompt: str = Field(min_length=3, max_length=300)
    optional: bool = True
    private: bool = False  # never broadcast to a team channel
    feeds: Literal["progress", "blockers", "pulse", "priorities", "requests", "goal", "other"] = "other"
    low: str = "Hard going"
    high: str = "Great"
    options: list[str] = Field(default_factory=list, max_length=10)
    unit: str = Field(default="", max_length=12)
    minimum: float | None = None
    maximum: float | None = None
    goal_id: int | None = None

    @field_validator("options")
    @classmethod
    def _options(cls, options: list[str]) -> list[str]:
        if any(not 1 <= len(o.strip()) <= 75 for o in options):
            raise ValueError("each option needs 1 to 75 characters")
        return [o.strip() for o in options]

    @model_validator(mode="after")
    def _kind(self) -> Question:
        if self.kind == "choice" and len(self.options) < 2:
            raise ValueError(f"question {self.id}: a choice question needs at least two options")
        if self.minimum is not None and self.maximum is not None and self.minimum >= self.maximum:
            raise ValueError(f"question {self.id}: minimum must be below maximum")
        return self


DEFAULT_QUESTIONS: tuple[dict[str, Any], ...] = (
    {"id": "progress", "kind": "text", "prompt": "What moved forward this week?", "feeds": "progress"},
    {
        "id": "blockers",
        "kind": "text",
        "prompt": "What slowed you down or got in the way? (Type *nothing* if nothing did.)",
        "feeds": "blockers",
    },
    {
        "id": "pulse",
        "kind": "rating",
        "prompt": "How was this week for getting your work done?",
        "low": "Hard going",
        "high": "Great flow",
        "private": True,
        "feeds": "pulse",
    },
    {
        "id": "priorities",
        "kind": "text",
        "prompt": "What are your top priorities for next week?",
        "feeds": "priorities",
    },
    {
        "id": "needs",
        "kind": "text",
        "prompt": "Is there anything you need from your manager? (Only your manager sees this.)",
        "private": True,
        "feeds": "requests",
    },
)


def validate_questions(raw: Any) -> list[dict[str, Any]]:
    """Check a template (a list of question mappings); return it normalised or raise ValueError naming the problem."""
    if not isinstance(raw, list) or not raw:
        raise ValueError("a template is a non-empty list of questions")
    if len(raw) > 12:
        raise ValueError("a check-in has at most 12 questions; people answer short ones")
    questions = []
    for number, item in enumerate(raw, 1):
        try:
            questions.append(Question.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            name = item.get("id") if isinstance(item, dict) else None
            label = f"question {number}" + (f" ({name})" if name else "") + (f", {field}" if field else "")
            message = first["msg"].removeprefix("Value error, ").removeprefix(f"question {name}: ")
            raise ValueError(f"{label}: {message}") from None
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise ValueError("question ids must be unique")
    return [q.model_dump(exclude_defaults=True) | {"id": q.id, "kind": q.kind, "prompt": q.prompt} for q in questions]


async def questions_for_team(session, team_id: int | None) -> list[dict[str, Any]]:  # noqa: ANN001
    if team_id is not None:
        template = (
            (await session.execute(select(CheckinTemplate).where(CheckinTemplate.team_id == team_id))).scalars().first()
        )
        if template is not None:
            return list(template.questions)
    return [dict(q) for q in DEFAULT_QUESTIONS]


def invitation(first_name: str, period: str, count: int) -> Reply:
    """The message that opens a check-in: what it is, how long, and a way out."""
    return Reply(
        f"Hi {first_name}, it's check-in time for {week_label(period)}: {count} short questions, about "
        f"{max(2, count)} minutes. Ready?",
        choices=(
            Choice("Start", f"checkin start {period}", "primary"),
            Choice("Snooze", f"checkin snooze {period}"),
            Choice("Skip this week", f"checkin skip {period}"),
        ),
        action="cmd",
    )


def reminder(first_name: str, period: str) -> Reply:
    return Reply(
        f"A gentle reminder, {first_name}: your check-in for {week_label(period)} is still open.",
        choices=(
            Choice("Start", f"checkin start {period}", "primary"),
            Choice("Skip this week", f"checkin skip {period}"),
        ),
        action="cmd",
    )


class CheckinDialog(Dialog):
    name = "checkin"
    title = "your check-in"
    commands = ("checkin",)
    summary = "Answer this week's check-in (or edit it until it closes)."

    def __init__(self) -> None:
        self.first = "question"
        self.states = {
            "question": State(
                self.question_prompt, on_text=self.on_text, on_choice=self.on_choice, max_length=MAX_ANSWER
            ),
            "form": State(self.form_prompt, on_choice=self.on_form),
            "review": State(self.review_prompt, on_choice=self.on_review),
            "snooze": State(self.snooze_prompt, on_choice=self.on_snooze),
        }

    async def prefetch(self, session, turns: list[Turn]) -> None:  # noqa: ANN001 - AsyncSession
        """The runs these turns are answering, in one query."""
        ids = {turn.data["run"] for turn in turns if isinstance(turn.data.get("run"), int)}
        if not ids:
            return
        runs = {run.id: run for run in await session.scalars(select(CheckinRun).where(CheckinRun.id.in_(ids)))}
        for turn in turns:
            if turn.data.get("run") in runs:
                turn.memo["run"] = runs[turn.data["run"]]

    async def _run_of(self, turn: Turn) -> CheckinRun | None:
        """The run this dialog is answering (fetched with its batch when there was one)."""
        run = turn.memo.get("run")
        if run is None or run.id != turn.data.get("run"):
            run = turn.memo["run"] = await turn.session.get(CheckinRun, turn.data["run"])
        return run

    # -- entry -------------------------------------------------------------------------------

    async def begin(self, turn: Turn, args: str) -> Transition:
        verb, _, period = args.partition(" ")
        verb = verb.strip().lower() or "start"
        if verb not in ("start", "skip", "snooze"):
            raise UserFacingError("Try *checkin* to answer this week's check-in.")
        if turn.person.team_id is None:
            raise UserFacingError(
                "You're not in a team with check-ins yet. Ask your manager or admin to add you to one."
            )
        team = await turn.session.get(Team, turn.person.team_id)
        rhythm = Rhythm.of(team)
        zone = turn.person.timezone
        send = rhythm.current_send(turn.now, zone)
        current = period_of(send, zone)
        late = rhythm.open_send(turn.now, zone)
        period = period.strip() or current
        if not _PERIOD.fullmatch(period):
            raise UserFacingError(f"I don't know that week. Type *checkin* to answer {week_label(current)}'s check-in.")
        if period == period_of(late, zone) and period != current:
            send = late  # its own button, after the digest: a late answer still counts until the next send
        elif period != current:
            raise UserFacingError(
                f"The check-in for {week_label(period)} has closed; {week_label(current)}'s is open now. "
                "Type *checkin* to answer it."
            )
        run = await self._run(turn, period)
        closes = rhythm.close_after(send, zone)
        turn.data.update(run=run.id, closes=closes.isoformat(), period=period)
        if verb == "skip":
            if run.status == "answered":
                turn.say(f"You've already answered {week_label(period)}'s check-in, so there's nothing to skip.")
                return END
            run.status = "skipped"
            turn.session.add(run)
            turn.say(f"Skipped {week_label(period)}. No reminders this week; see you next week.")
            return END
        if verb == "snooze":
            if run.status == "answered":
                turn.say(f"You've already answered {week_label(period)}'s check-in.")
                return END
            return "snooze"
        if run.status == "answered":
            if turn.now >= closes:
                turn.say(f"{week_label(period).capitalize()}'s check-in has closed, so it can't be edited any more.")
                return END
            return "review"
        if run.status == "skipped":
            run.status = "open"  # changed their mind: a late answer still counts
            turn.session.add(run)
        run.snoozed_until = None
        turn.session.add(run)
        turn.data["i"] = await self._first_unanswered(turn, run)
        return "question"

    async def _run(self, turn: Turn, period: str) -> CheckinRun:
        statement = select(CheckinRun).where(CheckinRun.person_id == turn.person.id, CheckinRun.period == period)
        run = (await turn.session.execute(statement)).scalars().first()
        if run is None:
            questions = await questions_for_team(turn.session, turn.person.team_id)
            await queries.insert_ignore(
                turn.session,
                CheckinRun,
                person_id=turn.person.id,
                team_id=turn.person.team_id,
                period=period,
                questions=questions,
                status="open",
                snoozes=0,
                started_at=turn.now,
            )
            run = (await turn.session.execute(statement)).scalars().one()
        return run

    async def _answers(self, turn: Turn, run_id: int) -> dict[str, CheckinAnswer]:
        rows = await turn.session.execute(select(CheckinAnswer).where(CheckinAnswer.run_id == run_id))
        return {a.question_id: a for a in rows.scalars()}

    async def _first_unanswered(self, turn: Turn, run: CheckinRun) -> int:
        answered = await self._answers(turn, run.id)
        for index, question in enumerate(run.questions):
            if question["id"] not in answered:
                return index
        return 0

    # -- questions ---------------------------------------------------------------------------

    async def _current(self, turn: Turn) -> tuple[CheckinRun, dict[str, Any], int]:
        run = await self._run_of(turn)
        if run is None:
            raise UserFacingError("That check-in is no longer here. Type *checkin* to start this week's.")
        index = int(turn.data.get("i", 0))
        return run, run.questions[index], index

    async def question_prompt(self, turn: Turn) -> Reply:
        run, question, index = await self._current(turn)
        total = len(run.questions)
        head = f"Question {index + 1} of {total} — {question['prompt']}"
        skip = (Choice("Skip question", SKIP),) if question.get("optional", True) else ()
        if index == 0 and not turn.data.get("edit") and total > 1:
            skip += (Choice("Answer all at once", FORM),)
        kind = question["kind"]
        if kind == "rating":
            return Reply(
                head,
                rating=Rating(1, 5, question.get("low", "Hard going"), question.get("high", "Great")),
                choices=skip,
            )
        if kind == "choice":
            return Reply(head, choices=tuple(Choice(o, o) for o in question["options"]) + skip)
        if kind == "number":
            unit = f" ({question['unit']})" if question.get("unit") else ""
            return Reply(head + unit, choices=skip, input=TextInput("A number", 32, False))
        return Reply(head, choices=skip, input=TextInput("Type your answer…", MAX_ANSWER, True))

    async def on_choice(self, turn: Turn, value: str) -> Transition:
        run, question, _ = await self._current(turn)
        if value == SKIP:
            return await self._advance(turn, run)
        if value == FORM:
            return "form"
        return await self._record(turn, run, question, value)

    async def on_text(self, turn: Turn, text: str) -> Transition:
        run, question, _ = await self._current(turn)
        if question.get("optional", True) and text.strip().casefold().rstrip(".!") in ("skip", "skip question"):
            return await self._advance(turn, run)
        return await self._record(turn, run, question, text)

    async def _record(self, turn: Turn, run: CheckinRun, question: dict[str, Any], raw: str) -> Transition:
        if run.status == "answered" and turn.now >= datetime.fromisoformat(turn.data["closes"]):
            turn.say(
                f"{week_label(run.period).capitalize()}'s check-in closed in the meantime, so that edit wasn't saved."
            )
            return END
        text, number = parse_answer(question, raw)
        if question.get("goal_id") and number is not None:
            await self._goal_progress(turn, question, raw)
        await queries.upsert(
            turn.session,
            CheckinAnswer,
            {"run_id": run.id, "question_id": question["id"]},
            {"text": text, "number": number, "updated_at": turn.now},
        )
        return await self._advance(turn, run)

    async def _goal_progress(self, turn: Turn, question: dict[str, Any], raw: str) -> None:
        """A number question bound to a goal records the goal's progress too (validated in the goal's unit)."""
        from dialogs.goals import escalate_goal, parse_value, record_progress
        from storage.models import Goal

        goal = await turn.session.get(Goal, question["goal_id"])
        if goal is None or goal.status != "active":
            return
        value = parse_value(goal, raw)
        update, escalate = await record_progress(
            turn.session,
            goal,
            value,
            source="checkin",
            now=turn.now,
            today=turn.local_now.date(),
            recorded_by=turn.person.id,
        )
        if escalate:
            await escalate_goal(turn, goal, update)

    async def _advance(self, turn: Turn, run: CheckinRun) -> Transition:
        if turn.data.get("edit"):
            turn.data.pop("edit")
            turn.say("Updated.")
            return "review"
        index = int(turn.data.get("i", 0)) + 1
        if index < len(run.questions):
            turn.data["i"] = index
            return "question"
        return await self._finish(turn, run)

    async def _finish(self, turn: Turn, run: CheckinRun) -> Transition:
        first_time = run.status != "answered"
        run.status = "answered"
        run.answered_at = run.answered_at or turn.now
        turn.session.add(run)
        closes = datetime.fromisoformat(turn.data["closes"]).astimezone(tz(turn.person.timezone))
        if first_time:
            await self._broadcast(turn, run)
            if turn.now < closes:
                thanks = (
                    f"Thanks, that's your check-in for {week_label(run.period)}. You can change an answer with *checkin* "
                    f"until {closes:%A %H:%M}."
                )
            else:
                thanks = (
                    f"Thanks, that's your check-in for {week_label(run.period)}. It came in late, and it still counts."
                )
            turn.say(Reply(thanks, **await self._discuss(turn, run)))
            await self._invite_feedback(turn, run)  # the thanks first, then the offer
        return END

    async def _discuss(self, turn: Turn, run: CheckinRun) -> dict[str, Any]:
        """A "Discuss in our 1:1" button on the blocker (or else the priorities), for someone with a manager."""
        if turn.person.manager_id is None or run.id is None:
            return {}
        answers = {
            a.question_id: a
            for a in (
                await turn.session.execute(select(CheckinAnswer).where(col(CheckinAnswer.run_id) == run.id))
            ).scalars()
        }
        for feeds in ("blockers", "priorities"):
            for question in run.questions:
                answer = answers.get(question["id"])
                if question.get("feeds") == feeds and answer is not None and not is_nothing(answer.text):
                    return {
                        "choices": (discuss_choice(f"checkin:{run.id}:{question['id']}"),),
                        "action": COMMAND_ACTION,
                    }
        return {}

    async def _invite_feedback(self, turn: Turn, run: CheckinRun) -> None:
        """Two-way feedback: offer the performer a word with their manager, if the team wants that."""
        from dialogs.feedback import after_checkin
        from storage.models import Person

        team = await turn.session.get(Team, run.team_id) if run.team_id else None
        if team is None or not team.feedback_after_checkin or turn.person.manager_id is None:
            return
        after_checkin(turn, run, await turn.session.get(Person, turn.person.manager_id))

    async def _broadcast(self, turn: Turn, run: CheckinRun) -> None:
        """Post the non-private answers to the team channel, if the team opted in. Never a private question."""
        team = await turn.session.get(Team, run.team_id) if run.team_id else None
        if team is None or not team.broadcast or not team.broadcast_address.get("channel"):
            return
        answers = await self._answers(turn, run.id)
        lines = []
        for question in run.questions:
            answer = answers.get(question["id"])
            if question.get("private") or answer is None or question["kind"] == "rating":
                continue
            shown = answer.text if answer.text is not None else f"{answer.number:g}"
            if question.get("feeds") == "blockers" and is_nothing(shown):
                continue
            lines.append(f"{question['prompt']}\n{shorten(shown, 500)}")
        if lines:
            address = dict(team.broadcast_address)
            reply = Reply(f"{turn.person.name}'s check-in for {week_label(run.period)}:\n\n" + "\n\n".join(lines))
            turn.post(address.pop("platform", "local"), address, reply, key=f"broadcast:{run.id}")

    # -- all at once -------------------------------------------------------------------------

    async def form_prompt(self, turn: Turn) -> Reply:
        run = await self._run_of(turn)
        assert run is not None
        answers = await self._answers(turn, run.id)
        fields = []
        for question in run.questions:
            answer = answers.get(question["id"])
            current = None if answer is None else answer.text if answer.text is not None else f"{answer.number:g}"
            options = tuple(question.get("options", ())) if question["kind"] == "choice" else ()
            fields.append(
                FormField(
                    question["id"],
                    question["prompt"],
                    question["kind"],
                    options,
                    question.get("optional", True),
                    current,
                    MAX_ANSWER,
                )
            )
        return Reply(
            f"Your check-in for {week_label(run.period)}, all questions at once.",
            form=Form(f"Check-in, {week_label(run.period)}", tuple(fields), "Send check-in"),
            choices=(Choice("One at a time instead", ONE_AT_A_TIME),),
        )

    async def on_form(self, turn: Turn, value: str) -> Transition:
        run = await self._run_of(turn)
        assert run is not None
        if value == ONE_AT_A_TIME:
            turn.data["i"] = await self._first_unanswered(turn, run)
            return "question"
        try:
            submitted = json.loads(value)
        except ValueError:
            submitted = None
        if not isinstance(submitted, dict):
            raise UserFacingError("I couldn't read that form. Please try again, or answer one at a time.")
        parsed = []
        for number, question in enumerate(run.questions, 1):
            raw = submitted.get(question["id"])
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                if not question.get("optional", True):
                    raise UserFacingError(f"Question {number} needs an answer.")
                continue
            if len(str(raw)) > MAX_ANSWER:
                raise UserFacingError(
                    f"The answer to question {number} is longer than {MAX_ANSWER:,} characters. Nothing was recorded yet."
                )
            try:
                parsed.append((question, *parse_answer(question, str(raw))))
            except UserFacingError as exc:
                raise UserFacingError(f"Question {number}: {exc.message} Nothing was recorded yet.") from None
        existing = await self._answers(turn, run.id)
        for question, text, number in parsed:
            answer = existing.get(question["id"]) or CheckinAnswer(
                run_id=run.id, question_id=question["id"], updated_at=turn.now
            )
            answer.text, answer.number, answer.updated_at = text, number, turn.now
            turn.session.add(answer)
        await turn.session.flush()
        return await self._finish(turn, run)

    # -- review and edit ---------------------------------------------------------------------

    async def review_prompt(self, turn: Turn) -> Reply:
        run = await self._run_of(turn)
        assert run is not None
        answers = await self._answers(turn, run.id)
        lines = []
        for question in run.questions:
            answer = answers.get(question["id"])
            shown = (
                "—" if answer is None else answer.text or (f"{answer.number:g}" if answer.number is not None else "—")
            )
            lines.append(f"{question['prompt']}\n→ {shorten(shown, 200)}")
        return Reply(
            f"Your check-in for {week_label(run.period)}:\n\n" + "\n\n".join(lines) + "\n\nChange an answer?",
            choices=(
                *(Choice(f"Edit {n}", str(n)) for n in range(1, len(run.questions) + 1)),
                Choice("Done", "done", "primary"),
            ),
        )

    async def on_review(self, turn: Turn, value: str) -> Transition:
        if value == "done":
            turn.say("Thanks — your check-in is saved.")
            return END
        closes = datetime.fromisoformat(turn.data["closes"])
        if turn.now >= closes:
            turn.say("This check-in has closed, so it can't be edited any more.")
            return END
        turn.data["i"] = int(value) - 1
        turn.data["edit"] = True
        return "question"

    # -- snooze ------------------------------------------------------------------------------

    def snooze_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "When should I ask again?",
            choices=(
                Choice("In 1 hour", "1h"),
                Choice("In 3 hours", "3h"),
                Choice("Tomorrow morning", "tomorrow"),
                Choice("Monday morning", "monday"),
            ),
        )

    async def on_snooze(self, turn: Turn, value: str) -> Transition:
        run = await self._run_of(turn)
        assert run is not None
        until = snooze_until(turn.now, value, turn.person.timezone, turn.person.quiet_end)
        closes = datetime.fromisoformat(turn.data["closes"])
        run.snoozed_until = until
        run.snoozes += 1
        turn.session.add(run)
        local = until.astimezone(tz(turn.person.timezone))
        late = " (after it closes, but a late answer still counts)" if until >= closes else ""
        turn.say(f"OK, I'll ask again {local:%A at %H:%M}{late}.")
        return END


def snooze_until(now: datetime, choice: str, zone_name: str, morning: str) -> datetime:
    """The moment a snooze ends: in 1 or 3 hours, or tomorrow's / Monday's morning (the end of quiet hours)."""
    if choice == "1h":
        return now + timedelta(hours=1)
    if choice == "3h":
        return now + timedelta(hours=3)
    zone = tz(zone_name)
    local = now.astimezone(zone)
    try:
        wake = hhmm(morning)
    except ValueError:
        wake = hhmm("09:00")
    days = 1 if choice == "tomorrow" else (7 - local.weekday()) % 7 or 7
    return local_datetime(local.date() + timedelta(days=days), max(wake, hhmm("09:00")), zone)


_PERIOD = re.compile(r"[0-9]{4}-W(?:0[1-9]|[1-4][0-9]|5[0-3])")  # an ISO week, as buttons carry it


def parse_answer(question: dict[str, Any], raw: str) -> tuple[str | None, float | None]:
    """Validate an answer for its question's kind: (text, number). Raises UserFacingError, keeping the question."""
    kind = question["kind"]
    text = raw.strip()
    if kind == "rating":
        rating = queries.as_int(text, 1, 5)
        if rating is not None:
            return None, float(rating)
        raise UserFacingError("Please pick a number from 1 to 5 (or press *Skip question*).")
    if kind == "number":
        cleaned = text.replace(",", ".").replace(question.get("unit", "") or "\0", "").strip().rstrip("%").strip()
        try:
            number = float(cleaned)
        except ValueError:
            raise UserFacingError("That needs a number, like *42* or *3.5*.") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise UserFacingError("That needs an ordinary number, like *42*.")
        low, high = question.get("minimum"), question.get("maximum")
        if low is not None and high is not None and not low <= number <= high:
            raise UserFacingError(f"That number is outside what this question allows ({low:g} to {high:g}).")
        if low is not None and number < low:
            raise UserFacingError(f"This question takes {low:g} or more.")
        if high is not None and number > high:
            raise UserFacingError(f"This question takes {high:g} or less.")
        return None, number
    if kind == "choice":
        for option in question["options"]:
            if text.casefold() == option.casefold():
                return option, None
        raise UserFacingError("Please pick one of the options above.")
    if not text:
        raise UserFacingError("That answer was empty. Type something, or press *Skip question*.")
    return text, None
