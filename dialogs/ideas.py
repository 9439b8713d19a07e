"""`idea`: improvement ideas, signed or anonymous, followed to a decision and a result.

An idea goes to an owner — the sender's manager, or a team's owner (the manager of most of its members)
when the sender names the team — and moves received → acknowledged → decided (adopt, try, park, decline,
always with a reason) → done → result (what changed, in the owner's words). The sender hears about every
step and can answer the owner's replies.

Anonymous means unlinkable, a database reader included (threat model T1, dialogs/common/anonymity.py):
- the sender's turn writes only a sealed `idea_submission` (owner, team, text and the sealed way back, no
  sender, no time); the scheduler publishes earlier days' submissions together, dated the day they go out,
  once at least three people (anonymity.FLOOR) have sent them (dialogs/services/ideas.py), so no
  transaction, commit instant, heap order or small group ties the readable idea to the sender's turn. The
  same holds for their answers to the owner.
- the way back to the sender is `idea.relay`: their id sealed, padded to one size, bound to the idea.
  Their own list is found by opening every relay (trial decryption).
- the owner's turn only marks news for them (`relay_pending`); the scheduler tells them there is news, on
  a later day and once at least three people have news, without content; `idea mine` shows it at any time.
  Replies to an anonymous sender's own turns are kept in the outbox sealed (`Turn.private`), and nothing
  here logs an anonymous idea.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dialogs.common import anonymity
from dialogs.common.wording import shorten
from dialogs.engine import COMMAND_ACTION, END, Dialog, State, Transition, Turn
from dialogs.engine.errors import UserFacingError
from dialogs.engine.messages import Choice, Reply, TextInput
from dialogs.engine.sealing import Sealer, SealError
from storage.models import Idea, IdeaMessage, IdeaSubmission, Person, Team

MAX_TEXT = 1500  # characters of an idea, a reason, a result or a message
RELAY_SCOPE = "idea-relay"
RELAY_SIZE = 64  # bytes: {"person": id} padded, the same for everyone
SUBMISSION_SCOPE = "idea-submission"
SUBMISSION_SIZE = MAX_TEXT * 4 + 1024  # the text at four bytes a character, the sealed relay and the keys
FLOW_SCOPE = "idea-flow"
DECISIONS = {"adopt": "adopted", "try": "will try", "park": "parked", "decline": "declined"}
STATES = ("received", "acknowledged", "decided", "done", "result")
SHOWN = 15  # ideas in one list
BATCHES = (  # told to an anonymous sender: why their message does not arrive at once
    f"Anonymous messages go out together, from the next morning on, once at least {anonymity.FLOOR} people "
    "have sent one, so neither their timing nor a small group can point to you."
)


def short(idea_id: str) -> str:
    """How an idea is named in chat: the first six characters of its random id."""
    return idea_id[:6]


def first_name(person: Person | None) -> str:
    return person.name.split(" ")[0] if person is not None else "someone"


def relay_for(sealer: Sealer, person_id: int, idea_id: str) -> str:
    """The sealed way back to an anonymous sender: bound to the idea, the same size for everyone."""
    return sealer.seal(RELAY_SCOPE, {"person": person_id}, size=RELAY_SIZE, context=idea_id)


def relay_person(sealer: Sealer, idea: Idea) -> int | None:
    """The anonymous sender of `idea` (scheduler and the sender's own turns only), or None."""
    if idea.relay is None:
        return None
    try:
        opened = sealer.open(RELAY_SCOPE, idea.relay, context=idea.id)
    except SealError:
        return None
    person = opened.get("person")
    return person if isinstance(person, int) else None


def keep_submission(turn: Turn, submission: dict[str, Any]) -> None:
    """An anonymous idea or answer, in the sender's turn: sealed whole and padded to one size, with no sender
    and no time outside the seal; the turn's replies are kept sealed and its WAL pages checkpointed away."""
    submission_id = anonymity.new_id()
    sealed = turn.sealer.seal(SUBMISSION_SCOPE, submission, size=SUBMISSION_SIZE, context=submission_id)
    turn.session.add(IdeaSubmission(id=submission_id, sealed=sealed))
    turn.private = True
    turn.checkpoint = True


def open_submission(sealer: Sealer, row: IdeaSubmission) -> dict[str, Any] | None:
    try:
        opened: dict[str, Any] = sealer.open(SUBMISSION_SCOPE, row.sealed, context=row.id)
    except SealError:
        return None
    return opened


async def team_owner(session: AsyncSession, team_id: int) -> Person | None:
    """A team's owner: the active manager of most of its members (fewest id on a tie)."""
    managers = Counter(
        m
        for m in await session.scalars(
            select(col(Person.manager_id)).where(col(Person.team_id) == team_id, col(Person.active).is_(True))
        )
        if m is not None
    )
    for manager_id, _ in sorted(managers.items(), key=lambda kv: (-kv[1], kv[0])):
        owner = await session.get(Person, manager_id)
        if owner is not None and owner.active:
            return owner
    return None


async def my_anonymous(
    session: AsyncSession, sealer: Sealer, person_id: int
) -> tuple[list[Idea], list[tuple[str, dict[str, Any]]]]:
    """The anonymous ideas this person sent (by opening every relay), and those still waiting for their batch
    as (submission id, what it holds)."""
    ideas = [
        idea
        for idea in await session.scalars(select(Idea).where(col(Idea.relay).is_not(None)))
        if relay_person(sealer, idea) == person_id
    ]
    waiting = []
    for row in await session.scalars(select(IdeaSubmission)):
        opened = open_submission(sealer, row)
        if opened is not None and opened.get("person") == person_id and opened.get("kind") == "idea":
            waiting.append((row.id, opened))
    return ideas, waiting


def status_line(idea: Idea) -> str:
    """Where an idea stands, in a few words."""
    if idea.state == "received":
        return f"received {idea.received_on:%d %b}, not acknowledged yet"
    if idea.state == "acknowledged":
        return f"acknowledged {idea.acknowledged_on:%d %b}"
    verdict = DECISIONS.get(idea.decision or "", idea.decision or "")
    line = f"{verdict} {idea.decided_on:%d %b} — {shorten(idea.reason or '', 120)}"
    if idea.state == "done":
        line += f"; done {idea.done_on:%d %b}"
    if idea.state == "result":
        line += f"; result {idea.result_on:%d %b}: {shorten(idea.result or '', 160)}"
    return line


def change_text(idea: Idea, owner: str) -> str:
    """What the sender is told when their idea moves on."""
    about = f"Your idea “{shorten(idea.text, 60)}”"
    if idea.state == "acknowledged":
        return f"{about} was acknowledged by {owner}."
    if idea.state == "decided":
        verdict = DECISIONS.get(idea.decision or "", "decided")
        return f"{about}: {owner} decided — *{verdict}*. Why: {idea.reason}"
    if idea.state == "done":
        return f"{about} is done, says {owner}. They'll tell you what changed."
    return f"{about} — what changed, in {owner}'s words: {idea.result}"


class IdeasDialog(Dialog):
    name = "idea"
    title = "your idea"
    commands = ("idea",)
    summary = (
        "Send an improvement idea, signed or anonymous, and follow it (*idea mine*; owners: *idea list*, "
        "*idea ack|decide|done|result|reply ID*)."
    )

    def __init__(self) -> None:
        self.first = "how"
        self.states = {
            "how": State(self.how_prompt, on_choice=self.on_how),
            "text": State(self.text_prompt, on_text=self.on_text, max_length=MAX_TEXT),
            "decision": State(self.decision_prompt, on_choice=self.on_decision),
            "reason": State(self.reason_prompt, on_text=self.on_reason, max_length=MAX_TEXT),
            "result": State(self.result_prompt, on_text=self.on_result, max_length=MAX_TEXT),
        }

    # -- starting -----------------------------------------------------------------------------

    async def begin(self, turn: Turn, args: str) -> Transition:
        word, _, rest = args.strip().partition(" ")
        word, rest = word.casefold(), rest.strip()
        if word in ("signed", "anonymous", "anonymously") and rest:
            turn.private = True
            await self._submit(turn, rest, anonymous=word != "signed", team_id=None)
            return END
        if word == "for":
            team = await turn.session.scalar(select(Team).where(col(Team.name).ilike(rest)))
            if team is None:
                raise UserFacingError(f"I know no team called “{shorten(rest, 40)}”. Try *idea* on its own.")
            turn.private = True
            self._keep_flow(turn, {"team": team.id})
            return "how"
        if word == "mine":
            await self._mine(turn)
            return END
        if word == "list":
            await self._list(turn)
            return END
        if word in ("sign", "withdraw"):
            await self._unsend(turn, rest, signed=word == "sign")
            return END
        if word in ("ack", "decide", "done", "result", "reply", "show"):
            return await self._act(turn, word, rest)
        if word:
            raise UserFacingError(
                "Write *idea* to send one step by step, or *idea signed …* / *idea anonymous …* at once."
            )
        turn.private = True  # the whole flow: its replies would name the owner beside the sender
        self._keep_flow(turn, {})
        return "how"

    # The flow's choices are sealed in the dialog state: a reader must not see who is writing an anonymous idea.
    def _keep_flow(self, turn: Turn, flow: dict[str, Any]) -> None:
        turn.data["flow"] = turn.sealer.seal(FLOW_SCOPE, flow, size=128, context=str(turn.person.id))

    def _flow(self, turn: Turn) -> dict[str, Any]:
        try:
            flow: dict[str, Any] = turn.sealer.open(FLOW_SCOPE, turn.data.get("flow", ""), context=str(turn.person.id))
        except SealError:
            return {}
        return flow

    async def _owner_for(self, turn: Turn, team_id: int | None) -> Person:
        owner = await team_owner(turn.session, team_id) if team_id else None
        if owner is None and turn.person.manager_id:
            owner = await turn.session.get(Person, turn.person.manager_id)
        if owner is None or not owner.active or owner.id == turn.person.id:
            raise UserFacingError(
                "I don't know whom to give your idea to: you have no manager in Baton. "
                "Name a team with *idea for TEAM*."
            )
        return owner

    async def how_prompt(self, turn: Turn) -> Reply:
        owner = await self._owner_for(turn, self._flow(turn).get("team"))
        return Reply(
            f"An idea for {first_name(owner)}. Send it with your name, or anonymously? Anonymous means nobody — "
            "not even someone reading Baton's database — can tell it was you; "
            f"{first_name(owner)} can still answer you, and you them.",
            choices=(Choice("Signed", "signed"), Choice("Anonymous", "anonymous"), Choice("Cancel", "cancel")),
        )

    async def on_how(self, turn: Turn, value: str) -> Transition:
        turn.private = True
        if value == "cancel":
            turn.data.clear()
            turn.say("Fine — nothing sent.")
            return END
        self._keep_flow(turn, self._flow(turn) | {"anonymous": value == "anonymous"})
        return "text"

    async def text_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "Your idea, in a sentence or a paragraph: what would you change, and what would it make better?",
            input=TextInput("My idea…", MAX_TEXT, multiline=True),
        )

    async def on_text(self, turn: Turn, text: str) -> Transition:
        turn.private = True
        flow = self._flow(turn)
        turn.data.clear()
        await self._submit(turn, text, anonymous=bool(flow.get("anonymous")), team_id=flow.get("team"))
        return END

    async def _submit(self, turn: Turn, text: str, *, anonymous: bool, team_id: int | None) -> None:
        text = text.strip()
        if not text:
            raise UserFacingError("That idea is empty. What would you change?")
        if len(text) > MAX_TEXT:
            raise UserFacingError(f"Please keep an idea to {MAX_TEXT} characters.")
        owner = await self._owner_for(turn, team_id)
        assert owner.id is not None and turn.person.id is not None
        today = turn.local_now.date()
        idea_id = anonymity.new_id()
        if not anonymous:
            self._signed(turn, owner, idea_id, text, team_id)
            return
        keep_submission(
            turn,
            {
                "kind": "idea",
                "idea": idea_id,
                "owner": owner.id,
                "team": team_id,
                "text": text,
                "day": today.isoformat(),
                "person": turn.person.id,  # found again only by opening: `idea mine` before it is published
                "relay": relay_for(turn.sealer, turn.person.id, idea_id),
            },
        )
        turn.say(f"Sent anonymously to {first_name(owner)}. {BATCHES} *idea mine* shows how it goes.")

    def _signed(self, turn: Turn, owner: Person, idea_id: str, text: str, team_id: int | None) -> None:
        assert owner.id is not None and turn.person.id is not None
        turn.session.add(
            Idea(
                id=idea_id,
                owner_id=owner.id,
                team_id=team_id,
                text=text,
                signed_by_id=turn.person.id,
                received_on=turn.local_now.date(),
            )
        )
        turn.tell(
            owner,
            Reply(
                f"{turn.person.name} sent you an idea: “{text}”\n*idea ack {short(idea_id)}* acknowledges it.",
                choices=(Choice("Acknowledge", f"idea ack {short(idea_id)}"),),
                action=COMMAND_ACTION,
            ),
            key=f"idea:{idea_id}:received",
        )
        turn.say(f"Sent to {first_name(owner)}, with your name (idea {short(idea_id)}). I'll tell you what happens.")

    async def _unsend(self, turn: Turn, ref: str, *, signed: bool) -> None:
        """An anonymous idea still waiting for its batch: sent now with the sender's name, or taken back."""
        turn.private = True  # the answer names the idea
        person_id = turn.person.id
        assert person_id is not None
        _, waiting = await my_anonymous(turn.session, turn.sealer, person_id)
        ref = ref.strip().casefold()
        found = [(sid, opened) for sid, opened in waiting if ref and str(opened.get("idea", "")).startswith(ref)]
        if len(found) != 1:
            raise UserFacingError("Name a waiting idea by the id *idea mine* shows, e.g. *idea withdraw 3f9a2c*.")
        [(submission_id, opened)] = found
        gone = await turn.session.execute(
            delete(IdeaSubmission).where(col(IdeaSubmission.id) == submission_id).returning(col(IdeaSubmission.id))
        )
        if gone.first() is None:  # the scheduler published it a moment ago
            raise UserFacingError("It has just gone out, anonymously. *idea mine* shows how it goes.")
        turn.checkpoint = True  # the sealed submission must not linger in the WAL either
        if not signed:
            turn.say(f"Taken back: “{shorten(str(opened.get('text', '')), 80)}” never reached anyone.")
            return
        owner = await turn.session.get(Person, opened.get("owner"))
        if owner is None or not owner.active:
            owner = await self._owner_for(turn, opened.get("team"))
        self._signed(turn, owner, str(opened["idea"]), str(opened.get("text", "")), opened.get("team"))

    # -- the sender's view --------------------------------------------------------------------

    async def _mine(self, turn: Turn) -> None:
        person_id = turn.person.id
        assert person_id is not None
        signed = list(
            await turn.session.scalars(
                select(Idea).where(col(Idea.signed_by_id) == person_id).order_by(col(Idea.received_on).desc())
            )
        )
        anonymous, waiting = await my_anonymous(turn.session, turn.sealer, person_id)
        if anonymous or waiting:
            turn.private = True  # the list names anonymous ideas: it must not sit readable in the outbox
        if not (signed or anonymous or waiting):
            turn.say("You haven't sent an idea yet. *idea* sends one.")
            return
        owners = {
            p.id: p
            for p in await turn.session.scalars(
                select(Person).where(col(Person.id).in_({i.owner_id for i in signed + anonymous}))
            )
        }
        threads = await _threads(turn.session, [i.id for i in anonymous + signed])
        lines = ["Your ideas:"]
        for idea in sorted(anonymous + signed, key=lambda i: i.received_on, reverse=True)[:SHOWN]:
            how = "anonymous" if idea.relay else "signed"
            lines.append(
                f"• *{short(idea.id)}* ({how}, to {first_name(owners.get(idea.owner_id))}) “{shorten(idea.text, 80)}” — "
                f"{status_line(idea)}"
            )
            for message in threads.get(idea.id, [])[-3:]:
                who = first_name(owners.get(idea.owner_id)) if message.from_owner else "you"
                lines.append(f"    {who}, {message.written_on:%d %b}: {shorten(message.text, 200)}")
        for _, opened in waiting:
            lines.append(
                f"• *{short(str(opened.get('idea', '')))}* (anonymous, waiting for the next batch) "
                f"“{shorten(str(opened.get('text', '')), 80)}”"
            )
        lines.append("*idea reply ID your answer* answers the owner of an idea.")
        if not waiting:
            turn.say("\n".join(lines))
            return
        lines.append(
            f"Anonymous ideas wait until at least {anonymity.FLOOR} people have sent one. Rather not wait? "
            "*idea sign ID* sends one now with your name; *idea withdraw ID* takes it back."
        )
        ref = short(str(waiting[0][1].get("idea", "")))
        turn.say(
            Reply(
                "\n".join(lines),
                choices=(Choice("Send it signed", f"idea sign {ref}"), Choice("Withdraw it", f"idea withdraw {ref}")),
                action=COMMAND_ACTION,
            )
        )

    # -- the owner's view and actions ---------------------------------------------------------

    async def _list(self, turn: Turn) -> None:
        ideas = list(
            await turn.session.scalars(
                select(Idea)
                .where(col(Idea.owner_id) == turn.person.id, col(Idea.state) != "result")
                .order_by(col(Idea.received_on))
            )
        )
        if not ideas:
            turn.say("No ideas are waiting for you.")
            return
        senders = await _names(turn.session, {i.signed_by_id for i in ideas if i.signed_by_id})
        lines = [f"Ideas sent to you ({len(ideas)} open):"]
        for idea in ideas[:SHOWN]:
            who = senders.get(idea.signed_by_id or 0, "anonymous")
            lines.append(f"• *{short(idea.id)}* from {who}: “{shorten(idea.text, 100)}” — {status_line(idea)}")
        lines.append("*idea ack|decide|done|result|reply ID* moves one on.")
        turn.say("\n".join(lines))

    async def _find(self, turn: Turn, ref: str) -> tuple[Idea, bool]:
        """The idea `ref` (its short id) that this person owns (True) or sent (False). UserFacingError otherwise."""
        ref = ref.strip().casefold()
        if len(ref) < 4 or not all(c in "0123456789abcdef" for c in ref):
            raise UserFacingError("Name the idea by the short id I showed you, e.g. *idea ack 3f9a2c*.")
        found = list(await turn.session.scalars(select(Idea).where(col(Idea.id).like(f"{ref}%")).limit(20)))
        for idea in found:
            if idea.owner_id == turn.person.id:
                return idea, True
        for idea in found:
            if idea.signed_by_id == turn.person.id or relay_person(turn.sealer, idea) == turn.person.id:
                return idea, False
        raise UserFacingError(f"I find no idea {ref} sent to you or by you. *idea list* or *idea mine* shows yours.")

    async def _act(self, turn: Turn, word: str, rest: str) -> Transition:
        ref, _, text = rest.partition(" ")
        idea, owner = await self._find(turn, ref)
        text = text.strip()
        if not owner:
            if idea.relay:
                turn.private = True
            if word == "reply" and text:
                await self._sender_reply(turn, idea, text)
                return END
            if word == "show":
                await self._mine(turn)
                return END
            raise UserFacingError("Only the idea's owner can move it on; you can *idea reply ID your answer*.")
        if word == "show":
            turn.say(f"*{short(idea.id)}*: “{idea.text}” — {status_line(idea)}")
            return END
        today = turn.local_now.date()
        turn.data["idea"] = idea.id
        if word == "ack":
            if idea.state != "received":
                raise UserFacingError(f"Idea {short(idea.id)} is already {idea.state}.")
            idea.state, idea.acknowledged_on = "acknowledged", today
            await self._changed(turn, idea)
            turn.say(f"Acknowledged. *idea decide {short(idea.id)}* when you have decided.")
            return END
        if word == "decide":
            if idea.state not in ("received", "acknowledged"):
                raise UserFacingError(f"Idea {short(idea.id)} is already decided.")
            return "decision"
        if word == "done":
            if idea.state != "decided" or idea.decision not in ("adopt", "try"):
                raise UserFacingError("Only an idea you adopted or are trying can be done.")
            idea.state, idea.done_on = "done", today
            await self._changed(turn, idea)
            turn.say(f"Marked done. *idea result {short(idea.id)} what changed* closes the loop.")
            return END
        if word == "result":
            if idea.state != "done":
                raise UserFacingError("Mark the idea done first (*idea done ID*), then say what changed.")
            if text:
                return await self.on_result(turn, text)
            return "result"
        if not text:
            raise UserFacingError(f"Write your reply after the id: *idea reply {short(idea.id)} …*")
        turn.session.add(
            IdeaMessage(id=anonymity.new_id(), idea_id=idea.id, from_owner=True, text=text, written_on=today)
        )
        await self._news(
            turn,
            idea,
            f"{first_name(turn.person)} answered about your idea “{shorten(idea.text, 60)}”: "
            f"{text}\n*idea reply {short(idea.id)} …* answers back.",
        )
        turn.say("Sent." + (" They hear of it without learning anything about themselves." if idea.relay else ""))
        return END

    async def decision_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "What have you decided? Whatever it is, you'll give the reason next.",
            choices=tuple(
                Choice(label.capitalize(), value)
                for value, label in (("adopt", "adopt"), ("try", "try it"), ("park", "park"), ("decline", "decline"))
            ),
        )

    async def on_decision(self, turn: Turn, value: str) -> Transition:
        if value not in DECISIONS:
            return None
        turn.data["decision"] = value
        return "reason"

    async def reason_prompt(self, turn: Turn) -> Reply:
        return Reply("Why? The sender reads this, in your words.", input=TextInput("Because…", MAX_TEXT))

    async def on_reason(self, turn: Turn, text: str) -> Transition:
        idea = await self._mine_to_move(turn)
        idea.state, idea.decision, idea.reason = "decided", turn.data["decision"], text.strip()
        idea.decided_on = turn.local_now.date()
        idea.acknowledged_on = idea.acknowledged_on or idea.decided_on
        await self._changed(turn, idea)
        turn.say(f"Decided: {DECISIONS[idea.decision]}. The sender hears it, with your reason.")
        return END

    async def result_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "What changed because of it? In your words; the sender reads it.", input=TextInput("It…", MAX_TEXT)
        )

    async def on_result(self, turn: Turn, text: str) -> Transition:
        idea = await self._mine_to_move(turn)
        idea.state, idea.result, idea.result_on = "result", text.strip(), turn.local_now.date()
        await self._changed(turn, idea)
        turn.say("Thank you — the loop is closed, and the sender hears what changed.")
        return END

    async def _mine_to_move(self, turn: Turn) -> Idea:
        idea = await turn.session.get(Idea, turn.data.get("idea", ""))
        if idea is None or idea.owner_id != turn.person.id:
            raise UserFacingError("That idea is gone.")
        return idea

    async def _changed(self, turn: Turn, idea: Idea) -> None:
        await self._news(turn, idea, change_text(idea, first_name(turn.person)), key=f"idea:{idea.id}:{idea.state}")

    async def _news(self, turn: Turn, idea: Idea, text: str, *, key: str | None = None) -> None:
        """Tell the sender: a signed one in this turn; an anonymous one later, through the relay, without content."""
        if idea.signed_by_id is not None:
            turn.tell(idea.signed_by_id, text, key=key or f"idea:{idea.id}:msg:{anonymity.new_id()}")
        elif idea.relay is not None:
            idea.relay_pending += 1
            idea.relay_on = idea.relay_on or turn.local_now.date()
        turn.session.add(idea)

    async def _sender_reply(self, turn: Turn, idea: Idea, text: str) -> None:
        if len(text) > MAX_TEXT:
            raise UserFacingError(f"Please keep a reply to {MAX_TEXT} characters.")
        today = turn.local_now.date()
        owner = await turn.session.get(Person, idea.owner_id)
        if idea.signed_by_id is not None:
            turn.session.add(
                IdeaMessage(id=anonymity.new_id(), idea_id=idea.id, from_owner=False, text=text, written_on=today)
            )
            turn.tell(
                idea.owner_id,
                f"{turn.person.name} answered about the idea “{shorten(idea.text, 60)}”: {text}\n"
                f"*idea reply {short(idea.id)} …* answers back.",
                key=f"idea:{idea.id}:msg:{anonymity.new_id()}",
            )
            turn.say(f"Sent to {first_name(owner)}.")
            return
        keep_submission(
            turn, {"kind": "reply", "idea": idea.id, "text": text, "day": today.isoformat(), "person": turn.person.id}
        )
        turn.say(f"Sent anonymously to {first_name(owner)}. {BATCHES}")


async def _threads(session: AsyncSession, idea_ids: list[str]) -> dict[str, list[IdeaMessage]]:
    found: dict[str, list[IdeaMessage]] = {}
    if not idea_ids:
        return found
    rows = await session.scalars(
        select(IdeaMessage).where(col(IdeaMessage.idea_id).in_(idea_ids)).order_by(col(IdeaMessage.written_on))
    )
    for message in rows:
        found.setdefault(message.idea_id, []).append(message)
    return found


async def _names(session: AsyncSession, ids: set[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    return {p.id: p.name for p in await session.scalars(select(Person).where(col(Person.id).in_(wanted))) if p.id}
