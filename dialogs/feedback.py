"""Two-way feedback, feedback requests and kudos.

* `feedback` — attributed feedback to your manager (upward), a report (downward)
  or a colleague (peer); `feedback EMAIL checkin` is a manager responding to a
  report's latest check-in.
* `ask` — request feedback from up to five colleagues on a topic, by a
  deadline; one reminder a day before it, a note to the requester when it runs out.
* `kudos` — recognise someone for a specific piece of work, privately or in the
  team channel, as the recipient prefers.

The questions ask about the work, never for a judgement of the person: over a
third of feedback interventions make performance worse, mostly when they turn
attention from the task to the self (Kluger & DeNisi; DOMAIN.md §4).

Privacy: feedback text goes to its sender (preview, confirmation) and its
recipient, and nowhere else — no third person, no log line. Only kudos the
giver chose to post, and whose recipient does not prefer private recognition,
reach the team channel.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key
from sqlmodel import col

from dialogs.common.agenda import discuss_choice
from dialogs.common.manners import (
    Recipient,
    back_from_leave,
    budget_used,
    leave_days,
    on_leave,
    plan_unsolicited,
)
from dialogs.common.periods import local_datetime, week_label
from dialogs.common.wording import shorten
from dialogs.engine import COMMAND_ACTION, END, Dialog, State, Transition, Turn
from dialogs.engine.clock import tz
from dialogs.engine.errors import UserFacingError
from dialogs.engine.messages import Choice, Reply, TextInput
from storage import queries
from storage.models import CheckinAnswer, CheckinRun, FeedbackEntry, FeedbackRequest, Person, Team

log = logging.getLogger(__name__)

MAX_FEEDBACK = 2000  # characters of feedback (both answers together) or of one kudos
MAX_TOPIC = 300  # FeedbackRequest.topic
MAX_ASK = 5  # people asked in one request
REMIND_BEFORE = timedelta(hours=24)
DEADLINES: dict[str, tuple[timedelta, str]] = {
    "3d": (timedelta(days=3), "In 3 days"),
    "7d": (timedelta(days=7), "In a week"),
    "14d": (timedelta(days=14), "In two weeks"),
}
SKIP, KEEP, DONE = "__skip", "__keep", "__done"
EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
MAX_MARKS = 4  # combining marks stacked on one character before text counts as garbled

# The two questions of each kind of feedback: (what's going well, what would make the work go better).
# About the work and how it is done together — never a rating or a judgement of the person.
QUESTIONS: dict[str, tuple[str, str]] = {
    "upward": (
        "What's one thing about how you and {name} work together that's going well?",
        "What's one thing that would make your work go better — something {name} could clarify, provide or clear out of the way?",
    ),
    "downward": (
        "What's one thing about how you and {name} work together that's going well — a piece of work, a hand-off, a way of working?",
        "What's one thing that would make the work go better — something to try next, or something you could clarify or clear away?",
    ),
    "peer": (
        "What's one thing about how you and {name} work together that's going well?",
        "What's one thing that would make your work together go better?",
    ),
    "checkin": (
        "Looking at {name}'s check-in: what's one thing in that work that's going well?",
        "What's one thing that would make that work go better — something you could clarify, provide or clear away?",
    ),
    "requested": (
        "On “{topic}”: what's one thing about the work that's going well?",
        "On “{topic}”: what's one thing that would make the work go better?",
    ),
}
HEADINGS = ("Going well", "Would make the work go better")
KUDOS_QUESTION = (
    "What did {name} do? Name the specific piece of work and what it made possible — "
    "e.g. “untangled the release checklist, so Friday's deploy took ten minutes”."
)
TOPIC_QUESTION = (
    "What would you like feedback on? Name a piece of work or a way of working — "
    "e.g. *the Q3 planning doc* or *how I run our stand-ups*."
)


def prompt_texts() -> list[str]:
    """Every question Baton asks about someone's work here (for review and for the tests)."""
    return [q for pair in QUESTIONS.values() for q in pair] + [KUDOS_QUESTION, TOPIC_QUESTION]


# -- people ------------------------------------------------------------------------------------


def first(person: Person) -> str:
    return person.name.split(" ")[0] or person.name


def relation(me: Person, other: Person) -> str:
    """upward (to my manager), downward (to my report) or peer."""
    if me.manager_id is not None and me.manager_id == other.id:
        return "upward"
    if other.manager_id == me.id:
        return "downward"
    return "peer"


async def circle(session: AsyncSession, me: Person) -> list[Person]:
    """The people offered as buttons: my manager, my reports, my team (active, not me), in that order."""
    found: dict[int, Person] = {}
    if me.manager_id is not None:
        manager = await session.get(Person, me.manager_id)
        if manager is not None and manager.active:
            found[manager.id] = manager  # type: ignore[index]
    for person in await queries.reports_of(session, me.id):  # type: ignore[arg-type]
        found.setdefault(person.id, person)  # type: ignore[arg-type]
    if me.team_id is not None:
        rows = await session.execute(
            select(Person)
            .where(Person.team_id == me.team_id, Person.active.is_(True), Person.id != me.id)
            .order_by(Person.name)
        )
        for person in rows.scalars():
            found.setdefault(person.id, person)  # type: ignore[arg-type]
    found.pop(me.id, None)  # type: ignore[arg-type]
    return list(found.values())


