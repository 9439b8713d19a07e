"""`1:1`: the conversation where a manager and a report act on the week.

Every manager–report pair has a rhythm (dialogs/common/cadence.py); the agenda builds itself the day
before (dialogs/common/agenda.py, sent by the scheduler), and either side adds talking points at any
time. After the 1:1, "How did it go?" takes shared notes, action items (owner, due date) and a private
note only its author sees; the pair may choose to ask the report too. Changing the rhythm, or who is
asked, is a proposal the other side confirms.

    1:1                       the next 1:1 and what you can do
    1:1 agenda | add TEXT     the agenda; a talking point
    1:1 invite                a calendar invitation (.ics) for the rhythm
    1:1 time                  propose another day, time or frequency
    1:1 ask-report on|off     propose asking the report "How did it go?" too (the other side confirms)
    1:1 notes                 record how the last one went
    1:1 actions               your open action items
    1:1 with NAME …           pick the pair, for a manager of several reports
"""

from __future__ import annotations

import re
import secrets
from datetime import date, timedelta

from sqlalchemy import select
from sqlmodel import col

from dialogs.common import agenda as ag
from dialogs.common.cadence import DAYS, EVERY, LENGTHS, Cadence, first_anchor, local_label, next_slot
from dialogs.common.invite import invite_link
from dialogs.common.wording import shorten
from dialogs.engine import END, Dialog, State, Transition, Turn
from dialogs.engine.clock import tz
from dialogs.engine.contract import COMMAND_ACTION
from dialogs.engine.errors import UserFacingError
from dialogs.engine.messages import Card, Choice, Reply, TextInput
from storage.models import (
    ActionItem,
    CheckinAnswer,
    CheckinRun,
    FeedbackEntry,
    Goal,
    Meeting,
    MeetingNote,
    OneOnOne,
    Person,
    TalkingPoint,
)
from storage.queries import as_int

MAX_POINT = 1000  # characters of a talking point, note or action item
MAX_NOTES = 4000  # characters of shared or private notes
MAX_SHARED = MAX_NOTES * 2 + 100  # a 1:1's shared notes together: both people's, with their names
AGENDA_BUTTONS = 10  # item buttons on one agenda card; "More items" shows the next ten as their own card
REF = re.compile(r"^(pair|meeting|action|point|page|proposal):(\d{1,9})$")  # ids fit a 32-bit integer column
DISCUSS_REF = re.compile(r"^(checkin:\d{1,9}:[\w-]{1,32}|goal:\d{1,9}|feedback:\d{1,9})$")
RECORDABLE = ("planned", "held", "skipped", "unrecorded")  # statuses of a 1:1 that took place (or should have)
HHMM = re.compile(r"^([01]?\d|2[0-3])[:.h]([0-5]\d)$")
NO_PAIR = (
    "You don't have a 1:1 with anyone yet: I set one up for every manager and each direct report. "
    "If your manager is missing, ask an admin to add them (*baton org import*)."
)


