"""The appreciative retro: Discover, Dream, Design in private, Destiny as a team.

A manager (or any member, when the team allows it: `retro allow members`) starts one with a theme in the
team's words and a window (one week unless changed). Each member is asked privately, one question at a time:

- Discover — a time this team was at its best around the theme, and what made it possible;
- Dream — if that happened every week, what would be different;
- Design — one change that would get us there.

Every question can be skipped; answers can be changed until the window closes (`retro answer ID`). They are
sealed drafts (`dialogs/common/anonymity.py`): nobody, admins and database readers included, reads them
before the close. At the close (`close_retro`, run by the scheduler in `dialogs/services/retros.py`) they are
opened in memory and grouped into themes offline (`dialogs/catalogue/themes.py`); a theme, with a few of
its answers as quotes, is written readable only when at least the threshold of distinct people (never
below 3; the 360 rules) contributed to it. Design proposals go to the vote only when at least the threshold
of people proposed one. What does not reach its threshold is dropped, never written. A person may sign
their story: it is then shown with their name in the team's story log, and only that.

Destiny: the team votes (three votes each, editable, sealed until the vote closes — only the totals are
ever written); the starter gives the top proposals an owner and a date, and they become action items
(`source="retro"`) that are nudged like any other and appear in the owners' 1:1 agendas. After a
commitment's date the team is asked whether it helped (counts only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dialogs.catalogue.themes import Answer, group
from dialogs.common import anonymity
from dialogs.common.anonymity import FLOOR
from dialogs.common.wording import shorten
from dialogs.engine import COMMAND_ACTION, END, Dialog, State, Transition, Turn
from dialogs.engine.clock import tz
from dialogs.engine.errors import UserFacingError
from dialogs.engine.messages import Card, Choice, Reply, TextInput
from dialogs.engine.sealing import Sealer
from storage import queries
from storage.models import (
    ActionItem,
    Person,
    Retro,
    RetroParticipant,
    RetroPolicy,
    RetroProposal,
    RetroQuote,
    RetroTheme,
    SealedDraft,
    Team,
)

WINDOWS = {"1w": timedelta(weeks=1), "2w": timedelta(weeks=2)}
VOTE_WINDOW = timedelta(days=3)
VOTES_EACH = 3
TOP = 3  # proposals the starter is asked to give an owner and a date
MAX_PROPOSALS = 9  # on one ballot
QUOTES_PER_THEME = 2
MAX_THEME = 200
MAX_ANSWER = anonymity.MAX_WRITTEN
STAGES = ("discover", "dream", "design")
STAGE_NAMES = {"discover": "Discover", "dream": "Dream", "design": "Design"}
DUE_WEEKS = (2, 4, 6)
HELPED = {"yes": "Yes", "partly": "Partly", "no": "No"}


def answers_scope(retro_id: int) -> str:
    return anonymity.scope("retro", retro_id)


def ballots_scope(retro_id: int) -> str:
    return anonymity.scope("retro-vote", retro_id)


def _id(row: Person | Retro | Team) -> int:
    assert row.id is not None
    return row.id


def first_name(person: Person) -> str:
    return person.name.split(" ")[0]


def _day(when: datetime, person: Person) -> str:
    local = when.astimezone(tz(person.timezone))
    return f"{local:%A} {local.day} {local:%B}, {local:%H:%M}"


def questions(theme: str) -> dict[str, str]:
    return {
        "discover": f"Discover — think of a time this team was at its best around “{theme}”. "
        "What happened, and what made it possible?",
        "dream": "Dream — if that happened every week, what would be different?",
        "design": "Design — one change that would get us there?",
    }


# -- who may do what -------------------------------------------------------------------------------


async def may_start(session: AsyncSession, person: Person, *, manager: bool) -> bool:
    """A team's manager may start its retro; a member too when the team allows it."""
    if person.team_id is None:
        return False
    if manager:
        return True
    policy = await session.get(RetroPolicy, person.team_id)
    return bool(policy and policy.members_may_start)


def helped_scope(proposal_id: str) -> str:
    """Where the "Has it helped?" answers to one commitment are kept sealed until they are counted."""
    return f"anonymous:retro-helped:{proposal_id}"


async def count_helped(
    session: AsyncSession, proposal: RetroProposal, retro: Retro, sealer: Sealer, today: date
) -> int:
    """Open every "Has it helped?" answer to `proposal` in memory and write the counts — only when at least the
    retro's threshold of people answered — then delete the answers. Returns how many answered."""
    where = helped_scope(proposal.id)
    answers = [a.get("helped", {}).get("helped") for _, a in await anonymity.open_drafts(session, sealer, where)]
    if len(answers) >= max(FLOOR, retro.threshold):
        proposal.helped_yes = answers.count("yes")
        proposal.helped_partly = answers.count("partly")
        proposal.helped_no = answers.count("no")
    proposal.helped_counted_on = today
    session.add(proposal)
    await session.execute(delete(SealedDraft).where(col(SealedDraft.scope) == where))
    return len(answers)