def person_choices(me: Person, people: list[Person], limit: int = 8) -> tuple[Choice, ...]:
    def label(p: Person) -> str:
        kind = relation(me, p)
        return p.name + (" (your manager)" if kind == "upward" else " (reports to you)" if kind == "downward" else "")

    return tuple(Choice(label(p), p.email) for p in people[:limit])


async def find_person(turn: Turn, text: str, *, myself: str) -> Person:
    """The active person meant by an email (anyone in the organisation) or a name (someone in my circle).

    Raises UserFacingError for anything else; `myself` is the refusal when it's the person themselves.
    """
    raw = text.strip()
    if raw.startswith("<mailto:") and raw.endswith(">"):  # an email as Slack formats it
        raw = raw[len("<mailto:") : -1].split("|")[0]
    if "@" in raw:
        if not EMAIL.match(raw):
            raise UserFacingError("That doesn't look like an email address. Please type it like *name@example.com*.")
        person = await queries.person_by_email(turn.session, raw)
        if person is None or not person.active:
            hint = (
                "" if raw.isascii() else " It has characters that aren't plain letters — a look-alike letter, perhaps?"
            )
            raise UserFacingError(f"I don't know anyone with that email here.{hint} Check the spelling and try again.")
    else:
        wanted = " ".join(raw.split()).casefold()
        people = await circle(turn.session, turn.person)
        matches = [p for p in people if wanted and wanted in (p.name.casefold(), first(p).casefold())]
        if wanted in (turn.person.name.casefold(), first(turn.person).casefold()) and not matches:
            raise UserFacingError(myself)
        if len(matches) != 1:
            raise UserFacingError("I couldn't tell who that is. Pick someone from the buttons, or type their email.")
        person = matches[0]
    if person.id == turn.person.id:
        raise UserFacingError(myself)
    return person


def check_text(text: str) -> str:
    """Feedback or kudos text as typed, or UserFacingError for text with no words or garbled characters."""
    text = text.strip()
    if sum(ch.isalnum() for ch in text) < 2:
        raise UserFacingError(
            "I couldn't find any words in that. Could you say it in a sentence or two? Nothing was recorded yet."
        )
    run = 0
    for ch in text:
        run = run + 1 if unicodedata.combining(ch) else 0
        if run > MAX_MARKS:
            raise UserFacingError(
                "That text has a lot of stacked accent marks, so it may not show properly for the other person. "
                "Could you type it again in plain letters? Nothing was recorded yet."
            )
    if len(text) > MAX_FEEDBACK:
        raise UserFacingError(
            f"That's {len(text):,} characters; this takes up to {MAX_FEEDBACK:,}. Could you shorten it? Nothing was recorded yet."
        )
    return text


def compose(well: str | None, better: str | None) -> str:
    """The feedback as stored and delivered: the two answers under their headings."""
    return "\n\n".join(
        f"{heading}: {answer}" for heading, answer in zip(HEADINGS, (well, better), strict=True) if answer
    )


def delivered(
    header: str, text: str, sender: Person, entry_id: int, extra: str = "", *, recipient: Person | None = None
) -> Reply:
    """What the recipient gets: attributed text with Thank and Reply — and, for someone with a manager,
    "Discuss in our 1:1" (the 1:1 gets the fact of it; the words stay with the two people)."""
    choices = (Choice("Thank", f"feedback thank {entry_id}", "primary"), Choice("Reply", f"feedback {sender.email}"))
    if recipient is not None and recipient.manager_id is not None:
        choices += (discuss_choice(f"feedback:{entry_id}"),)
    return Reply(f"{header}\n\n{text}{extra}", choices=choices, action=COMMAND_ACTION)


# -- writing feedback: shared by `feedback` and answering a request ---------------------------