class OneOnOneDialog(Dialog):
    name = "oneonone"
    title = "your 1:1"
    commands = ("1:1", "1on1", "one-on-one", "oneonone")
    summary = "Your 1:1s: the agenda, talking points, notes, action items and the rhythm."

    def __init__(self, public_url: str = "http://127.0.0.1:3978") -> None:
        self.public_url = public_url.rstrip("/")
        self.first = "menu"
        self.states = {
            "pick": State(self.pick_prompt, on_choice=self.on_pick),
            "menu": State(self.menu_prompt, on_choice=self.on_menu),
            "agenda": State(self.agenda_prompt, on_choice=self.on_agenda),
            "item": State(self.item_prompt, on_choice=self.on_item),
            "note": State(self.note_prompt, on_text=self.on_note, max_length=MAX_POINT),
            "add": State(self.add_prompt, on_text=self.on_add, max_length=MAX_POINT),
            "day": State(self.day_prompt, on_choice=self.on_day),
            "time": State(self.time_prompt, on_text=self.on_time, max_length=10),
            "every": State(self.every_prompt, on_choice=self.on_every),
            "length": State(self.length_prompt, on_choice=self.on_length),
            "held": State(self.held_prompt, on_choice=self.on_held),
            "shared": State(self.shared_prompt, on_text=self.on_shared, on_choice=self.on_shared, max_length=MAX_NOTES),
            "action": State(self.action_prompt, on_text=self.on_action, on_choice=self.on_action, max_length=MAX_POINT),
            "owner": State(self.owner_prompt, on_choice=self.on_owner),
            "due": State(self.due_prompt, on_text=self.on_due, on_choice=self.on_due, max_length=40),
            "private": State(
                self.private_prompt, on_text=self.on_private, on_choice=self.on_private, max_length=MAX_NOTES
            ),
            "actions": State(self.actions_prompt, on_choice=self.on_actions),
        }

    # -- starting ------------------------------------------------------------------------------------

    async def begin(self, turn: Turn, args: str) -> Transition:
        words = args.split()
        sub = words.pop(0).casefold() if words else ""
        rest = _after_word(args.strip())  # the typed text as written, line breaks and all
        refs = {m.group(1): int(m.group(2)) for w in words if (m := REF.match(w))}
        words = [w for w in words if not REF.match(w)]
        if sub == "actions":
            return "actions"
        if sub in ("done-action", "later-action") and "action" in refs:
            return await self._action_button(turn, sub, refs["action"])
        if sub == "discuss":
            return await self._discuss(turn, words)
        if sub == "point" and "point" in refs:
            point = await turn.session.get(TalkingPoint, refs["point"])
            if point is None:
                raise UserFacingError("That item is no longer on the agenda. *1:1 agenda* shows the current one.")
            pair = await self._pair(turn, point.pair_id)
            turn.data.update(pair=pair.id, point=point.id)
            return "item"
        await ag.ensure_pairs(turn.session, turn.now, only=turn.person.id)
        if "meeting" in refs:
            meeting = await turn.session.get(Meeting, refs["meeting"])
            refs["pair"] = meeting.pair_id if meeting is not None else 0
        pairs = await ag.pairs_of(turn.session, turn.person)
        if not pairs:
            raise UserFacingError(NO_PAIR)
        if sub == "with" and words:
            chosen = _named(pairs, words[0])
            if chosen is None:
                raise UserFacingError("I couldn't find a 1:1 with them. *1:1* lists yours.")
            sub, words = "menu", []
        elif "pair" in refs:
            chosen = next((p for p in pairs if p[0].id == refs["pair"]), None)
            if chosen is None:
                raise UserFacingError("That 1:1 isn't one of yours any more. Type *1:1* to see yours.")
        elif len(pairs) == 1:
            chosen = pairs[0]
        else:
            chosen = _named(pairs, words[0]) if words else None
            if chosen is not None:
                words, rest = words[1:], _after_word(rest)
        text = rest if words and not refs else " ".join(words)
        if len(text) > MAX_POINT:
            raise UserFacingError(
                f"That talking point is {len(text):,} characters; one takes up to {MAX_POINT:,}. "
                "Could you shorten it? Nothing was added yet."
            )
        then = {
            "": "menu",
            "menu": "menu",
            "agenda": "agenda",
            "add": "add",
            "invite": "invite",
            "ics": "invite",
            "calendar": "invite",
            "time": "day",
            "rhythm": "day",
            "change": "day",
            "notes": "held",
            "record": "held",
            "skipped": "skipped",
            "confirm": "confirm",
            "decline": "decline",
            "ask-report": "ask-report",
        }.get(sub)
        if then is None:
            raise UserFacingError(
                "I know *1:1*, *1:1 agenda*, *1:1 add …*, *1:1 invite*, *1:1 time*, *1:1 notes*, *1:1 actions* "
                "and *1:1 ask-report on* (or *off*)."
            )
        turn.data.update(
            then=then, text=text, meeting=refs.get("meeting"), page=refs.get("page", 1), proposal=refs.get("proposal")
        )
        if chosen is None:
            return "pick"
        return await self._go(turn, chosen[0])

    async def _go(self, turn: Turn, pair: OneOnOne) -> Transition:
        turn.data["pair"] = pair.id
        then, text = turn.data.pop("then", "menu"), turn.data.pop("text", "")
        if then == "add" and text:
            await self._add_point(turn, pair, text, "typed", None)
            return END
        if then == "invite":
            turn.say(await self._invite(turn, pair))
            return END
        if then in ("confirm", "decline"):
            await self._answer_proposal(turn, pair, then == "confirm", turn.data.pop("proposal", None))
            return END
        if then == "ask-report":
            wanted = {"on": True, "yes": True, "off": False, "no": False}.get(text.casefold(), not pair.ask_report)
            await self._propose_ask_report(turn, pair, wanted)
            return END
        if then in ("held", "skipped") and not may_record(pair, turn.person):
            await self._not_yours_to_record(turn, pair, then == "skipped")
            return END
        if then == "skipped":
            await self._record_skip(turn, pair)
            return END
        if then == "held":
            return await self._start_record(turn)
        return str(then)

    async def _not_yours_to_record(self, turn: Turn, pair: OneOnOne, skip: bool) -> None:
        manager = await _person(turn, pair.manager_id)
        turn.say(
            f"{ag.first_name(manager)} records how your 1:1s went"
            + (", so I left it as it was." if skip else ".")
            + " You can add talking points (*1:1 add …*) any time; your action items are under *1:1 actions*."
        )

    async def pick_prompt(self, turn: Turn) -> Reply:
        pairs = await ag.pairs_of(turn.session, turn.person)
        choices = [Choice(ag.first_name(other), str(pair.id)) for pair, other in pairs[:10]]
        more = " (or type *1:1 with NAME*)" if len(pairs) > 10 else ""
        return Reply(f"Which 1:1?{more}", choices=(*choices, Choice("Cancel", "cancel")))

    async def on_pick(self, turn: Turn, value: str) -> Transition:
        if value == "cancel":
            return END
        pair = await self._pair(turn, _id(value) or 0)
        return await self._go(turn, pair)

    # -- the menu ------------------------------------------------------------------------------------

    async def menu_prompt(self, turn: Turn) -> Reply:
        pair, manager, other = await self._context(turn)
        meeting = await ag.upcoming(turn.session, pair, manager, turn.now)
        points = await ag.agenda_of(turn.session, meeting)
        loose = await self._loose_points(turn, pair)
        actions = (await ag.actions_by_pair(turn.session, [pair])).get(pair.id or 0, [])
        when = local_label(meeting.starts_at, turn.person.timezone)
        lines = [f"Your next 1:1 with {ag.first_name(other)}: *{when}* ({Cadence.of(pair).describe()})."]
        if meeting.moved:
            lines.append("It moved because someone is away on the usual day.")
        lines.append(f"{len(points) + len(loose)} item(s) on the agenda so far, {len(actions)} open action item(s).")
        choices = [
            Choice("See the agenda", "agenda", "primary"),
            Choice("Add a talking point", "add"),
            Choice("Calendar invitation", "invite"),
            Choice("Change the rhythm", "day"),
        ]
        if may_record(pair, turn.person):
            choices.append(Choice("Notes from the last one", "held"))
        report = "me" if pair.report_id == turn.person.id else ag.first_name(other)
        choices.append(
            Choice(f"Stop asking {report} after 1:1s", "ask-off")
            if pair.ask_report
            else Choice(f"Ask {report} too after 1:1s", "ask-on")
        )
        proposal = pair.proposal
        if proposal and proposal.get("by") != turn.person.id:
            if "ask_report" in proposal:
                lines.append(
                    f"{ag.first_name(other)} proposed: {ag.ask_words(bool(proposal['ask_report']), pair, turn.person, other)}."
                )
                confirm = "Confirm"
            else:
                lines.append(f"{ag.first_name(other)} proposed a new rhythm: {Cadence.from_dict(proposal).describe()}.")
                confirm = "Confirm the new rhythm"
            choices[:0] = [Choice(confirm, "confirm", "primary"), Choice("Keep the current one", "decline")]
        return Reply("\n".join(lines), choices=(*choices, Choice("Done", "done")))

    async def on_menu(self, turn: Turn, value: str) -> Transition:
        pair = await self._pair(turn, turn.data["pair"])
        if value == "done":
            return END
        if value == "invite":
            turn.say(await self._invite(turn, pair))
            return None
        if value in ("confirm", "decline"):
            await self._answer_proposal(turn, pair, value == "confirm")
            return None
        if value in ("ask-on", "ask-off"):
            await self._propose_ask_report(turn, pair, value == "ask-on")
            return END
        if value == "held":
            return await self._start_record(turn) if may_record(pair, turn.person) else None
        return value if value in ("agenda", "add", "day") else None

    # -- the agenda ----------------------------------------------------------------------------------

    async def agenda_prompt(self, turn: Turn) -> Reply:
        pair, manager, other = await self._context(turn)
        meeting = await ag.upcoming(turn.session, pair, manager, turn.now)
        points = await ag.agenda_of(turn.session, meeting) + await self._loose_points(turn, pair)
        actions = (await ag.actions_by_pair(turn.session, [pair])).get(pair.id or 0, [])
        return agenda_reply(
            turn.person,
            other,
            pair,
            meeting,
            points,
            actions,
            {manager.id or 0: ag.first_name(manager)}
            | {other.id or 0: ag.first_name(other), turn.person.id or 0: "you"},
            built=bool(points),
            today=turn.local_now.date(),
            page=turn.data.get("page", 1),
        )

    async def on_agenda(self, turn: Turn, value: str) -> Transition:
        kind, _, raw = value.partition(":")
        if value == "done":
            return END
        if value == "add":
            return "add"
        if kind == "page" and _id(raw):
            turn.data["page"] = _id(raw)
            return "agenda"
        if kind == "point" and _id(raw):
            await self._point(turn, _id(raw) or 0)
            turn.data["point"] = _id(raw)
            return "item"
        if kind == "action" and _id(raw):
            await self._finish_action(turn, _id(raw) or 0)
            return None
        return None

    async def item_prompt(self, turn: Turn) -> Reply:
        point = await self._point(turn, turn.data["point"])
        return Reply(
            shorten(point.text, 600),
            choices=(
                Choice("Mark discussed", "discussed", "primary"),
                Choice("Add a note", "note"),
                Choice("Back to the agenda", "back"),
            ),
        )

    async def on_item(self, turn: Turn, value: str) -> Transition:
        point = await self._point(turn, turn.data["point"])
        if value == "discussed":
            point.discussed_at = point.discussed_at or turn.now
            turn.session.add(point)
            turn.say("Marked as discussed.")
            return "agenda"
        if value == "note":
            return "note"
        return "agenda" if value == "back" else None

    def note_prompt(self, turn: Turn) -> Reply:
        return Reply("Your note on it (you both see it):", input=TextInput("", MAX_POINT))

    async def on_note(self, turn: Turn, text: str) -> Transition:
        point = await self._point(turn, turn.data["point"])
        point.note = text.strip()
        turn.session.add(point)
        turn.say("Noted.")
        return "agenda"

    def add_prompt(self, turn: Turn) -> Reply:
        return Reply("What would you like to talk about?", input=TextInput("", MAX_POINT))

    async def on_add(self, turn: Turn, text: str) -> Transition:
        pair = await self._pair(turn, turn.data["pair"])
        await self._add_point(turn, pair, text, "typed", None)
        return END

    async def _add_point(self, turn: Turn, pair: OneOnOne, text: str, source: str, ref: str | None) -> None:
        text = text.strip()
        if not text:
            raise UserFacingError("What would you like to talk about? Write it after *1:1 add*.")
        manager = await _person(turn, pair.manager_id)
        meeting = await ag.upcoming(turn.session, pair, manager, turn.now)
        built = bool(await ag.agenda_of(turn.session, meeting))
        turn.session.add(
            TalkingPoint(
                pair_id=pair.id or 0,
                author_id=turn.person.id,
                source=source,
                ref=ref,
                text=text,
                meeting_id=meeting.id if built else None,
                created_at=turn.now,
            )
        )
        other = await _person(turn, pair.report_id if pair.manager_id == turn.person.id else pair.manager_id)
        turn.say(
            f"Added to your 1:1 with {ag.first_name(other)} on {local_label(meeting.starts_at, turn.person.timezone)}."
        )

    async def _discuss(self, turn: Turn, words: list[str]) -> Transition:
        """`1:1 discuss REF`: put a check-in answer, a goal or a piece of feedback on the right 1:1."""
        ref = words[0] if words else ""
        if not DISCUSS_REF.match(ref):
            raise UserFacingError("I couldn't tell what to put on the agenda. Try *1:1 add …* with your own words.")
        kind, _, rest = ref.partition(":")
        owner_id, text, source = 0, "", kind
        if kind == "checkin":
            run_id, _, question_id = rest.partition(":")
            run = await turn.session.get(CheckinRun, int(run_id))
            answer = await turn.session.scalar(
                select(CheckinAnswer).where(
                    col(CheckinAnswer.run_id) == int(run_id), col(CheckinAnswer.question_id) == question_id
                )
            )
            if run is not None:
                owner_id = run.person_id
                prompt = next((q["prompt"] for q in run.questions if q["id"] == question_id), "Check-in")
                source = "blocker" if question_id == "blockers" else "checkin"
                shown = answer.text if answer and answer.text else "the whole check-in"
                text = f"{shorten(prompt, 80)} — {shorten(shown, 400)}"
        elif kind == "goal":
            goal = await turn.session.get(Goal, int(rest))
            if goal is not None and goal.owner_id is not None:
                owner_id, text = goal.owner_id, f"{shorten(goal.title, 200)}" + (f" ({goal.rag})" if goal.rag else "")
        else:
            entry = await turn.session.get(FeedbackEntry, int(rest))
            if entry is not None and turn.person.id in (entry.from_id, entry.to_id):
                owner_id = entry.to_id
                when = entry.created_at.astimezone(turn.local_now.tzinfo)
                # What was written stays between the two people; the 1:1 gets the fact, they bring the words.
                text = f"{entry.kind.capitalize()} received on {when:%a} {when.day} {when:%b}"
        pair = await self._pair_about(turn, owner_id)
        if pair is None or not text:
            raise UserFacingError("I can put that on a 1:1 only for you and your manager, or you and your report.")
        await self._add_point(turn, pair, text, source, ref)
        return END

    async def _pair_about(self, turn: Turn, owner_id: int) -> OneOnOne | None:
        """The pair a thing owned by `owner_id` belongs in: theirs with their manager, seen by either."""
        owner = await turn.session.get(Person, owner_id) if owner_id else None
        if owner is None or owner.manager_id is None or turn.person.id not in (owner.id, owner.manager_id):
            return None
        await ag.ensure_pairs(turn.session, turn.now, only=turn.person.id)
        return await turn.session.scalar(
            select(OneOnOne).where(
                col(OneOnOne.manager_id) == owner.manager_id,
                col(OneOnOne.report_id) == owner.id,
                col(OneOnOne.active).is_(True),
            )
        )

    # -- the invitation and the rhythm ---------------------------------------------------------------

    async def _invite(self, turn: Turn, pair: OneOnOne) -> Reply:
        manager = await _person(turn, pair.manager_id)
        link = invite_link(self.public_url, turn.sealer, pair)
        return Reply(
            f"Add your 1:1s to your calendar ({Cadence.of(pair).describe()}, {manager.name.split(' ')[0]}'s time, "
            f"{manager.timezone}): {link}\nI don't book anything myself; if the rhythm changes, I'll send a new link."
        )

    def day_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "Which day should your 1:1 be on?",
            choices=(*(Choice(day, str(i)) for i, day in enumerate(DAYS[:5])), Choice("Cancel", "cancel")),
        )

    async def on_day(self, turn: Turn, value: str) -> Transition:
        if value == "cancel":
            return END
        weekday = as_int(value, 0, 6)
        if weekday is None:
            return None
        turn.data["weekday"] = weekday
        return "time"

    async def time_prompt(self, turn: Turn) -> Reply:
        _, manager, _ = await self._context(turn)
        whose = "your" if manager.id == turn.person.id else f"{ag.first_name(manager)}'s"
        return Reply(
            f"At what time? On {whose} clock ({manager.timezone}), like *10:00*.", input=TextInput("10:00", 10, False)
        )

    async def on_time(self, turn: Turn, text: str) -> Transition:
        match = HHMM.match(text.strip())
        if match is None:
            raise UserFacingError("Please write the time like *10:00* or *14:30*.")
        turn.data["at"] = f"{int(match.group(1)):02d}:{match.group(2)}"
        return "every"

    def every_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "How often?",
            choices=tuple(Choice("Every week" if n == 1 else f"Every {n} weeks", str(n)) for n in EVERY),
        )

    async def on_every(self, turn: Turn, value: str) -> Transition:
        every = as_int(value, 1, 52)
        if every not in EVERY:
            return None
        turn.data["every"] = every
        return "length"

    def length_prompt(self, turn: Turn) -> Reply:
        return Reply("For how long?", choices=tuple(Choice(f"{n} minutes", str(n)) for n in LENGTHS))

    async def on_length(self, turn: Turn, value: str) -> Transition:
        minutes = as_int(value, 1, 600)
        if minutes not in LENGTHS or minutes is None:
            return None
        pair, _, other = await self._context(turn)
        wanted = Cadence(turn.data["every"], minutes, turn.data["weekday"], turn.data["at"])
        replaced = _propose(turn, pair, wanted.to_dict())
        _ask_to_confirm(
            turn,
            pair,
            other,
            f"{ag.first_name(turn.person)} proposes a new rhythm for your 1:1s: {wanted.describe()} "
            f"(now: {Cadence.of(pair).describe()}).",
            keep="Keep the current one",
        )
        turn.say(
            f"I've asked {ag.first_name(other)} to confirm: {wanted.describe()}.{_replaces(replaced, turn, other)}"
        )
        return END

    async def _propose_ask_report(self, turn: Turn, pair: OneOnOne, wanted: bool) -> None:
        """Propose asking the report "How did it go?" too (or no longer): like a new rhythm, the other side
        confirms — it changes what the report is asked and whose notes join the pair's, so both agree."""
        other = await _person(turn, pair.report_id if pair.manager_id == turn.person.id else pair.manager_id)
        if wanted == pair.ask_report:
            turn.say(f"That's how it is already: {ag.ask_words(wanted, pair, turn.person, other)}.")
            return
        replaced = _propose(turn, pair, {"ask_report": wanted})
        _ask_to_confirm(
            turn,
            pair,
            other,
            f"{ag.first_name(turn.person)} proposes that {ag.ask_words(wanted, pair, other, turn.person)}. "
            "Shared notes join the pair's; private notes stay with their author.",
            keep="Keep it as it is",
        )
        turn.say(
            f"I've asked {ag.first_name(other)} to confirm: {ag.ask_words(wanted, pair, turn.person, other)}."
            + _replaces(replaced, turn, other)
        )

    async def _answer_proposal(self, turn: Turn, pair: OneOnOne, confirm: bool, ref: int | None = None) -> None:
        """Confirm or decline the pair's pending proposal. `ref` (from a proposal message's button) must name
        it: a button from a proposal answered or replaced since never answers a different one."""
        proposal = pair.proposal
        if not proposal:
            turn.say(f"There's no change waiting. Your 1:1s stay {Cadence.of(pair).describe()}.")
            return
        if ref is not None and proposal.get("n") != ref:
            turn.say(
                "That proposal was replaced by a newer one, so I changed nothing. "
                "*1:1* shows what is waiting, with its own buttons."
            )
            return
        if proposal.get("by") == turn.person.id:
            turn.say("That's your own proposal; the other side confirms it. *1:1 time* proposes another.")
            return
        proposer = await _person(turn, int(proposal["by"]))
        pair.proposal = None
        if "ask_report" in proposal:
            if confirm:
                pair.ask_report = bool(proposal["ask_report"])
            turn.session.add(pair)
            turn.say(f"From now on, {ag.ask_words(pair.ask_report, pair, turn.person, proposer)}.")
            turn.tell(
                proposer,
                f"{ag.first_name(turn.person)} {'confirmed' if confirm else 'kept it as it was'}. "
                f"From now on, {ag.ask_words(pair.ask_report, pair, proposer, turn.person)}.",
                key=f"1on1-proposal-answer:{pair.id}:{proposal.get('n', turn.now.timestamp()):.0f}",
            )
            return
        if confirm:
            wanted = Cadence.from_dict(proposal)
            manager = await _person(turn, pair.manager_id)
            today = turn.now.astimezone(tz(manager.timezone)).date()
            pair.every_weeks, pair.minutes, pair.weekday, pair.at = (
                wanted.every_weeks,
                wanted.minutes,
                wanted.weekday,
                wanted.at,
            )
            pair.anchor = first_anchor(wanted.weekday, today - timedelta(days=2))
            await self._replan(turn, pair, manager)
            message = f"Your 1:1s are now {wanted.describe()}."
        else:
            message = f"Your 1:1s stay {Cadence.of(pair).describe()}."
        turn.session.add(pair)
        turn.say(message)
        turn.tell(
            proposer,
            f"{ag.first_name(turn.person)} {'confirmed' if confirm else 'kept the current rhythm'}. {message}",
            key=f"1on1-proposal-answer:{pair.id}:{proposal.get('n', turn.now.timestamp()):.0f}",
        )

    async def _replan(self, turn: Turn, pair: OneOnOne, manager: Person) -> None:
        """A new rhythm: the planned 1:1s of the old one give way; what was on their agenda moves along."""
        planned = (
            await turn.session.execute(
                select(Meeting).where(
                    col(Meeting.pair_id) == pair.id, col(Meeting.status) == "planned", col(Meeting.starts_at) > turn.now
                )
            )
        ).scalars()
        for meeting in planned:
            for point in await ag.agenda_of(turn.session, meeting):
                if point.author_id is not None:
                    point.meeting_id = None  # carried to the next agenda
                    turn.session.add(point)
                else:
                    await turn.session.delete(point)  # gathered afresh for the new date
            meeting.status = "replaced"
            turn.session.add(meeting)
        await turn.session.flush()
        first = next_slot(pair, manager.timezone, turn.now)
        if first <= turn.now + timedelta(hours=1):
            pair.anchor += timedelta(weeks=pair.every_weeks)

    # -- after the 1:1 ----------------------------------------------------------------------------------

    async def _start_record(self, turn: Turn) -> Transition:
        """Recording a 1:1 already recorded as held goes straight to its notes: whether the pair met is asked
        once (the report, asked too, adds to what the manager recorded)."""
        meeting = await self._meeting_to_record(turn)
        if meeting is None or meeting.status != "held":
            return "held"
        turn.data["meeting"] = meeting.id
        turn.say(f"Your 1:1 on {local_label(meeting.starts_at, turn.person.timezone)} is recorded as held.")
        return "shared"

    async def held_prompt(self, turn: Turn) -> Reply:
        meeting = await self._meeting_to_record(turn)
        _, _, other = await self._context(turn)
        if meeting is None:
            return Reply(
                f"There's no past 1:1 with {ag.first_name(other)} to record yet.", choices=(Choice("OK", "done"),)
            )
        when = local_label(meeting.starts_at, turn.person.timezone)
        return Reply(
            f"How did your 1:1 with {ag.first_name(other)} on {when} go?",
            choices=(
                Choice("We met", "met", "primary"),
                Choice("We skipped it", "skipped"),
                Choice("Not yet", "later"),
            ),
        )

    async def on_held(self, turn: Turn, value: str) -> Transition:
        meeting = await self._meeting_to_record(turn)
        if meeting is None or value == "later" or value == "done":
            return END
        pair = await self._pair(turn, turn.data["pair"])
        if not may_record(pair, turn.person):
            await self._not_yours_to_record(turn, pair, value == "skipped")
            return END
        turn.data["meeting"] = meeting.id
        if value == "skipped":
            await self._record_skip(turn, pair)
            return END
        if value != "met":
            return None
        if meeting.status == "skipped" and turn.person.id != pair.manager_id:
            manager = await _person(turn, pair.manager_id)
            turn.say(
                f"{ag.first_name(manager)} recorded that 1:1 as skipped, so I left it as it was. "
                "If you did meet, they can record it with *1:1 notes*."
            )
            return END
        if meeting.status != "held":
            meeting.status, meeting.recorded_at = "held", turn.now
            pair.skipped_in_row, pair.skips_told = 0, False
            turn.session.add_all([meeting, pair])
        return "shared"

    def shared_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "Notes you both will see (what you agreed, what you learned)? Write them, or skip.",
            input=TextInput("", MAX_NOTES),
            choices=(Choice("Skip", "skip"),),
        )

    async def on_shared(self, turn: Turn, text: str) -> Transition:
        if text != "skip" and text.strip():
            meeting = await self._meeting(turn)
            pair = await turn.session.get(OneOnOne, meeting.pair_id)
            mine = text.strip()
            if meeting.shared_notes or (pair is not None and pair.ask_report):
                # Both write notes here: each part names its author (a part from before this rule stays as it was).
                mine = f"— {ag.first_name(turn.person)}: {mine}"
            combined = f"{meeting.shared_notes}\n{mine}" if meeting.shared_notes else mine
            if len(combined) > MAX_SHARED:
                room = MAX_SHARED - (len(combined) - len(text.strip()))
                shorter = (
                    f"Send a shorter version (up to {room:,} characters), or skip." if room > 0 else "Skip to go on."
                )
                turn.say(f"This 1:1's shared notes are nearly full, so I haven't added these. {shorter}")
                return "shared"
            meeting.shared_notes = combined
            turn.session.add(meeting)
        return "action"

    def action_prompt(self, turn: Turn) -> Reply:
        count = turn.data.get("actions", 0)
        question = "Another action item?" if count else "Any action items? Write one, like *Send the API draft*."
        return Reply(question, input=TextInput("", MAX_POINT), choices=(Choice("No more", "none"),))

    async def on_action(self, turn: Turn, text: str) -> Transition:
        if text == "none" or not text.strip():
            return "private"
        turn.data["action_text"] = text.strip()
        return "owner"

    async def owner_prompt(self, turn: Turn) -> Reply:
        _, _, other = await self._context(turn)
        return Reply(
            f"Who does it? “{shorten(turn.data['action_text'], 120)}”",
            choices=(Choice("Me", str(turn.person.id)), Choice(ag.first_name(other), str(other.id))),
        )

    async def on_owner(self, turn: Turn, value: str) -> Transition:
        pair = await self._pair(turn, turn.data["pair"])
        if value not in (str(pair.manager_id), str(pair.report_id)):
            return None
        turn.data["owner"] = int(value)
        return "due"

    def due_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "By when? Pick one, or write a date like *2026-12-21*.",
            input=TextInput("2026-12-21", 40, False),
            choices=(Choice("In a week", "week"), Choice("By the next 1:1", "next"), Choice("No date", "none")),
        )

    async def on_due(self, turn: Turn, text: str) -> Transition:
        pair, manager, _ = await self._context(turn)
        today = turn.local_now.date()
        due: date | None
        if text == "week":
            due = today + timedelta(days=7)
        elif text == "next":
            due = (
                next_slot(pair, manager.timezone, turn.now + timedelta(hours=1)).astimezone(tz(manager.timezone)).date()
            )
        elif text == "none":
            due = None
        else:
            from dialogs.leave import parse_day

            due = parse_day(text, today)
            if due < today:
                raise UserFacingError("That day is over already. Which day should it be done by?")
        turn.session.add(
            ActionItem(
                owner_id=turn.data["owner"],
                created_by_id=turn.person.id,
                text=turn.data.pop("action_text"),
                due_on=due,
                pair_id=pair.id,
                meeting_id=turn.data.get("meeting"),
                created_at=turn.now,
            )
        )
        turn.data["actions"] = turn.data.get("actions", 0) + 1
        turn.say("Action item noted." + (f" Due {due:%a} {due.day} {due:%b}." if due else ""))
        return "action"

    def private_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "Last one: a private note that only you will ever see? Write it, or skip.",
            input=TextInput("", MAX_NOTES),
            choices=(Choice("Skip", "skip"),),
        )

    async def on_private(self, turn: Turn, text: str) -> Transition:
        if text != "skip" and text.strip():
            turn.session.add(
                MeetingNote(
                    meeting_id=turn.data["meeting"],
                    author_id=turn.person.id or 0,
                    text=text.strip(),
                    created_at=turn.now,
                )
            )
        actions = turn.data.get("actions", 0)
        turn.say(
            "Thanks — recorded."
            + (f" I'll remind the owners of the {actions} action item(s) when they're due." if actions else "")
            + " Anything not discussed moves to the next agenda."
        )
        return END

    async def _record_skip(self, turn: Turn, pair: OneOnOne) -> None:
        """Mark the pair's latest 1:1 skipped — never one already recorded (held or skipped): what people
        recorded is history, and a later press must not rewrite it; they hear what was recorded instead."""
        meeting = await self._meeting_to_record(turn)
        if meeting is None:
            turn.say("There's no past 1:1 to mark as skipped.")
            return
        if meeting.status in ("held", "skipped"):
            when = local_label(meeting.starts_at, turn.person.timezone)
            turn.say(
                f"Your 1:1 on {when} is already recorded as {meeting.status}, so I left it as it was."
                + (" *1:1 notes* adds to its notes." if meeting.status == "held" else "")
            )
            return
        counted = meeting.status == "unrecorded"  # the scheduler already counted it towards the run of skips
        meeting.status, meeting.recorded_at = "skipped", turn.now
        turn.session.add(meeting)
        turn.say("Noted as skipped. What was on its agenda moves to the next one.")
        # A run of skips is the manager's to hear, once, in the scheduler's words — whoever recorded this one.
        if not counted and await ag.count_skip(turn.session, pair):
            told = ag.skips_reply(pair, await _person(turn, pair.report_id), meeting)
            if turn.person.id == pair.manager_id:
                turn.say(told)
            else:
                turn.tell(pair.manager_id, told, key=ag.skips_key(pair, meeting))

    # -- action items ---------------------------------------------------------------------------------

    async def actions_prompt(self, turn: Turn) -> Reply:
        mine = list(
            (
                await turn.session.execute(
                    select(ActionItem)
                    .where(col(ActionItem.owner_id) == turn.person.id, col(ActionItem.done_at).is_(None))
                    .order_by(col(ActionItem.due_on).asc().nulls_last(), col(ActionItem.id))
                )
            ).scalars()
        )
        if not mine:
            return Reply("You have no open action items.", choices=(Choice("OK", "done"),))
        today = turn.local_now.date()
        lines = [f"• {ag.action_line(a, {turn.person.id or 0: 'You'}, turn.person.timezone, today)}" for a in mine]
        choices = [Choice(f"Done: {shorten(a.text, 30)}", f"done:{a.id}") for a in mine[:5]]
        return Reply("Your open action items:\n" + "\n".join(lines), choices=(*choices, Choice("Close", "close")))

    async def on_actions(self, turn: Turn, value: str) -> Transition:
        if value in ("close", "done"):
            return END
        kind, _, raw = value.partition(":")
        if kind == "done" and _id(raw):
            await self._finish_action(turn, _id(raw) or 0)
        return None

    async def _finish_action(self, turn: Turn, action_id: int) -> ActionItem:
        action = await turn.session.get(ActionItem, action_id)
        pairs = {p.id for p, _ in await ag.pairs_of(turn.session, turn.person)}
        if action is None or not (action.owner_id == turn.person.id or action.pair_id in pairs):
            raise UserFacingError("That action item isn't one of yours. *1:1 actions* lists yours.")
        if action.done_at is None:
            action.done_at = turn.now
            turn.session.add(action)
            turn.say(f"Done: {shorten(action.text, 80)}. Nice.")
        else:
            turn.say("That one was already done.")
        return action

    async def _action_button(self, turn: Turn, sub: str, action_id: int) -> Transition:
        """The buttons of an action nudge: done, or a week later."""
        if sub == "done-action":
            await self._finish_action(turn, action_id)
            return END
        action = await turn.session.get(ActionItem, action_id)
        if action is None or action.owner_id != turn.person.id or action.done_at is not None:
            raise UserFacingError("That action item is closed or not yours. *1:1 actions* lists yours.")
        action.due_on = max(action.due_on or turn.local_now.date(), turn.local_now.date()) + timedelta(days=7)
        turn.session.add(action)
        turn.say(f"Moved to {action.due_on:%a} {action.due_on.day} {action.due_on:%b}. I'll ask again then.")
        return END

    # -- helpers --------------------------------------------------------------------------------------

    async def _pair(self, turn: Turn, pair_id: int) -> OneOnOne:
        pair = await turn.session.get(OneOnOne, pair_id)
        if pair is None or turn.person.id not in (pair.manager_id, pair.report_id) or not pair.active:
            raise UserFacingError("That 1:1 isn't one of yours any more. Type *1:1* to see yours.")
        return pair

    async def _context(self, turn: Turn) -> tuple[OneOnOne, Person, Person]:
        """The pair of this conversation, its manager, and the other side."""
        pair = await self._pair(turn, turn.data["pair"])
        manager = turn.person if pair.manager_id == turn.person.id else await _person(turn, pair.manager_id)
        other = await _person(turn, pair.report_id if pair.manager_id == turn.person.id else pair.manager_id)
        return pair, manager, other

    async def _point(self, turn: Turn, point_id: int) -> TalkingPoint:
        point = await turn.session.get(TalkingPoint, point_id)
        if point is None or point.pair_id != turn.data.get("pair"):
            raise UserFacingError("That item is no longer on the agenda.")
        return point

    async def _loose_points(self, turn: Turn, pair: OneOnOne) -> list[TalkingPoint]:
        """Points added since the last agenda was built: they join the next one."""
        rows = await turn.session.execute(
            select(TalkingPoint)
            .where(col(TalkingPoint.pair_id) == pair.id, col(TalkingPoint.meeting_id).is_(None))
            .order_by(col(TalkingPoint.id))
        )
        return list(rows.scalars())

    async def _meeting(self, turn: Turn) -> Meeting:
        meeting = await turn.session.get(Meeting, turn.data["meeting"])
        if meeting is None or meeting.pair_id != turn.data["pair"]:
            raise UserFacingError("That 1:1 is no longer on record.")
        return meeting

    async def _meeting_to_record(self, turn: Turn) -> Meeting | None:
        """The 1:1 a button named, or the pair's latest one that has started (never one still to come, nor
        one a change of rhythm replaced, whatever a command names)."""
        if turn.data.get("meeting"):
            meeting = await turn.session.get(Meeting, turn.data["meeting"])
            if (
                meeting is not None
                and meeting.pair_id == turn.data["pair"]
                and meeting.starts_at <= turn.now
                and meeting.status in RECORDABLE
            ):
                return meeting
        return await turn.session.scalar(
            select(Meeting)
            .where(
                col(Meeting.pair_id) == turn.data["pair"],
                col(Meeting.starts_at) <= turn.now,
                col(Meeting.status).in_(RECORDABLE),
            )
            .order_by(col(Meeting.starts_at).desc())
            .limit(1)
        )