async def may_manage(session: AsyncSession, retro: Retro, person: Person) -> bool:
    """Who may stop a retro or choose its commitments: whoever started it, a manager in its team, an admin."""
    if retro.started_by_id == person.id or person.is_admin:
        return True
    if person.team_id != retro.team_id:
        return False
    return bool(await queries.reports_of(session, _id(person)))


async def participants(session: AsyncSession, retro_id: int) -> list[Person]:
    rows = await session.execute(
        select(Person)
        .join(RetroParticipant, col(RetroParticipant.person_id) == col(Person.id))
        .where(col(RetroParticipant.retro_id) == retro_id, col(Person.active).is_(True))
        .order_by(col(Person.name))
    )
    return list(rows.scalars())


# -- the close: synthesis --------------------------------------------------------------------------


@dataclass
class Released:
    """What a close wrote readable, for the messages that announce it."""

    answered: int
    themes: list[RetroTheme]
    quotes: list[RetroQuote]
    proposals: list[RetroProposal]
    hidden: int  # themes left out because too few people share them


async def close_retro(session: AsyncSession, retro: Retro, now: datetime, sealer: Sealer) -> Released:
    """Open every draft in memory, group the answers into themes, write only what reaches the threshold
    (shuffled, fresh random ids, the close day only) and the stories their authors signed, delete every
    draft and end the conversations still answering, and move the retro to its vote (or to done).

    The caller has claimed the close (status collecting → closing) so that it runs once."""
    where = answers_scope(_id(retro))
    opened = await anonymity.open_drafts(session, sealer, where)
    day = now.date()
    by_stage: dict[str, list[Answer]] = {stage: [] for stage in STAGES}
    signed: list[tuple[int, str]] = []
    unsigned: set[tuple[int, str]] = set()
    answered = 0
    for index, (person_id, drafted) in enumerate(opened):
        gave = False
        for stage in STAGES:
            text = ((drafted.get(stage) or {}).get("text") or "").strip()
            if not text:
                continue
            gave = True
            by_stage[stage].append(Answer(index, text))
            if stage == "discover" and (drafted.get(stage) or {}).get("signed"):
                signed.append((person_id, text))
            else:
                unsigned.add((index, text))
        answered += gave
    threshold = max(FLOOR, retro.threshold)
    themes: list[RetroTheme] = []
    quotes: list[RetroQuote] = []
    hidden = 0
    for stage in STAGES:
        for found in group(by_stage[stage]):
            if found.people < threshold:
                hidden += 1
                continue  # dropped: never written readable
            theme = RetroTheme(
                id=anonymity.new_id(),
                retro_id=_id(retro),
                stage=stage,
                name=shorten(found.name, MAX_THEME),
                people=found.people,
                written_on=day,
            )
            themes.append(theme)
            if stage == "design":
                continue  # proposals are shown in full on the ballot
            picked = [a for a in found.representative if (a.contributor, a.text) in unsigned][:QUOTES_PER_THEME]
            for answer in anonymity.shuffled(picked):
                quotes.append(
                    RetroQuote(
                        id=anonymity.new_id(),
                        retro_id=_id(retro),
                        theme_id=theme.id,
                        stage=stage,
                        text=answer.text,
                        written_on=day,
                    )
                )
    for person_id, text in signed:  # the author's choice: attributed, whatever the threshold
        quotes.append(
            RetroQuote(
                id=anonymity.new_id(),
                retro_id=_id(retro),
                stage="discover",
                text=text,
                author_id=person_id,
                written_on=day,
            )
        )
    proposals: list[RetroProposal] = []
    designs = by_stage["design"]
    if len({a.contributor for a in designs}) >= threshold:
        # At most MAX_PROPOSALS: one from each theme in turn, so a crowded theme cannot fill the ballot.
        rounds = [list(t.representative) for t in group(designs)]
        chosen: list[Answer] = []
        while len(chosen) < MAX_PROPOSALS and any(rounds):
            for members in rounds:
                if members and len(chosen) < MAX_PROPOSALS:
                    chosen.append(members.pop(0))
        for number, answer in enumerate(anonymity.shuffled(chosen), 1):
            proposals.append(
                RetroProposal(
                    id=anonymity.new_id(), retro_id=_id(retro), number=number, text=answer.text, written_on=day
                )
            )
    for row in anonymity.shuffled([*themes, *quotes, *proposals]):
        session.add(row)
    await anonymity.clear_drafts(session, where, RetroDialog.name, "retro", _id(retro))
    retro.closed_on, retro.answered = day, answered
    if proposals:
        retro.status, retro.vote_closes_at = "voting", now + VOTE_WINDOW
    else:
        retro.status = "done"
    session.add(retro)
    await session.flush()
    return Released(answered, themes, quotes, proposals, hidden)