class _Compose(Dialog):
    """Two task-focused questions, a preview, then Send / Edit / Cancel.

    `turn.data` holds: to (recipient id), name (their first name), kind (FeedbackEntry.kind),
    variant (the QUESTIONS key), topic and request (for requested feedback), period (a check-in
    being responded to), well, better, editing.
    """

    def compose_states(self) -> dict[str, State]:
        return {
            "well": State(self.well_prompt, on_text=self.on_well, on_choice=self.on_well, max_length=MAX_FEEDBACK),
            "better": State(
                self.better_prompt, on_text=self.on_better, on_choice=self.on_better, max_length=MAX_FEEDBACK
            ),
            "preview": State(self.preview_prompt, on_choice=self.on_preview),
        }

    @staticmethod
    def address_to(turn: Turn, target: Person, kind: str, variant: str | None = None, **extra: Any) -> None:
        turn.data.update(
            to=target.id, name=first(target), kind=kind, variant=variant or kind, well=None, better=None, **extra
        )

    @staticmethod
    def _question(turn: Turn, index: int) -> str:
        d = turn.data
        return QUESTIONS[d["variant"]][index].format(name=d["name"], topic=shorten(d.get("topic") or "", 120))

    def _ask(self, turn: Turn, index: int, lead: str) -> Reply:
        d = turn.data
        field = ("well", "better")[index]
        text = lead + self._question(turn, index)
        choices = (Choice("Skip", SKIP),)
        if d.get("editing") and d.get(field):
            text += f"\n\nNow: “{shorten(d[field], 300)}”"
            choices = (Choice("Keep as it is", KEEP, "primary"), *choices)
        return Reply(text, choices=choices, input=TextInput("One specific thing…", MAX_FEEDBACK, True))

    def well_prompt(self, turn: Turn) -> Reply:
        lead = (
            ""
            if turn.data.get("editing")
            else (
                f"Two short questions about the work. Only {turn.data['name']} will see your answers, with your name on them.\n\n"
            )
        )
        return self._ask(turn, 0, lead)

    def better_prompt(self, turn: Turn) -> Reply:
        return self._ask(turn, 1, "")

    @staticmethod
    def _answer(turn: Turn, field: str, value: str) -> str | None:
        if value == KEEP or (value.casefold() == "keep" and turn.data.get(field)):
            return turn.data.get(field)
        if value == SKIP or value.casefold() == "skip":
            return None
        return check_text(value)

    async def on_well(self, turn: Turn, value: str) -> Transition:
        turn.data["well"] = self._answer(turn, "well", value)
        return "better"

    async def on_better(self, turn: Turn, value: str) -> Transition:
        better = self._answer(turn, "better", value)
        well = turn.data.get("well")
        if not well and not better:
            raise UserFacingError(
                "Both questions are skipped, so there's nothing to send yet. Answer this one, or type *cancel* to stop."
            )
        total = len(well or "") + len(better or "")
        if total > MAX_FEEDBACK:
            raise UserFacingError(
                f"Together your answers come to {total:,} characters; feedback holds up to {MAX_FEEDBACK:,}. "
                f"Could you shorten this one to about {max(MAX_FEEDBACK - len(well or ''), 0):,}? Nothing was recorded yet."
            )
        turn.data["better"] = better
        turn.data.pop("editing", None)
        return "preview"

    def header(self, turn: Turn) -> str:
        """The attribution line the recipient sees."""
        d, sender = turn.data, first(turn.person)
        if d.get("request"):
            return f"Feedback from {sender} on “{d.get('topic', '')}”, as you asked:"
        if d.get("period"):
            return f"Feedback from {sender} on your check-in for {week_label(d['period'])}:"
        return f"Feedback from {sender} about working together:"

    def preview_prompt(self, turn: Turn) -> Reply:
        body = compose(turn.data.get("well"), turn.data.get("better"))
        return preview_reply(turn.data["name"], f"{self.header(turn)}\n\n{body}")

    async def on_preview(self, turn: Turn, value: str) -> Transition:
        if value == "cancel":
            turn.say("Cancelled — nothing was sent.")
            return END
        if value == "edit":
            turn.data["editing"] = True
            return "well"
        if value != "send":
            return None
        return await self._deliver(turn)

    async def _deliver(self, turn: Turn) -> Transition:
        d = turn.data
        recipient = await turn.session.get(Person, d["to"])
        if recipient is None or not recipient.active:
            turn.say(f"{d['name']} isn't in Baton any more, so nothing was sent.")
            return END
        if d.get("request"):
            refusal = await claim_request(turn, d["request"], "answered")
            if refusal:
                turn.say(refusal + " Nothing was sent.")
                return END
        text = compose(d.get("well"), d.get("better"))
        entry = FeedbackEntry(
            from_id=turn.person.id,
            to_id=recipient.id,
            kind=d["kind"],
            request_id=d.get("request"),
            text=text,
            created_at=turn.now,
        )
        turn.session.add(entry)
        await turn.session.flush()
        assert entry.id is not None
        reply = delivered(self.header(turn), text, turn.person, entry.id, recipient=recipient)
        turn.tell(recipient, reply, key=f"feedback:{entry.id}")
        log.info("feedback entry %s queued (%s)", entry.id, entry.kind)  # ids only: never the text
        turn.say(f"Sent to {d['name']}. Only the two of you can see it.")
        return END


async def thank(turn: Turn, entry_id: str) -> Transition:
    """`feedback thank ID`: the recipient thanks the sender, once."""
    number = queries.as_id(entry_id)
    entry = await turn.session.get(FeedbackEntry, number) if number is not None else None
    if entry is None or entry.to_id != turn.person.id:
        raise UserFacingError("That feedback isn't addressed to you, or it no longer exists.")
    sender = await turn.session.get(Person, entry.from_id)
    name = first(sender) if sender else "them"
    result = await turn.session.execute(
        update(FeedbackEntry)
        .where(FeedbackEntry.id == entry.id, FeedbackEntry.thanked_at.is_(None))
        .values(thanked_at=turn.now)
    )
    if result.rowcount != 1:
        turn.say(f"You've already thanked {name} for that.")
        return END
    if sender is not None:
        what = "the kudos" if entry.kind == "kudos" else "your feedback"
        turn.tell(sender, f"{first(turn.person)} thanked you for {what}.", key=f"feedback-thanks:{entry.id}")
    turn.say(f"I've passed your thanks on to {name}.")
    return END


# -- `feedback` ------------------------------------------------------------------------------