def agenda_reply(
    viewer: Person,
    other: Person,
    pair: OneOnOne,
    meeting: Meeting,
    points: list[TalkingPoint],
    actions: list[ActionItem],
    names: dict[int, str],
    *,
    built: bool,
    today: date,
    commands: bool = False,
    page: int = 1,
) -> Reply:
    """The agenda as a card with one button per item (to add a note or mark it discussed) and per open action
    item (done), AGENDA_BUTTONS to a card: the first card lists the whole agenda, "More items" shows the next
    ones as a card of their own (`page`), so every item can be reached within the platforms' button limits.
    With `commands` (a message Baton sends on its own) the buttons are commands, so they work whatever else
    is on screen."""
    when = local_label(meeting.starts_at, viewer.timezone)
    prefix, done = ("1:1 point ", "1:1 done-action ") if commands else ("", "")
    items: list[tuple[str, Choice]] = [
        (ag.item_line(i, p, names), Choice(f"{i}", f"{prefix}point:{p.id}")) for i, p in enumerate(points, 1)
    ]
    items += [
        (
            f"• {ag.action_line(a, names, viewer.timezone, today)}",
            Choice(f"Done: {shorten(a.text, 24)}", f"{done}action:{a.id}"),
        )
        for a in actions
    ]
    pages = max(1, -(-len(items) // AGENDA_BUTTONS))
    page = min(max(1, page), pages)
    first = (page - 1) * AGENDA_BUTTONS
    shown = items[first : first + AGENDA_BUTTONS]
    if page == 1:
        lines = [line for line, _ in items[: len(points)]]
        if actions:
            lines += ["", "Open action items:"] + [line for line, _ in items[len(points) :]]
        if not lines:
            lines = [
                "Nothing yet. I gather it the day before from the weeks since your last 1:1; add your own any time."
            ]
        span, title = "", f"1:1 with {other.name} — {when}"
    else:
        lines = [line for line, _ in shown]
        span = f" (items {first + 1}–{first + len(shown)} of {len(items)})"
        title = f"1:1 with {other.name} — {when}{span}"
    choices = [choice for _, choice in shown]
    if page < pages:
        more = f"1:1 agenda pair:{pair.id} page:{page + 1}" if commands else f"page:{page + 1}"
        choices.append(Choice("More items", more))
    tail = (
        (Choice("Add a talking point", f"1:1 add pair:{pair.id}"),)
        if commands
        else (Choice("Add a talking point", "add"), Choice("Done", "done"))
    )
    return Reply(
        f"Agenda for your 1:1 with {ag.first_name(other)}, {when}{span}. Press a number to add a note or mark it "
        "discussed.",
        card=Card(title, (("Rhythm", Cadence.of(pair).describe()),), tuple(lines)),
        choices=(*choices, *tail),
        action=COMMAND_ACTION if commands else None,
    )


def may_record(pair: OneOnOne, person: Person) -> bool:
    """Whether `person` records how the pair's 1:1s went (held or skipped): the manager, whom "How did it
    go?" asks, and the report only when the pair chose to ask them too (`ask_report`)."""
    return person.id == pair.manager_id or (person.id == pair.report_id and pair.ask_report)


def _named(pairs: list[tuple[OneOnOne, Person]], word: str) -> tuple[OneOnOne, Person] | None:
    """The pair whose other side `word` names (an email, or a first name)."""
    folded = word.casefold().lstrip("@")
    for pair, other in pairs:
        if folded in (other.email.casefold(), ag.first_name(other).casefold()):
            return pair, other
    return None


def _after_word(text: str) -> str:
    """`text` without its first word, otherwise exactly as typed."""
    parts = re.split(r"\s+", text, maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def _id(raw: str) -> int | None:
    """A row id from a button or a command: ASCII digits that fit the 32-bit id columns, else None."""
    return as_int(raw, 1, 2**31 - 1)


async def _person(turn: Turn, person_id: int) -> Person:
    person = await turn.session.get(Person, person_id)
    if person is None:
        raise UserFacingError("That person is no longer here.")
    return person


def _propose(turn: Turn, pair: OneOnOne, fields: dict[str, object]) -> dict[str, object] | None:
    """Make `fields` the pair's pending proposal, by the person of this turn, under a fresh number its
    buttons carry; return the proposal it replaces, if one was waiting."""
    replaced = pair.proposal
    pair.proposal = {"by": turn.person.id, "n": secrets.randbelow(10**9)} | fields
    turn.session.add(pair)
    return replaced


def _replaces(replaced: dict[str, object] | None, turn: Turn, other: Person) -> str:
    """The words that say a proposal still waiting was set aside by this one (never silently)."""
    if not replaced:
        return ""
    whose = "your earlier proposal" if replaced.get("by") == turn.person.id else f"{ag.first_name(other)}'s proposal"
    return f" It replaces {whose}, which no longer waits for an answer."


def _ask_to_confirm(turn: Turn, pair: OneOnOne, other: Person, text: str, *, keep: str) -> None:
    """Tell the other side of `pair` about its pending proposal, with a button to confirm it and one to keep
    things as they are; the buttons name the proposal, so they can't answer a later one."""
    number = (pair.proposal or {}).get("n")
    turn.tell(
        other,
        Reply(
            text,
            choices=(
                Choice("Confirm", f"1:1 confirm pair:{pair.id} proposal:{number}", "primary"),
                Choice(keep, f"1:1 decline pair:{pair.id} proposal:{number}"),
            ),
            action=COMMAND_ACTION,
        ),
        key=f"1on1-proposal:{pair.id}:{number}",  # per proposal: two in one second are two messages
    )