async def close_vote(session: AsyncSession, retro: Retro, now: datetime, sealer: Sealer) -> list[RetroProposal]:
    """Count the sealed ballots and write the totals — only when at least the threshold of people voted, or
    the totals would tell how those few voted — then delete the ballots. Returns the top proposals, for the
    starter to give owners and dates (every proposal, in ballot order, when the totals stay unwritten)."""
    where = ballots_scope(_id(retro))
    ballots = [
        drafted.get("ballot", {}).get("picks") or []
        for _, drafted in await anonymity.open_drafts(session, sealer, where)
    ]
    ballots = [b for b in ballots if b]
    proposals = list(
        await session.scalars(
            select(RetroProposal).where(col(RetroProposal.retro_id) == retro.id).order_by(col(RetroProposal.number))
        )
    )
    counted = len(ballots) >= max(FLOOR, retro.threshold)
    if counted:
        for proposal in proposals:
            proposal.votes = sum(proposal.number in picks for picks in ballots)
            session.add(proposal)
    await anonymity.clear_drafts(session, where, RetroDialog.name, "retro", _id(retro))
    retro.voters, retro.voted_on, retro.status = len(ballots), now.date(), "choosing"
    session.add(retro)
    await session.flush()
    if not counted:
        return proposals
    ranked = sorted((p for p in proposals if p.votes), key=lambda p: (-(p.votes or 0), p.number))
    return ranked[:TOP]


async def released(
    session: AsyncSession, retro_id: int
) -> tuple[list[RetroTheme], list[RetroQuote], list[RetroProposal]]:
    themes = list(
        await session.scalars(
            select(RetroTheme)
            .where(col(RetroTheme.retro_id) == retro_id)
            .order_by(col(RetroTheme.stage), col(RetroTheme.id))
        )
    )
    quotes = list(
        await session.scalars(
            select(RetroQuote).where(col(RetroQuote.retro_id) == retro_id).order_by(col(RetroQuote.id))
        )
    )
    proposals = list(
        await session.scalars(
            select(RetroProposal).where(col(RetroProposal.retro_id) == retro_id).order_by(col(RetroProposal.number))
        )
    )
    return themes, quotes, proposals


def results_reply(retro: Retro, result: Released, authors: dict[int, str], reader: Person) -> Reply:
    """The team's results, for each member: themes with their quotes, signed stories, and the vote."""
    lines: list[str] = []
    by_theme: dict[str | None, list[RetroQuote]] = {}
    for quote in result.quotes:
        by_theme.setdefault(quote.theme_id, []).append(quote)
    for stage in STAGES:
        for theme in (t for t in result.themes if t.stage == stage):
            lines.append(f"{STAGE_NAMES[stage]} — {theme.name} ({theme.people} people)")
            lines += [f"   “{shorten(q.text, 280)}”" for q in by_theme.get(theme.id, [])]
    for quote in (q for q in result.quotes if q.author_id is not None):
        lines.append(f"A story from {authors.get(quote.author_id or 0, 'a colleague')}: “{shorten(quote.text, 400)}”")
    threshold = max(FLOOR, retro.threshold)
    if not lines:
        lines.append(
            f"Nothing reached {threshold} people, so nothing is shown: answers are released only when at least "
            f"{threshold} people share a theme."
        )
    elif result.hidden:
        lines.append(f"Themes fewer than {threshold} people share are left out, not merged.")
    if result.proposals:
        closes = _day(retro.vote_closes_at or retro.closes_at, reader)
        text = (
            f"The retro on “{retro.theme}” has closed: {result.answered} people answered. "
            f"Now the vote: {len(result.proposals)} proposals, {VOTES_EACH} votes each, until {closes}."
        )
        return Reply(
            text,
            card=Card(f"Retro — {shorten(retro.theme, 80)}", (), tuple(lines)),
            choices=(Choice("Vote", f"retro vote {retro.id}", "primary"),),
            action=COMMAND_ACTION,
        )
    return Reply(
        f"The retro on “{retro.theme}” has closed: {result.answered} people answered. "
        f"Too few Design proposals reached {threshold} people for a vote.",
        card=Card(f"Retro — {shorten(retro.theme, 80)}", (), tuple(lines)),
    )