class FeedbackDialog(_Compose):
    """`feedback [EMAIL [checkin]]`; buttons also send `feedback thank ID`, `feedback manager`, `feedback later`."""

    name = "feedback"
    title = "your feedback"
    commands = ("feedback",)
    summary = "Give feedback about the work to your manager, a report or a colleague."

    def __init__(self) -> None:
        self.first = "who"
        self.states = {
            "who": State(self.who_prompt, on_text=self.on_who, on_choice=self.on_who, max_length=254),
            **self.compose_states(),
        }

    async def begin(self, turn: Turn, args: str) -> Transition:
        words = args.split()
        if not words:
            return "who"
        head = words[0].casefold()
        if head == "thank" and len(words) == 2:
            return await thank(turn, words[1])
        if head in ("later", "not-now") and len(words) == 1:
            turn.say("No problem — type *feedback* whenever you like.")
            return END
        if head == "manager" and len(words) == 1:
            manager = await turn.session.get(Person, turn.person.manager_id) if turn.person.manager_id else None
            if manager is None or not manager.active:
                raise UserFacingError("I don't have a manager on record for you. Type *feedback* to pick someone else.")
            self.address_to(turn, manager, "upward")
            return "well"
        if len(words) >= 2 and words[-1].casefold() == "checkin":
            return await self._on_checkin(turn, " ".join(words[:-1]))
        target = await find_person(turn, " ".join(words), myself=self._myself)
        self.address_to(turn, target, relation(turn.person, target))
        return "well"

    _myself = "That's you — feedback here goes to someone else. Pick a colleague, or type their email."

    async def who_prompt(self, turn: Turn) -> Reply:
        people = await circle(turn.session, turn.person)
        if not people:
            return Reply(
                "Who would you like to give feedback to? Type their email.",
                input=TextInput("name@example.com", 254, False),
            )
        return Reply(
            "Who would you like to give feedback to? Pick someone, or type their email.",
            choices=person_choices(turn.person, people),
            input=TextInput("name@example.com", 254, False),
        )

    async def on_who(self, turn: Turn, value: str) -> Transition:
        target = await find_person(turn, value, myself=self._myself)
        self.address_to(turn, target, relation(turn.person, target))
        return "well"

    async def _on_checkin(self, turn: Turn, who: str) -> Transition:
        """A manager responding to a report's latest check-in: its summary first, then the questions."""
        target = await find_person(turn, who, myself=self._myself)
        if target.manager_id != turn.person.id:
            raise UserFacingError(
                f"Responding to a check-in is for {first(target)}'s manager. "
                f"You can still give {first(target)} feedback with *feedback {target.email}*."
            )
        run = (
            (
                await turn.session.execute(
                    select(CheckinRun)
                    .where(CheckinRun.person_id == target.id, CheckinRun.status == "answered")
                    .order_by(CheckinRun.answered_at.desc(), CheckinRun.id.desc())
                    .limit(1)
                )
            )
            .scalars()
            .first()
        )
        if run is None:
            turn.say(f"{first(target)} hasn't answered a check-in yet, so this is feedback about working together.")
            self.address_to(turn, target, "downward")
            return "well"
        answers = {
            a.question_id: a
            for a in (await turn.session.execute(select(CheckinAnswer).where(CheckinAnswer.run_id == run.id))).scalars()
        }
        turn.say(checkin_summary(target, run, answers))
        self.address_to(turn, target, "downward", "checkin", period=run.period)
        return "well"


def checkin_summary(person: Person, run: CheckinRun, answers: dict[str, CheckinAnswer]) -> str:
    """A short summary of a check-in, for its person's manager."""
    lines = []
    for question in run.questions:
        answer = answers.get(question["id"])
        if answer is None:
            continue
        if answer.text is not None:
            shown = shorten(" ".join(answer.text.split()), 160)
        elif answer.number is None:
            continue
        elif question.get("kind") == "rating":
            shown = f"{answer.number:g} of 5"
        else:
            shown = f"{answer.number:g} {question.get('unit', '')}".strip()
        lines.append(f"• {question['prompt']} — {shown}")
    body = "\n".join(lines) if lines else "(every question was skipped)"
    return f"{first(person)}'s check-in for {week_label(run.period)}:\n{body}"


# -- `ask`: feedback requests ----------------------------------------------------------------


def request_reply(request: FeedbackRequest, requester: Person, responder: Person, *, reminder: bool = False) -> Reply:
    """The request as the responder sees it: who, on what, by when in their own time zone."""
    when = request.deadline.astimezone(tz(responder.timezone))
    lead = "A reminder: the deadline is a day away. " if reminder else ""
    return Reply(
        f"{lead}{requester.name} asks for your feedback on “{request.topic}”, by {when:%A %d %B, %H:%M} your time. "
        f"Two short questions about the work; only {first(requester)} will see your answer, with your name on it.",
        choices=(
            Choice("Give feedback", f"ask answer {request.id}", "primary"),
            Choice("Decline", f"ask decline {request.id}"),
        ),
        action=COMMAND_ACTION,
    )


def closed_reason(request: FeedbackRequest, requester: Person | None, now: datetime) -> str | None:
    """Why a request can no longer be answered or declined, or None while it's open."""
    name = first(requester) if requester else "them"
    again = f" You can still send feedback with *feedback {requester.email}*." if requester and requester.active else ""
    if request.status == "answered":
        return f"You've already answered {name}'s request on “{request.topic}” — thanks."
    if request.status == "declined":
        return f"You declined {name}'s request on “{request.topic}” earlier, so I've left it at that.{again}"
    if request.status == "expired" or now >= request.deadline:
        return f"The deadline for {name}'s request on “{request.topic}” has passed.{again}"
    return None


async def claim_request(turn: Turn, request_id: int, status: str) -> str | None:
    """Move my open request to `status`, exactly once (double clicks, two replicas); else the reason it's closed."""
    result = await turn.session.execute(
        update(FeedbackRequest)
        .where(
            FeedbackRequest.id == request_id,
            FeedbackRequest.responder_id == turn.person.id,
            FeedbackRequest.status == "open",
            FeedbackRequest.deadline > turn.now,
        )
        .values(status=status)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        return None
    request = await turn.session.get(FeedbackRequest, request_id)
    if request is None:
        return "That request no longer exists."
    await turn.session.refresh(request)
    return (
        closed_reason(request, await turn.session.get(Person, request.requester_id), turn.now)
        or "That request is closed."
    )


class RequestDialog(_Compose):
    """`ask [TOPIC]`; buttons send `ask answer ID` and `ask decline ID`."""

    name = "ask"
    title = "your feedback request"
    commands = ("ask",)
    summary = "Ask up to 5 colleagues for feedback on a piece of work, by a deadline."

    def __init__(self) -> None:
        self.first = "topic"
        self.states = {
            "topic": State(self.topic_prompt, on_text=self.on_topic, max_length=MAX_TOPIC),
            "who": State(self.who_prompt, on_text=self.on_who, on_choice=self.on_who, max_length=1000),
            "deadline": State(self.deadline_prompt, on_choice=self.on_deadline),
            "confirm": State(self.confirm_prompt, on_choice=self.on_confirm),
            **self.compose_states(),
        }

    _myself = "That's you — pick a colleague, or type their email."

    async def begin(self, turn: Turn, args: str) -> Transition:
        words = args.split()
        if len(words) == 2 and words[0].casefold() in ("answer", "decline"):
            request_id = queries.as_id(words[1])
            if request_id is None:
                raise UserFacingError("That request no longer exists.")
            if words[0].casefold() == "answer":
                return await self._answer_request(turn, request_id)
            return await self._decline(turn, request_id)
        turn.data["asked"] = []
        if args:
            return await self.on_topic(turn, args)
        return "topic"

    # -- asking ----------------------------------------------------------------------------

    def topic_prompt(self, turn: Turn) -> Reply:
        return Reply(TOPIC_QUESTION, input=TextInput("The Q3 planning doc", MAX_TOPIC, False))

    async def on_topic(self, turn: Turn, text: str) -> Transition:
        topic = " ".join(check_text(text).split())
        if len(topic) > MAX_TOPIC:
            raise UserFacingError(
                f"Please keep the topic to {MAX_TOPIC} characters; the details can go in a conversation."
            )
        turn.data["topic"] = topic
        return "who"

    async def who_prompt(self, turn: Turn) -> Reply:
        asked = turn.data.get("asked", [])
        chosen = {a[0] for a in asked}
        people = [p for p in await circle(turn.session, turn.person) if p.id not in chosen]
        so_far = f"\nSo far: {', '.join(a[1] for a in asked)}." if asked else ""
        done = (Choice("Done", DONE, "primary"),) if asked else ()
        return Reply(
            f"Whom should I ask? Pick up to {MAX_ASK} people, or type their emails.{so_far}",
            choices=person_choices(turn.person, people, 8) + done,
            input=TextInput("name@example.com, name2@example.com", 1000, False),
        )

    async def on_who(self, turn: Turn, value: str) -> Transition:
        asked = [list(a) for a in turn.data.get("asked", [])]
        if value == DONE or value.strip().casefold() == "done":
            if not asked:
                raise UserFacingError("Pick at least one person first.")
            return "deadline"
        tokens = [t for t in re.split(r"[,;\s]+", value) if t] if "@" in value else [value]
        for token in tokens:
            person = await find_person(turn, token, myself=self._myself)
            if any(a[0] == person.id for a in asked):
                continue
            if len(asked) >= MAX_ASK:
                raise UserFacingError(
                    f"You can ask up to {MAX_ASK} people at a time. Press *Done* to go on with those you picked."
                )
            asked.append([person.id, first(person)])
        turn.data["asked"] = asked
        if len(asked) >= MAX_ASK:
            turn.say(f"That's {MAX_ASK} — the most at a time.")
            return "deadline"
        return "who"

    def deadline_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "By when would you like the answers?",
            choices=tuple(
                Choice(label, key, "primary" if key == "7d" else None) for key, (_, label) in DEADLINES.items()
            ),
        )

    async def on_deadline(self, turn: Turn, value: str) -> Transition:
        if value not in DEADLINES:
            return None
        turn.data["deadline"] = value
        return "confirm"

    def confirm_prompt(self, turn: Turn) -> Reply:
        names = [a[1] for a in turn.data["asked"]]
        who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        due = (turn.now + DEADLINES[turn.data["deadline"]][0]).astimezone(turn.local_now.tzinfo)
        return Reply(
            f"I'll ask {who} for feedback on “{turn.data['topic']}”, by {due:%A %d %B, %H:%M}. Each gets two short questions "
            "about the work, and their answers come to you alone, with their names. Send the request?",
            choices=(Choice("Send", "send", "primary"), Choice("Cancel", "cancel", "danger")),
        )

    async def on_confirm(self, turn: Turn, value: str) -> Transition:
        if value == "cancel":
            turn.say("Cancelled — nobody was asked.")
            return END
        if value != "send":
            return None
        deadline = turn.now + DEADLINES[turn.data["deadline"]][0]
        sent = []
        for person_id, name in turn.data["asked"]:
            responder = await turn.session.get(Person, person_id)
            if responder is None or not responder.active:
                continue
            request = FeedbackRequest(
                requester_id=turn.person.id,
                responder_id=responder.id,
                topic=turn.data["topic"],
                deadline=deadline,
                created_at=turn.now,
            )
            turn.session.add(request)
            await turn.session.flush()
            turn.tell(responder, request_reply(request, turn.person, responder), key=f"feedback-request:{request.id}")
            sent.append(name)
        if not sent:
            turn.say("Nobody you picked is in Baton any more, so nobody was asked.")
            return END
        turn.say(
            f"Asked {', '.join(sent)}. I'll remind them a day before the deadline, and tell you if it passes without an answer."
        )
        return END

    # -- answering -------------------------------------------------------------------------

    async def _mine(self, turn: Turn, request_id: int) -> tuple[FeedbackRequest, Person | None]:
        request = await turn.session.get(FeedbackRequest, request_id)
        if request is None or request.responder_id != turn.person.id:
            raise UserFacingError("That request isn't addressed to you, or it no longer exists.")
        return request, await turn.session.get(Person, request.requester_id)

    async def _answer_request(self, turn: Turn, request_id: int) -> Transition:
        request, requester = await self._mine(turn, request_id)
        reason = closed_reason(request, requester, turn.now)
        if reason:
            turn.say(reason)
            return END
        if requester is None or not requester.active:
            turn.say("The person who asked isn't in Baton any more, so there's no one to send feedback to.")
            return END
        self.address_to(turn, requester, "requested", "requested", topic=request.topic, request=request.id)
        return "well"

    async def _decline(self, turn: Turn, request_id: int) -> Transition:
        request, requester = await self._mine(turn, request_id)
        refusal = await claim_request(turn, request.id, "declined")
        if refusal:
            turn.say(refusal)
            return END
        if requester is not None:
            turn.tell(
                requester,
                f"{first(turn.person)} can't give feedback on “{request.topic}” this time.",
                key=f"feedback-request-declined:{request.id}",
            )
        turn.say(f"OK — I've let {first(requester) if requester else 'them'} know, without any more detail.")
        return END