def commitments_reply(retro: Retro, done: list[tuple[RetroProposal, Person, date]]) -> Reply:
    if not done:
        return Reply(f"The retro on “{retro.theme}” is finished; no commitment was taken on this time.")
    lines = tuple(f"“{shorten(p.text, 200)}” — {owner.name}, by {due:%a} {due.day} {due:%b}" for p, owner, due in done)
    return Reply(
        f"The retro on “{retro.theme}” is finished. The team's commitments:",
        card=Card("Commitments", (), lines),
    )


def follow_up_reply(retro: Retro, proposal: RetroProposal, due: date) -> Reply:
    return Reply(
        f"From the retro on “{shorten(retro.theme, 80)}”: “{shorten(proposal.text, 200)}” was due "
        f"{due:%a} {due.day} {due:%b}. Has it helped the team? (Only the counts are kept.)",
        choices=(
            *(Choice(label, f"retro helped {proposal.id} {value}") for value, label in HELPED.items()),
            Choice("Too early to say", f"retro helped {proposal.id} early"),
        ),
        action=COMMAND_ACTION,
    )


# -- the dialog ------------------------------------------------------------------------------------


class RetroDialog(Dialog):
    name = "retro"
    title = "the retro"
    commands = ("retro",)
    summary = "Appreciative retro: start one for your team, or answer, vote and follow up on one."

    def __init__(self) -> None:
        self.first = "theme"
        self.states = {
            "theme": State(self.theme_prompt, on_text=self.on_theme, on_choice=self.on_theme, max_length=MAX_THEME),
            "setup": State(self.setup_prompt, on_choice=self.on_setup),
            "discover": State(self.ask_prompt, on_text=self.on_answer, on_choice=self.on_answer, max_length=MAX_ANSWER),
            "sign": State(self.sign_prompt, on_choice=self.on_sign),
            "dream": State(self.ask_prompt, on_text=self.on_answer, on_choice=self.on_answer, max_length=MAX_ANSWER),
            "design": State(self.ask_prompt, on_text=self.on_answer, on_choice=self.on_answer, max_length=MAX_ANSWER),
            "ballot": State(self.ballot_prompt, on_choice=self.on_ballot),
            "owner": State(self.owner_prompt, on_choice=self.on_owner),
            "due": State(self.due_prompt, on_choice=self.on_due),
            "stop": State(self.stop_prompt, on_choice=self.on_stop),
        }

    async def begin(self, turn: Turn, args: str) -> Transition:
        words = args.split()
        verb = words[0].lower() if words else ""
        if verb == "answer" and len(words) == 2:
            return await self._start_answering(turn, words[1])
        if verb == "vote" and len(words) == 2:
            return await self._start_voting(turn, words[1])
        if verb == "commit" and len(words) == 2:
            return await self._start_choosing(turn, words[1])
        if verb == "stop" and len(words) == 2:
            return await self._stopping(turn, words[1])
        if verb == "helped" and len(words) == 3:
            return await self._helped(turn, words[1], words[2].lower())
        if verb == "allow" and len(words) == 2 and words[1].lower() in ("members", "managers"):
            return await self._allow(turn, words[1].lower() == "members")
        if verb:
            raise UserFacingError(
                "*retro* starts a retro for your team; *retro answer ID*, *retro vote ID* and *retro stop ID* work "
                "on one; a manager can type *retro allow members* to let anyone in the team start one."
            )
        if not await may_start(turn.session, turn.person, manager=turn.role.manager):
            raise UserFacingError(
                "In your team a retro is started by its manager. They can let anyone start one with "
                "*retro allow members*."
            )
        assert turn.person.team_id is not None
        if await self._running(turn.session, turn.person.team_id) is not None:
            raise UserFacingError("Your team has a retro running already; one at a time.")
        turn.data.update(window="1w", threshold=FLOOR)
        return "theme"

    async def _running(self, session: AsyncSession, team_id: int) -> Retro | None:
        return (
            await session.scalars(
                select(Retro).where(
                    col(Retro.team_id) == team_id,
                    col(Retro.status).in_(("collecting", "closing", "voting", "counting")),
                )
            )
        ).first()

    async def _allow(self, turn: Turn, members: bool) -> Transition:
        if turn.person.team_id is None or not (turn.role.manager or turn.role.admin):
            raise UserFacingError("Only a manager decides who in their team may start a retro.")
        await queries.upsert(
            turn.session, RetroPolicy, {"team_id": turn.person.team_id}, {"members_may_start": members}
        )
        turn.say("Anyone in your team can now start a retro." if members else "Only managers start retros now.")
        return END

    # -- starting --------------------------------------------------------------------------------

    def theme_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "What should the retro be about? In your team's words, e.g. “how we handled the Q3 launch”.",
            choices=(Choice("Cancel", "__cancel"),),
            input=TextInput("how we handled…", MAX_THEME, False),
        )

    async def on_theme(self, turn: Turn, value: str) -> Transition:
        if value == "__cancel":
            turn.say("Cancelled; nobody was asked anything.")
            return END
        theme = " ".join(value.split())
        if len(theme) < 3:
            raise UserFacingError("A few words, please: what should the team look back on?")
        turn.data["theme"] = theme
        return "setup"

    async def setup_prompt(self, turn: Turn) -> Reply:
        window = "one week" if turn.data["window"] == "1w" else "two weeks"
        return Reply(
            f"A retro on “{turn.data['theme']}”, open for {window}. Everyone in the team is asked privately; a theme or "
            f"quote is shown only when at least {turn.data['threshold']} people share it, and nobody sees an answer "
            "before the close.",
            choices=(
                Choice("Start", "start", "primary"),
                Choice("Two weeks" if turn.data["window"] == "1w" else "One week", "window"),
                Choice("Raise the threshold", "raise"),
                Choice("Cancel", "cancel"),
            ),
        )

    async def on_setup(self, turn: Turn, value: str) -> Transition:
        if value == "cancel":
            turn.say("Cancelled; nobody was asked anything.")
            return END
        if value == "window":
            turn.data["window"] = "2w" if turn.data["window"] == "1w" else "1w"
            return "setup"
        if value == "raise":
            turn.data["threshold"] = min(turn.data["threshold"] + 1, 10)
            return "setup"
        if value != "start":
            return None
        team_id = turn.person.team_id
        assert team_id is not None
        if await self._running(turn.session, team_id) is not None:
            raise UserFacingError("Your team has a retro running already; one at a time.")
        members = list(
            await turn.session.scalars(
                select(Person).where(col(Person.team_id) == team_id, col(Person.active).is_(True))
            )
        )
        retro = Retro(
            team_id=team_id,
            started_by_id=_id(turn.person),
            theme=turn.data["theme"],
            threshold=max(FLOOR, turn.data["threshold"]),
            opens_at=turn.now,
            closes_at=turn.now + WINDOWS[turn.data["window"]],
            created_at=turn.now,
        )
        turn.session.add(retro)
        await turn.session.flush()
        for member in members:
            turn.session.add(RetroParticipant(retro_id=_id(retro), person_id=_id(member)))
        turn.say(
            f"Started. {len(members)} people are asked, each in their own time; it closes {_day(retro.closes_at, turn.person)}. "
            f"*retro stop {retro.id}* stops it."
        )
        return END

    # -- answering -------------------------------------------------------------------------------

    async def _participant(self, turn: Turn, raw: str) -> tuple[Retro, RetroParticipant]:
        retro_id = queries.as_id(raw)
        retro = await turn.session.get(Retro, retro_id) if retro_id is not None else None
        row = None
        if retro is not None:
            row = (
                await turn.session.scalars(
                    select(RetroParticipant).where(
                        col(RetroParticipant.retro_id) == retro.id, col(RetroParticipant.person_id) == turn.person.id
                    )
                )
            ).first()
        if retro is None or row is None:
            raise UserFacingError("You're not asked to take part in that retro.")
        return retro, row

    async def _start_answering(self, turn: Turn, raw: str) -> Transition:
        retro, _ = await self._participant(turn, raw)
        if retro.status == "stopped":
            raise UserFacingError("That retro was stopped, so it takes no answers.")
        if retro.status != "collecting" or turn.now >= retro.closes_at:
            raise UserFacingError("That retro has closed for answers.")
        turn.data.update(retro=retro.id, theme=retro.theme, threshold=retro.threshold)
        return "discover"

    async def ask_prompt(self, turn: Turn) -> Reply:
        stage = turn.state.state or "discover"
        number = STAGES.index(stage) + 1
        drafted = (await anonymity.draft(turn, answers_scope(turn.data["retro"]), stage)).get(stage, {})
        so_far = (drafted.get("text") or "").strip()
        choices = (Choice("Keep my answer", "__keep", "primary"),) if so_far else ()
        text = f"{number} of 3 — {questions(turn.data['theme'])[stage]}"
        if so_far:
            text += f"\nYour answer so far: “{shorten(so_far, 300)}” — type a new one to replace it."
        if number == 1 and not so_far:
            text += (
                f" (A theme or quote is shown only when at least {turn.data['threshold']} people share it; "
                "you can skip any question.)"
            )
        return Reply(
            text, choices=(*choices, Choice("Skip", "__skip")), input=TextInput("In your words…", MAX_ANSWER, True)
        )

    async def on_answer(self, turn: Turn, value: str) -> Transition:
        stage = turn.state.state or "discover"
        where = answers_scope(turn.data["retro"])
        await self._still_open(turn)
        following = {"discover": "dream", "dream": "design", "design": END}[stage]
        if value == "__keep":
            pass
        elif value == "__skip" or value.strip().casefold() == "skip":
            await anonymity.keep_answer(turn, where, stage, {"text": ""})
        else:
            await anonymity.keep_answer(turn, where, stage, {"text": value.strip(), "signed": False})
            if stage == "discover":
                return "sign"
        if following == END:
            return await self._finish_answers(turn)
        return following

    async def _still_open(self, turn: Turn) -> Retro:
        retro = await turn.session.get(Retro, turn.data["retro"])
        if retro is None or retro.status != "collecting" or turn.now >= retro.closes_at:
            turn.data.clear()
            raise UserFacingError("That retro has closed for answers; what you had saved is in.")
        return retro

    def sign_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "Would you like to sign that story? Signed, it is shown with your name in the team's story log. "
            "Otherwise it stays anonymous and is quoted only inside a theme enough people share.",
            choices=(Choice("Keep it anonymous", "anonymous", "primary"), Choice("Sign it with my name", "sign")),
        )

    async def on_sign(self, turn: Turn, value: str) -> Transition:
        await self._still_open(turn)
        if value == "sign":
            where = answers_scope(turn.data["retro"])
            story = (await anonymity.draft(turn, where, "discover")).get("discover", {})
            await anonymity.keep_answer(turn, where, "discover", {**story, "signed": True})
            turn.say("Signed: it will carry your name.")
        return "dream"

    async def _finish_answers(self, turn: Turn) -> Transition:
        retro = await self._still_open(turn)
        drafted = await anonymity.draft(turn, answers_scope(_id(retro)))
        gave = any((drafted.get(s) or {}).get("text") for s in STAGES)
        await turn.session.execute(
            update(RetroParticipant)
            .where(col(RetroParticipant.retro_id) == retro.id, col(RetroParticipant.person_id) == turn.person.id)
            .values(answered=gave)
        )
        turn.data.clear()
        if gave:
            turn.say(
                f"Thank you — saved and sealed until the retro closes {_day(retro.closes_at, turn.person)}. "
                f"You can change your answers until then: *retro answer {retro.id}*."
            )
        else:
            turn.say(
                f"Nothing saved — that's fine. *retro answer {retro.id}* if you think of something before it closes."
            )
        return END

    # -- voting ----------------------------------------------------------------------------------

    async def _start_voting(self, turn: Turn, raw: str) -> Transition:
        retro, _ = await self._participant(turn, raw)
        if retro.status != "voting" or (retro.vote_closes_at and turn.now >= retro.vote_closes_at):
            raise UserFacingError("That retro's vote isn't open.")
        turn.data.update(retro=retro.id)
        return "ballot"

    async def _picks(self, turn: Turn) -> list[int]:
        drafted = (await anonymity.draft(turn, ballots_scope(turn.data["retro"]), "ballot")).get("ballot", {})
        return list(drafted.get("picks") or [])

    async def ballot_prompt(self, turn: Turn) -> Reply:
        proposals = list(
            await turn.session.scalars(
                select(RetroProposal)
                .where(col(RetroProposal.retro_id) == turn.data["retro"])
                .order_by(col(RetroProposal.number))
            )
        )
        picks = await self._picks(turn)
        lines = [f"{'✓ ' if p.number in picks else ''}{p.number}. {shorten(p.text, 200)}" for p in proposals]
        return Reply(
            f"Pick up to {VOTES_EACH} proposals ({len(picks)} chosen). Votes are sealed until the vote closes; "
            "only the totals are ever kept.\n" + "\n".join(lines),
            choices=(
                *(Choice(f"{'✓ ' if p.number in picks else ''}{p.number}", f"p:{p.number}") for p in proposals),
                Choice("Done", "done", "primary"),
            ),
        )

    async def on_ballot(self, turn: Turn, value: str) -> Transition:
        retro = await turn.session.get(Retro, turn.data["retro"])
        if retro is None or retro.status != "voting" or (retro.vote_closes_at and turn.now >= retro.vote_closes_at):
            turn.data.clear()
            raise UserFacingError("The vote has closed; the votes you had saved are counted.")
        picks = await self._picks(turn)
        if value == "done":
            await turn.session.execute(
                update(RetroParticipant)
                .where(col(RetroParticipant.retro_id) == retro.id, col(RetroParticipant.person_id) == turn.person.id)
                .values(voted=bool(picks))
            )
            turn.data.clear()
            turn.say(
                f"{len(picks)} vote{'s' if len(picks) != 1 else ''} saved, sealed until the vote closes "
                f"{_day(retro.vote_closes_at or turn.now, turn.person)}. *retro vote {retro.id}* to change them."
            )
            return END
        number = queries.as_int(value.removeprefix("p:"), 1, MAX_PROPOSALS)
        if number is None:
            return None
        if number in picks:
            picks.remove(number)
        elif len(picks) >= VOTES_EACH:
            raise UserFacingError(f"{VOTES_EACH} votes each: take one back first (press a ✓ one).")
        else:
            picks.append(number)
        await anonymity.keep_answer(turn, ballots_scope(_id(retro)), "ballot", {"picks": sorted(picks)})
        return "ballot"

    # -- commitments -----------------------------------------------------------------------------

    async def _start_choosing(self, turn: Turn, raw: str) -> Transition:
        retro_id = queries.as_id(raw)
        retro = await turn.session.get(Retro, retro_id) if retro_id is not None else None
        if retro is None or not await may_manage(turn.session, retro, turn.person):
            raise UserFacingError(
                "Only whoever started that retro, a manager in its team or an admin chooses its commitments."
            )
        if retro.status != "choosing":
            raise UserFacingError("That retro has no commitments to choose right now.")
        proposals = list(
            await turn.session.scalars(
                select(RetroProposal).where(col(RetroProposal.retro_id) == retro.id).order_by(col(RetroProposal.number))
            )
        )
        if any(p.votes is not None for p in proposals):
            ranked = sorted((p for p in proposals if p.votes), key=lambda p: (-(p.votes or 0), p.number))[:TOP]
        else:  # too few voters for totals: the starter chooses among all of them
            ranked = proposals
        turn.data.update(retro=retro.id, queue=[p.id for p in ranked if not p.chosen], taken=0)
        if not turn.data["queue"]:
            return await self._finish_choosing(turn)
        return "owner"

    async def _current(self, turn: Turn) -> RetroProposal:
        proposal = await turn.session.get(RetroProposal, turn.data["queue"][0])
        assert proposal is not None
        return proposal

    async def owner_prompt(self, turn: Turn) -> Reply:
        proposal = await self._current(turn)
        people = await participants(turn.session, turn.data["retro"])
        votes = f" — {proposal.votes} votes" if proposal.votes is not None else ""
        return Reply(
            f"“{shorten(proposal.text, 300)}”{votes}. Who will own it?",
            choices=(
                *(Choice(p.name, str(p.id)) for p in people[:9]),
                Choice("Not this one", "__skip"),
                Choice("Stop choosing", "__stop"),
            ),
        )

    async def on_owner(self, turn: Turn, value: str) -> Transition:
        if value == "__stop":
            return await self._finish_choosing(turn)
        if value == "__skip":
            turn.data["queue"] = turn.data["queue"][1:]
            return "owner" if turn.data["queue"] else await self._finish_choosing(turn)
        owner_id = queries.as_id(value)
        if owner_id is None or owner_id not in {p.id for p in await participants(turn.session, turn.data["retro"])}:
            raise UserFacingError("Please pick someone from the team.")
        turn.data["owner"] = owner_id
        return "due"

    def due_prompt(self, turn: Turn) -> Reply:
        return Reply("By when?", choices=tuple(Choice(f"In {weeks} weeks", str(weeks)) for weeks in DUE_WEEKS))

    async def on_due(self, turn: Turn, value: str) -> Transition:
        weeks = queries.as_int(value, 1, 12)
        if weeks is None:
            return None
        retro = await turn.session.get(Retro, turn.data["retro"])
        owner = await turn.session.get(Person, turn.data["owner"])
        proposal = await self._current(turn)
        if retro is None or owner is None or retro.status != "choosing":
            turn.data.clear()
            raise UserFacingError("Those commitments have been chosen already.")
        due = turn.local_now.date() + timedelta(weeks=weeks)
        item = ActionItem(
            owner_id=_id(owner),
            created_by_id=_id(turn.person),
            text=proposal.text,
            due_on=due,
            source="retro",
            created_at=turn.now,
        )
        turn.session.add(item)
        await turn.session.flush()
        proposal.chosen, proposal.action_item_id = True, item.id
        turn.session.add(proposal)
        if owner.id != turn.person.id:
            turn.tell(
                owner,
                f"From the team's retro on “{shorten(retro.theme, 80)}”, you own: “{shorten(proposal.text, 200)}”, "
                f"by {due:%a} {due.day} {due:%b}. It's on your action items (and your 1:1 agenda).",
                key=f"retro-owner:{proposal.id}",
            )
        turn.data["queue"] = turn.data["queue"][1:]
        turn.data["taken"] += 1
        return "owner" if turn.data["queue"] else await self._finish_choosing(turn)

    async def _finish_choosing(self, turn: Turn) -> Transition:
        retro = await turn.session.get(Retro, turn.data["retro"])
        assert retro is not None
        claimed = await turn.session.execute(
            update(Retro).where(col(Retro.id) == retro.id, col(Retro.status) == "choosing").values(status="done")
        )
        turn.data.clear()
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            turn.say("That retro is finished already.")
            return END
        done = []
        for proposal in await turn.session.scalars(
            select(RetroProposal).where(col(RetroProposal.retro_id) == retro.id, col(RetroProposal.chosen).is_(True))
        ):
            item = await turn.session.get(ActionItem, proposal.action_item_id)
            owner = await turn.session.get(Person, item.owner_id) if item else None
            if item and owner and item.due_on:
                done.append((proposal, owner, item.due_on))
        reply = commitments_reply(retro, done)
        for person in await participants(turn.session, _id(retro)):
            if person.id == turn.person.id:
                continue
            turn.tell(person, reply, key=f"retro-commitments:{retro.id}:{person.id}")
        team = await turn.session.get(Team, retro.team_id)
        if team is not None and team.broadcast and (team.broadcast_address or {}).get("channel"):
            address = dict(team.broadcast_address)
            turn.post(address.pop("platform", "local"), address, reply, key=f"retro-commitments:{retro.id}:channel")
        turn.say(f"Done: {len(done)} commitment{'s' if len(done) != 1 else ''}; the team is told.")
        return END

    # -- follow-up, stopping ---------------------------------------------------------------------

    async def _helped(self, turn: Turn, raw: str, value: str) -> Transition:
        proposal = await turn.session.get(RetroProposal, raw[:32])
        if proposal is None or value not in (*HELPED, "early"):
            raise UserFacingError("I can't find that commitment.")
        await self._participant(turn, str(proposal.retro_id))
        if value == "early":
            turn.say("Understood; thanks.")
            return END
        if proposal.helped_counted_on is not None:
            raise UserFacingError("Those answers have been counted already — thank you.")
        # Sealed until the scheduler counts every answer at once (`count_helped`): an increment here would share
        # this turn's transaction, which ties the answer to the person for anyone reading row versions or the WAL.
        await anonymity.keep_answer(turn, helped_scope(proposal.id), "helped", {"helped": value})
        turn.say("Thank you. Answers are counted together when the question closes; you can change yours until then.")
        return END

    async def _stopping(self, turn: Turn, raw: str) -> Transition:
        retro_id = queries.as_id(raw)
        retro = await turn.session.get(Retro, retro_id) if retro_id is not None else None
        if retro is None or not await may_manage(turn.session, retro, turn.person):
            raise UserFacingError("Only whoever started that retro, a manager in its team or an admin can stop it.")
        if retro.status not in ("collecting", "voting"):
            raise UserFacingError("That retro isn't running, so there's nothing to stop.")
        turn.data.update(retro=retro.id)
        return "stop"

    def stop_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "Stop this retro? Every answer and vote not yet released is deleted unread; nothing more is asked.",
            choices=(Choice("Stop it", "stop", "danger"), Choice("Keep it going", "keep")),
        )

    async def on_stop(self, turn: Turn, value: str) -> Transition:
        retro_id = turn.data.get("retro")
        turn.data.clear()
        if value != "stop":
            turn.say("Kept going; nothing changed.")
            return END
        stopped = await turn.session.execute(
            update(Retro)
            .where(col(Retro.id) == retro_id, col(Retro.status).in_(("collecting", "voting")))
            .values(status="stopped")
        )
        if stopped.rowcount != 1:  # type: ignore[attr-defined]
            turn.say("It has moved on meanwhile; nothing was stopped.")
            return END
        assert isinstance(retro_id, int)
        # Drafts go now; a conversation still answering it is told it has closed at its next turn (clearing
        # conversations here would also rewrite this turn's own state under it).
        await turn.session.execute(
            delete(SealedDraft).where(col(SealedDraft.scope).in_((answers_scope(retro_id), ballots_scope(retro_id))))
        )
        turn.checkpoint = True
        turn.say("Stopped. Whatever was drafted is deleted unread.")
        return END