# -- `kudos` -----------------------------------------------------------------------------------


def specific(text: str) -> bool:
    """Roughly: names a piece of work rather than just 'great job'."""
    return len(text.split()) >= 3 or sum(ch.isalnum() for ch in text) >= 12


def team_channel(team: Team | None) -> tuple[str, dict[str, Any]] | None:
    """(platform, address) of a team's channel when the team posts to one, else None."""
    if team is None or not team.broadcast or not (team.broadcast_address or {}).get("channel"):
        return None
    address = dict(team.broadcast_address)
    return address.pop("platform", "local"), address


# "to aiko for the failover test", "aiko@example.com", "Aiko Tanaka for …"
KUDOS_ARGS = re.compile(r"^(?:to\s+)?(?P<who>.+?)(?:\s+for\s+(?P<what>.+))?$", re.IGNORECASE | re.DOTALL)


class KudosDialog(Dialog):
    """`kudos [EMAIL]`: recognition for a specific piece of work, where the recipient likes it."""

    name = "kudos"
    title = "your kudos"
    commands = ("kudos",)
    summary = "Recognise someone for a specific piece of work."

    def __init__(self) -> None:
        self.first = "who"
        self.states = {
            "who": State(self.who_prompt, on_text=self.on_who, on_choice=self.on_who, max_length=254),
            "what": State(self.what_prompt, on_text=self.on_what, max_length=MAX_FEEDBACK),
            "where": State(self.where_prompt, on_choice=self.on_where),
            "preview": State(self.preview_prompt, on_choice=self.on_preview),
        }

    _myself = "Kudos go to someone else — pick a colleague, or type their email."

    async def begin(self, turn: Turn, args: str) -> Transition:
        """`kudos`, `kudos aiko`, `kudos to aiko@example.com for the failover test`."""
        said = KUDOS_ARGS.match(args.strip())
        if not args.strip() or said is None:
            return "who"
        try:
            await self.on_who(turn, said["who"])
        except UserFacingError as exc:
            turn.say(exc.message)  # then the question, with the buttons it speaks of
            return "who"
        if not said["what"]:
            return "what"
        try:
            return await self.on_what(turn, said["what"])
        except UserFacingError as exc:
            turn.say(exc.message)
            return "what"

    async def who_prompt(self, turn: Turn) -> Reply:
        people = await circle(turn.session, turn.person)
        return Reply(
            "Whose work would you like to recognise? Pick someone, or type their email.",
            choices=person_choices(turn.person, people),
            input=TextInput("name@example.com", 254, False),
        )

    async def on_who(self, turn: Turn, value: str) -> Transition:
        target = await find_person(turn, value, myself=self._myself)
        turn.data.update(to=target.id, name=first(target))
        return "what"

    def what_prompt(self, turn: Turn) -> Reply:
        return Reply(
            KUDOS_QUESTION.format(name=turn.data["name"]),
            input=TextInput("What they did, and what it made possible…", MAX_FEEDBACK, True),
        )

    async def _recipient(self, turn: Turn) -> tuple[Person, tuple[str, dict[str, Any]] | None]:
        recipient = await turn.session.get(Person, turn.data["to"])
        if recipient is None or not recipient.active:
            raise UserFacingError(f"{turn.data['name']} isn't in Baton any more. Type *cancel* to stop.")
        team = await turn.session.get(Team, recipient.team_id) if recipient.team_id else None
        return recipient, team_channel(team)

    async def on_what(self, turn: Turn, text: str) -> Transition:
        text = check_text(text)
        if not specific(text):
            raise UserFacingError(
                f"Kudos land best when they name the work. What did {turn.data['name']} do, and what did it make possible?"
            )
        turn.data["text"] = text
        recipient, channel = await self._recipient(turn)
        if channel is not None and recipient.recognition != "private":
            return "where"
        turn.data["public"] = False
        if channel is not None:
            turn.say(f"{first(recipient)} prefers to be recognised in private, so I'll send this to them directly.")
        return "preview"

    async def where_prompt(self, turn: Turn) -> Reply:
        recipient, _ = await self._recipient(turn)
        name = first(recipient)
        likes = f"{name} likes recognition in public. " if recipient.recognition == "public" else ""
        return Reply(
            f"{likes}Shall I post it in the team channel too, or send it only to {name}?",
            choices=(
                Choice("Post in the team channel", "public", "primary" if recipient.recognition == "public" else None),
                Choice(f"Only to {name}", "private"),
            ),
        )

    async def on_where(self, turn: Turn, value: str) -> Transition:
        if value not in ("public", "private"):
            return None
        turn.data["public"] = value == "public"
        return "preview"

    def preview_prompt(self, turn: Turn) -> Reply:
        where = "\n\nIt will also be posted in the team channel." if turn.data.get("public") else ""
        return preview_reply(turn.data["name"], f"Kudos from {first(turn.person)}: {turn.data['text']}{where}")

    async def on_preview(self, turn: Turn, value: str) -> Transition:
        if value == "cancel":
            turn.say("Cancelled — nothing was sent.")
            return END
        if value == "edit":
            return "what"
        if value != "send":
            return None
        recipient, channel = await self._recipient(turn)
        public = bool(turn.data.get("public"))
        if public and (channel is None or recipient.recognition == "private"):
            public = False  # the preference or the channel changed since the choice: privacy wins
            turn.say(f"{first(recipient)} prefers recognition in private, so I sent it to them directly.")
        text = turn.data["text"]
        entry = FeedbackEntry(
            from_id=turn.person.id, to_id=recipient.id, kind="kudos", text=text, public=public, created_at=turn.now
        )
        turn.session.add(entry)
        await turn.session.flush()
        assert entry.id is not None
        extra = "\n\n(Also posted in the team channel.)" if public else ""
        earlier = await turn.session.scalar(
            select(func.count())
            .select_from(FeedbackEntry)
            .where(
                col(FeedbackEntry.to_id) == recipient.id,
                col(FeedbackEntry.kind) == "kudos",
                col(FeedbackEntry.id) != entry.id,
            )
        )
        if recipient.recognition is None and not earlier:  # asked once, with their first kudos
            extra += "\n\nHow do you like to be recognised — in private or in public? Tell me under *settings* → Recognition."
        turn.tell(
            recipient,
            delivered(f"Kudos from {first(turn.person)}:", text, turn.person, entry.id, extra, recipient=recipient),
            key=f"kudos:{entry.id}",
        )
        if public and channel is not None:
            platform, address = channel
            turn.post(
                platform,
                address,
                Reply(f"Kudos to {recipient.name} from {turn.person.name}: {text}"),
                key=f"kudos-post:{entry.id}",
            )
        log.info("kudos entry %s queued (public=%s)", entry.id, public)
        turn.say(f"Sent to {first(recipient)}" + (" and posted in the team channel." if public else "."))
        return END


# -- hooks for the check-in dialog and the Conductor -------------------------------------------


def preview_reply(recipient: str, body: str) -> Reply:
    """What the recipient will get, with Send / Edit / Cancel — shown before anything goes out."""
    return Reply(
        f"Here's what {recipient} will get:\n\n{body}\n\nSend it?",
        choices=(Choice("Send", "send", "primary"), Choice("Edit", "edit"), Choice("Cancel", "cancel", "danger")),
    )


def after_checkin(turn: Turn, run: CheckinRun, manager: Person | None = None) -> None:
    """After a person's first completed check-in of a period: an optional invitation to give their manager feedback.

    Nothing when the person has no manager. Synchronous, so it reads no table:
    the button names the manager ("Share feedback with Maya" → `feedback
    maya@…`) when the caller passes `manager` or it is still loaded in this
    turn's session; otherwise it says "your manager" and resolves them when
    pressed (`feedback manager`).
    """
    manager_id = turn.person.manager_id
    if manager_id is None:
        return
    if manager is None or manager.id != manager_id:
        manager = turn.session.identity_map.get(identity_key(Person, manager_id))
    if manager is not None and not manager.active:
        return
    who = first(manager) if manager is not None else "your manager"
    value = f"feedback {manager.email}" if manager is not None else "feedback manager"
    turn.say(
        Reply(
            f"While it's fresh, and only if you like: is there one thing about how you and {who} work together that's going "
            f"well, or one thing that would make your work go better? It goes to {who} alone, with your name on it.",
            choices=(Choice(f"Share feedback with {who}", value, "primary"), Choice("Not now", "feedback later")),
            action=COMMAND_ACTION,
        )
    )


Queue = Callable[[int, str, str, Reply, datetime, str], Awaitable[Any]]


def _stretched(
    request: FeedbackRequest, responder: Person | None, leaves: dict[int, list[tuple[date, date]]], now: datetime
) -> bool:
    """A request whose deadline finds the person asked away (leave, their calendar, a holiday) gets until the
    same time on their second day back. True when it was moved."""
    if responder is None or responder.id is None or not responder.active:
        return False
    zone = tz(responder.timezone)
    today = now.astimezone(zone).date()
    away = leaves.get(responder.id, [])
    if not on_leave(away, today):
        return False
    back = back_from_leave(away, today)
    at = request.deadline.astimezone(zone).time()
    request.deadline = local_datetime(back + timedelta(days=1), at, zone)
    return True


async def feedback_step(session: AsyncSession, now: datetime, queue: Queue) -> int:
    """One Conductor tick for feedback requests; returns how many messages were queued.

    * One reminder per open request in the 24 hours before its deadline (key
      `feedback-reminder:ID`), through quiet hours, leave and the weekly budget;
      a reminder that could only arrive after the deadline is not sent.
    * A deadline that finds the person asked away moves to the same time on their second day back.
    * Open requests past their deadline become "expired" and the requester is told
      once per batch asked together (key `feedback-expired:ID`, ID the batch's
      lowest open request). Quiet hours and leave delay that note — the request
      stays open meanwhile, but answers are refused after the deadline anyway;
      it doesn't count against the budget, since the requester asked for it.
    `queue(person_id, key, topic, reply, due_at, kind)` writes one outbox row, skipping known keys.
    """
    queued = 0
    due = list(
        (
            await session.execute(
                select(FeedbackRequest)
                .where(
                    FeedbackRequest.status == "open",
                    FeedbackRequest.reminded.is_(False),
                    FeedbackRequest.deadline > now,
                    FeedbackRequest.deadline <= now + REMIND_BEFORE,
                )
                .order_by(FeedbackRequest.id)
            )
        ).scalars()
    )
    expired = list(
        (
            await session.execute(
                select(FeedbackRequest)
                .where(FeedbackRequest.status == "open", FeedbackRequest.deadline <= now)
                .order_by(FeedbackRequest.id)
            )
        ).scalars()
    )
    if not due and not expired:
        return 0
    ids = {r.requester_id for r in due + expired} | {r.responder_id for r in due + expired}
    people = {p.id: p for p in (await session.execute(select(Person).where(Person.id.in_(ids)))).scalars()}
    leaves = await leave_days(session, ids, now.date() - timedelta(days=1), now.date() + timedelta(days=60))
    used = await budget_used(session, ids, now)

    def plan(person: Person, *, budget: bool = True) -> datetime | None:
        recipient = Recipient(person.id, person.timezone, person.quiet_start, person.quiet_end)  # type: ignore[arg-type]
        kind = "reminder" if budget else "notice"  # a request's reminder is a nudge; its outcome is owed
        return plan_unsolicited(
            recipient, now, leaves=leaves.get(person.id, []), used=used.get(person.id, 0), kind=kind
        ).due_at

    for request in due:
        responder, requester = people.get(request.responder_id), people.get(request.requester_id)
        if responder is None or requester is None or not responder.active:
            continue
        when = plan(responder)
        if when is None or when >= request.deadline:
            continue  # held (leave, budget) — tried again at the next tick — or too late to help
        if not await _mark(session, request.id, FeedbackRequest.reminded.is_(False), reminded=True):
            continue  # another tick got there first
        used[responder.id] = used.get(responder.id, 0) + 1
        reply = request_reply(request, requester, responder, reminder=True)
        await queue(responder.id, f"feedback-reminder:{request.id}", "feedback-reminder", reply, when, "reminder")
        queued += 1

    batches: dict[tuple[int, str, datetime], list[FeedbackRequest]] = defaultdict(list)
    for request in expired:
        if _stretched(request, people.get(request.responder_id), leaves, now):
            continue  # the colleague asked is away: the deadline moves past their return instead
        batches[(request.requester_id, request.topic, request.deadline)].append(request)
    for (requester_id, topic, deadline), batch in batches.items():
        requester = people.get(requester_id)
        when = plan(requester, budget=False) if requester is not None and requester.active else None
        if requester is not None and requester.active and when is None:
            continue  # on leave: told when back; the deadline already stops answers
        closed = [r for r in batch if await _mark(session, r.id, FeedbackRequest.status == "open", status="expired")]
        if not closed or when is None:
            continue
        siblings = (
            await session.execute(
                select(FeedbackRequest).where(
                    FeedbackRequest.requester_id == requester_id, FeedbackRequest.topic == topic
                )
            )
        ).scalars()
        together = [r for r in siblings if r.deadline == deadline]
        answered = sum(r.status == "answered" for r in together)
        missing = [first(people[r.responder_id]) for r in closed if r.responder_id in people]
        names = (
            missing[0]
            if len(missing) == 1
            else ", ".join(missing[:-1]) + " and " + missing[-1]
            if missing
            else "nobody"
        )
        reply = Reply(
            f"Your request for feedback on “{topic}” has reached its deadline: {answered} of {len(together)} answered. "
            f"{names} didn't get to it in time — a quick word in person may still help."
        )
        await queue(
            requester.id, f"feedback-expired:{min(r.id for r in batch)}", "feedback-expired", reply, when, "notice"
        )  # type: ignore[union-attr]
        queued += 1
    return queued


async def _mark(session: AsyncSession, request_id: int | None, condition: Any, **values: Any) -> bool:
    """Update one request only while `condition` holds; True when this call changed it (exactly once across replicas)."""
    result = await session.execute(
        update(FeedbackRequest)
        .where(FeedbackRequest.id == request_id, condition)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1
