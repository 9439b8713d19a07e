""" "Which tool helps?": diagnose the influence behind a performance gap and suggest tools.

The manager names the person and describes the gap. Baton ranks the six
influences from the text and from signals in its own data, asks only the few
diagnostic questions that separate the top candidates (environment first,
after Mager & Pipe), skipping what signals already answer, and suggests the
three cheapest, fastest tools for the diagnosed influence — adjusted by how
they worked here before. A chosen tool becomes a plan with a follow-up; the
outcome feeds future rankings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.catalogue import Catalogue, RankedTool, load_catalogue, rank_tools
from dialogs.catalogue.text import score_influences
from dialogs.common.signals import Signal, gather
from dialogs.common.wording import shorten, verdicts, without_names
from dialogs.engine import END, Dialog, State, Transition, Turn
from dialogs.engine.errors import UserFacingError
from dialogs.engine.messages import Choice, Reply, TextInput
from storage import queries
from storage.models import Person, Team, ToolPlan

MAX_GAP = 1500
MAX_QUESTIONS = 3
CANDIDATES = 3

# The diagnostic question for each influence, for a manager (about {name}) and for a person about themselves.
# `problem` is the answer that confirms the influence is at play.
QUESTIONS: dict[str, tuple[str, str, str]] = {
    "expectations": (
        "Does {name} know exactly what good looks like here — the goal, the standard, the priority?",
        "Do you know exactly what good looks like here — the goal, the standard, the priority?",
        "no",
    ),
    "resources": (
        "Does {name} have what the work needs — tools, time, access, nothing in the way?",
        "Do you have what the work needs — tools, time, access, nothing in the way?",
        "no",
    ),
    "feedback": (
        "Can {name} see how well it's going, soon enough to adjust?",
        "Can you see how well it's going, soon enough to adjust?",
        "no",
    ),
    "motivations": (
        "Is doing it well unrewarded or even punished for {name} — or doing it badly easier?",
        "Is doing it well unrewarded or even punished — or doing it badly easier?",
        "yes",
    ),
    "training": (
        "Could {name} do it well if it really mattered — have they done it well before?",
        "Could you do it well if it really mattered — have you done it well before?",
        "no",
    ),
    "job_fit": (
        "With the other fixes in place, would a different task or assignment suit {name} better?",
        "With the other fixes in place, would a different task or assignment suit you better?",
        "yes",
    ),
}
ORDER = ("expectations", "resources", "feedback", "motivations", "training", "job_fit")  # Mager & Pipe §2
FOLLOW_UPS = {"1w": timedelta(weeks=1), "2w": timedelta(weeks=2), "4w": timedelta(weeks=4)}
# Ways of naming one's own team as the subject ("tools the whole team").
TEAM_WORDS = frozenset({"team", "the team", "my team", "whole team", "the whole team", "our team", "everyone"})
# A gap description that says the person is new: Training's "new in role" signal, which also rules out
# tools for a skill that has faded (a skill never learnt cannot fade).
_NEW_IN_ROLE = re.compile(
    r"\b(?:new\s+(?:hire|hires|starter|starters|joiner|joiners|recruit|recruits|grad|graduate|"
    r"in\s+(?:the\s+|her\s+|his\s+|their\s+)?(?:role|job|team|position))|just\s+(?:joined|started)|"
    r"joined\s+(?:us\s+)?(?:last|this)\s+(?:week|month)|(?:first|second)\s+(?:week|weeks|month|months)\s+"
    r"(?:here|in|on)|onboarding|recently\s+(?:hired|joined))\b",
    re.IGNORECASE,
)


def team_label(team: Team) -> str:
    """How a team is named in a sentence: "the Platform team" (or "the Platform Team")."""
    return f"the {team.name}" if team.name.casefold().endswith("team") else f"the {team.name} team"


def text_facts(gap: str) -> set[str]:
    """What the description itself establishes (see dialogs.catalogue.FACTS)."""
    return {"new_in_role"} if _NEW_IN_ROLE.search(gap) else set()


@lru_cache(maxsize=4)
def catalogue(extra: str | None = None) -> Catalogue:
    """The shipped catalogue plus an organisation's own file (BATON_CATALOGUE), validated once."""
    return load_catalogue(Path(extra) if extra else None)


@dataclass(frozen=True, slots=True)
class RankedInfluence:
    id: str
    name: str
    score: float
    text_evidence: tuple[str, ...]
    signals: tuple[Signal, ...]
    tool_ids: tuple[str, ...] = ()  # tools of this influence whose cues the text matched


def rank_influences(cat: Catalogue, gap: str, signals: list[Signal]) -> list[RankedInfluence]:
    """Text scores plus signal weights, best first; ties go to the influence checked first (environment)."""
    by_id = {s.id: s for s in score_influences(gap, cat)}
    ranked = []
    for influence in cat.influences:
        text = by_id.get(influence.id)
        own = tuple(s for s in signals if s.influence == influence.id)
        score = min(1.0, (text.score if text else 0.0) + sum(s.weight for s in own))
        evidence = tuple(str(e) for e in text.evidence[:3]) if text else ()
        tool_ids = tuple(text.tool_ids) if text else ()
        ranked.append(RankedInfluence(influence.id, influence.name, round(score, 3), evidence, own, tool_ids))
    return sorted(ranked, key=lambda r: (-r.score, ORDER.index(r.id)))


async def outcomes(session: AsyncSession, influence: str) -> dict[str, tuple[int, int]]:
    """(worked, tried) per tool for gaps of this influence, across the organisation ("partly" counts half)."""
    rows = await session.execute(
        select(ToolPlan.tool_id, ToolPlan.outcome, func.count())
        .where(ToolPlan.influence == influence, ToolPlan.outcome.is_not(None))
        .group_by(ToolPlan.tool_id, ToolPlan.outcome)
    )
    tally: dict[str, list[float]] = {}
    for tool_id, outcome, count in rows:
        worked_tried = tally.setdefault(tool_id, [0.0, 0])
        worked_tried[0] += count if outcome == "yes" else count / 2 if outcome == "partly" else 0
        worked_tried[1] += count
    return {tool_id: (int(worked), int(tried)) for tool_id, (worked, tried) in tally.items()}


async def suggest(
    session: AsyncSession,
    cat: Catalogue,
    influence: str,
    *,
    fit: tuple[str, ...] = (),
    signals: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    facts: frozenset[str] = frozenset(),
) -> list[RankedTool]:
    """The three tools to offer: those that fit the gap first (their cues matched the text, or their
    signals are present), cheapest and fastest — and best proven here — within each group. A tool
    whose "helps when" contradicts what the diagnosis established (`facts`) is never offered."""
    ranked = rank_tools(cat, influence, outcomes=await outcomes(session, influence), limit=None)
    fits = set(fit)
    present = set(signals) | facts

    def fitting(r: RankedTool) -> bool:
        return r.tool.id in fits or bool(set(r.tool.signals) & present)

    candidates = [r for r in ranked if r.tool.id not in exclude and not r.tool.contradicted_by(facts)]
    return ([r for r in candidates if fitting(r)] + [r for r in candidates if not fitting(r)])[:3]


class ToolsDialog(Dialog):
    name = "tools"
    title = '"which tool helps?"'
    commands = ("tools",)
    summary = "Which tool helps? Describe a performance gap and get the cheapest fixes that fit."

    def __init__(self, catalogue_file: str | None = None) -> None:
        self.catalogue_file = catalogue_file
        self.first = "gap"
        self.states = {
            "who": State(self.who_prompt, on_text=self.on_who, on_choice=self.on_who, max_length=254),
            "gap": State(self.gap_prompt, on_text=self.on_gap, max_length=MAX_GAP),
            "reframe": State(self.reframe_prompt, on_text=self.on_gap, on_choice=self.on_reframe, max_length=MAX_GAP),
            "ask": State(self.ask_prompt, on_choice=self.on_ask),
            "pick": State(self.pick_prompt, on_choice=self.on_pick),
            "none": State(self.none_prompt, on_choice=self.on_none),
            "more": State(self.more_prompt, on_text=self.on_more, max_length=MAX_GAP),
            "when": State(self.when_prompt, on_choice=self.on_when),
            "note": State(self.note_prompt, on_text=self.on_note, on_choice=self.on_note, max_length=1000),
        }

    @property
    def cat(self) -> Catalogue:
        return catalogue(self.catalogue_file)

    # -- entry: whose work -------------------------------------------------------------------

    async def begin(self, turn: Turn, args: str) -> Transition:
        words = args.split()
        if words[:1] == ["outcome"] and len(words) == 3:
            return await self._outcome(turn, words[1], words[2])
        if words and "@" in words[0]:
            return await self._about(turn, words[0])
        if words:
            return await self._about_team(turn, args)
        if turn.role.manager or turn.role.admin:
            return "who"
        turn.data.update(person=turn.person.id, name=None, team=None)
        return "gap"

    async def _about(self, turn: Turn, email: str) -> Transition:
        person = await queries.person_by_email(turn.session, email)
        if person is None:
            raise UserFacingError("I don't know anyone with that email here.")
        if person.id != turn.person.id and not (person.manager_id == turn.person.id or turn.person.is_admin):
            raise UserFacingError("You can ask about your own work, or as their manager about your direct reports.")
        self_help = person.id == turn.person.id
        turn.data.update(person=person.id, name=None if self_help else person.name.split(" ")[0], team=None)
        return "gap"

    async def _about_team(self, turn: Turn, text: str) -> Transition:
        """A whole team as the subject: "the whole team", or a team's name; its manager or an admin may ask."""
        wanted = " ".join(text.casefold().split())
        team: Team | None = None
        if wanted in TEAM_WORDS:
            reports = await queries.reports_of(turn.session, turn.person.id)
            team_id = turn.person.team_id or next((p.team_id for p in reports if p.team_id), None)
            team = await turn.session.get(Team, team_id) if team_id else None
        else:
            rows = await turn.session.execute(select(Team).where(func.lower(Team.name) == wanted.removesuffix(" team")))
            team = rows.scalars().first()
        if team is None:
            raise UserFacingError(
                "I don't know that team. Type *tools* and pick someone, or *tools name@example.com*, "
                "or *tools the whole team*."
            )
        manages = await turn.session.scalar(
            select(func.count())
            .select_from(Person)
            .where(Person.team_id == team.id, Person.manager_id == turn.person.id)
        )
        if not (manages or turn.person.is_admin):
            raise UserFacingError("You can ask about a team you manage.")
        turn.data.update(person=turn.person.id, name=team_label(team), team=team.id)
        return "gap"

    async def who_prompt(self, turn: Turn) -> Reply:
        reports = await queries.reports_of(turn.session, turn.person.id)
        team = (
            Choice("The whole team", "__team") if reports or turn.person.team_id else None
        )  # a team can be the subject too
        return Reply(
            "Whose work is this about? Pick someone, or type their email.",
            choices=(
                *tuple(Choice(p.name, p.email) for p in reports[:8]),
                *((team,) if team else ()),
                Choice("My own work", turn.person.email),
            ),
            input=TextInput("name@example.com, or a team's name", 254, False),
        )

    async def on_who(self, turn: Turn, value: str) -> Transition:
        value = value.strip()
        if value == "__team":
            return await self._about_team(turn, "team")
        if "@" in value:
            return await self._about(turn, value)
        return await self._about_team(turn, value)

    # -- the gap -----------------------------------------------------------------------------

    def gap_prompt(self, turn: Turn) -> Reply:
        name = turn.data.get("name")
        if name:
            text = f"What's the gap with {name}'s work? Describe what happens versus what should happen, as concretely as you can."
        else:
            text = "What's getting in the way of your work? Describe what happens versus what you'd like to happen."
        return Reply(text, input=TextInput("What happens, and what should happen instead…", MAX_GAP, True))

    async def on_gap(self, turn: Turn, text: str) -> Transition:
        if len(text.split()) < 3:
            raise UserFacingError("Could you say a little more — what happens, and what should happen instead?")
        if not turn.data.get("reframed") and verdicts(text):
            turn.data.update(reframed=True, draft=text)  # asked once per conversation
            return "reframe"
        return await self._analyse(turn, text)

    def reframe_prompt(self, turn: Turn) -> Reply:
        found = verdicts(turn.data["draft"])
        words = " and ".join(f"“{w}”" for w in found[:2])
        subject = turn.data.get("name") or "you"
        return Reply(
            f"{words[0].upper()}{words[1:]} describe{'s' if len(found) == 1 else ''} {subject} rather than the work, "
            f"and I can't diagnose from {'it' if len(found) == 1 else 'them'}. Could you describe what {subject} "
            f"do{'es' if subject != 'you' else ''}, or doesn't do, that you'd like to change? "
            "For example: “missed the Friday release cut-off three times since October”.",
            choices=(Choice("Use what I wrote", "__asis"),),
            input=TextInput("What can be seen or counted…", MAX_GAP, True),
        )

    async def on_reframe(self, turn: Turn, value: str) -> Transition:
        return await self._analyse(turn, turn.data["draft"]) if value == "__asis" else None

    async def _names(self, turn: Turn) -> list[str]:
        """Names that may appear in the description: whoever it is about, the asker, the team's members."""
        names = [turn.person.name]
        if turn.data.get("team"):
            rows = await turn.session.execute(select(Person.name).where(Person.team_id == turn.data["team"]))
            names += list(rows.scalars())
        else:
            person = await turn.session.get(Person, turn.data["person"])
            names += [person.name] if person else []
        return names

    async def _analyse(self, turn: Turn, text: str) -> Transition:
        """Read the description (names taken out: they are never evidence), then ask or conclude.

        Answers already given in this conversation (when the gap is described more) still hold."""
        signals: list[Signal] = []
        if not turn.data.get("team"):
            person = await turn.session.get(Person, turn.data["person"])
            assert person is not None
            signals = await gather(turn.session, person, turn.now)
        ranked = rank_influences(self.cat, without_names(text, await self._names(turn)), signals)
        asked: list[list[str]] = turn.data.get("asked") or []
        confirmed = next((i for i, v in asked if v == QUESTIONS[i][2]), None)
        ruled_out = {i for i, v in asked if v not in ("unsure", QUESTIONS[i][2])}
        turn.data.update(
            gap=text,
            ranked=[[r.id, 0.0 if r.id in ruled_out else r.score] for r in ranked],
            fit={r.id: list(r.tool_ids) for r in ranked},
            signals=[[s.id, s.influence, s.evidence, s.settles] for s in signals],
            confirmed=confirmed,
            asked=asked,
        )
        turn.say(self._reading(ranked, signals))
        done = {i for i, _ in asked}
        turn.data["queue"] = [] if confirmed else [q for q in self._questions(ranked, signals) if q not in done]
        return "ask" if turn.data["queue"] else await self._conclude(turn)

    def _reading(self, ranked: list[RankedInfluence], signals: list[Signal]) -> Reply:
        top = [r for r in ranked if r.score > 0][:3]
        if not top:
            lines = ["Nothing in the description points clearly at one influence yet, so I'll ask a few questions."]
        else:
            lines = ["Here's my first reading:"]
            for r in top:
                why = list(r.text_evidence[:2]) + [s.evidence for s in r.signals]
                lines.append(f"• *{r.name}* ({r.score:.2f})" + (f" — {'; '.join(why)}" if why else ""))
        if signals:
            lines.append("Signals I used: " + "; ".join(s.evidence for s in signals) + ".")
        return Reply("\n".join(lines))

    def _questions(self, ranked: list[RankedInfluence], signals: list[Signal]) -> list[str]:
        """The diagnostic questions for the top candidates, environment first, minus those signals settle."""
        candidates = {r.id for r in ranked[:CANDIDATES] if r.score > 0} or set(ORDER[:CANDIDATES])
        settled = {s.influence for s in signals if s.settles}
        if settled & candidates:
            return []  # a strong signal already explains the gap: stop, as Mager & Pipe advise
        return [i for i in ORDER if i in candidates][:MAX_QUESTIONS]

    # -- diagnostic questions ----------------------------------------------------------------

    def ask_prompt(self, turn: Turn) -> Reply:
        influence = turn.data["queue"][0]
        about, self_help, _ = QUESTIONS[influence]
        name = turn.data.get("name")
        return Reply(
            about.format(name=name) if name else self_help,
            choices=(Choice("Yes", "yes"), Choice("No", "no"), Choice("Not sure", "unsure")),
        )

    async def on_ask(self, turn: Turn, value: str) -> Transition:
        if value not in ("yes", "no", "unsure"):
            return None
        queue = list(turn.data["queue"])
        influence = queue.pop(0)
        turn.data["asked"] = turn.data["asked"] + [[influence, value]]
        if value == QUESTIONS[influence][2]:
            turn.data["confirmed"] = influence  # the gap is explained: stop asking
            return await self._conclude(turn)
        if value != "unsure":  # ruled out: it drops below the others
            turn.data["ranked"] = [[i, 0.0 if i == influence else s] for i, s in turn.data["ranked"]]
        turn.data["queue"] = queue
        return "ask" if queue else await self._conclude(turn)

    async def _conclude(self, turn: Turn) -> Transition:
        settled = [s[1] for s in turn.data["signals"] if s[3]]
        influence = turn.data.get("confirmed") or (settled[0] if settled else None)
        if influence is None:
            ranked = sorted(turn.data["ranked"], key=lambda r: (-r[1], ORDER.index(r[0])))
            influence = ranked[0][0]
        facts = {f"{i}:{v}" for i, v in turn.data["asked"] if v in ("yes", "no")}
        facts |= {s[0] for s in turn.data["signals"]} | text_facts(turn.data["gap"])
        turn.data.update(influence=influence, exclude=[], facts=sorted(facts))
        return "pick"

    # -- suggestions and plan ----------------------------------------------------------------

    async def _offer(self, turn: Turn) -> list[RankedTool]:
        return await suggest(
            turn.session,
            self.cat,
            turn.data["influence"],
            fit=tuple(turn.data.get("fit", {}).get(turn.data["influence"], [])),
            signals=tuple(s[0] for s in turn.data.get("signals", [])),
            exclude=tuple(turn.data.get("exclude", [])),
            facts=frozenset(turn.data.get("facts", [])),
        )

    async def pick_prompt(self, turn: Turn) -> Reply:
        influence = self.cat.influence(turn.data["influence"])
        tools = await self._offer(turn)
        turn.data["offered"] = [t.tool.id for t in tools]
        if not tools:
            return Reply(
                f"I have no more tools for *{influence.name}* that fit what you told me.",
                choices=(Choice("Describe it more", "describe"), Choice("Done", "done")),
            )
        lines = [f"This looks like *{influence.name}*: {influence.description}", "Cheapest and fastest first:"]
        for n, ranked in enumerate(tools, 1):
            lines.append(f"{n}. *{ranked.tool.name}* — {ranked.why}")
        return Reply(
            "\n".join(lines) + "\nWhich one will you try?",
            choices=(
                *tuple(Choice(f"{n}. {shorten(t.tool.name, 60)}", t.tool.id) for n, t in enumerate(tools, 1)),
                Choice("None of these", "none"),
            ),
        )

    async def on_pick(self, turn: Turn, value: str) -> Transition:
        if value == "none":
            return "none"
        if value == "describe":
            return "more"
        if value == "done":
            turn.say("No problem. Type *tools* any time to look again.")
            return END
        if value not in turn.data.get("offered", []):
            return None
        turn.data["tool"] = value
        return "when"

    async def none_prompt(self, turn: Turn) -> Reply:
        influence = self.cat.influence(turn.data["influence"])
        turn.data["exclude"] = sorted(set(turn.data.get("exclude", [])) | set(turn.data.get("offered", [])))
        rest = await self._offer(turn)
        choices = (Choice("Show other tools", "more"),) if rest else ()
        return Reply(
            f"Would you like {'the other tools for *' + influence.name + '*, or to ' if rest else 'to '}"
            "describe the gap a little more?",
            choices=(*choices, Choice("Describe it more", "describe"), Choice("Stop here", "done")),
        )

    async def on_none(self, turn: Turn, value: str) -> Transition:
        if value == "more":
            return "pick"
        return await self.on_pick(turn, value) if value in ("describe", "done") else None

    def more_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "Tell me more — what else happens, when, and what has been tried already?",
            input=TextInput("What else happens…", MAX_GAP, True),
        )

    async def on_more(self, turn: Turn, text: str) -> Transition:
        combined = f"{turn.data['gap']}\n{text}"
        if len(combined) > MAX_GAP:
            raise UserFacingError(f"Together that's over {MAX_GAP} characters — could you say it more briefly?")
        return await self._analyse(turn, combined)

    def when_prompt(self, turn: Turn) -> Reply:
        tool = self.cat.get(turn.data["tool"])
        assert tool is not None
        return Reply(
            f"Good choice: *{tool.name}*. {tool.description}\nWhen should I check back on whether it helped?",
            choices=(Choice("In a week", "1w"), Choice("In two weeks", "2w", "primary"), Choice("In a month", "4w")),
        )

    async def on_when(self, turn: Turn, value: str) -> Transition:
        if value not in FOLLOW_UPS:
            return None
        follow_up = turn.now + FOLLOW_UPS[value]
        turn.session.add(
            ToolPlan(
                asked_by_id=turn.person.id,
                person_id=turn.data["person"],
                team_id=turn.data.get("team"),
                gap=turn.data["gap"],
                influence=turn.data["influence"],
                tool_id=turn.data["tool"],
                signals=[s[0] for s in turn.data["signals"]],
                facts=list(turn.data.get("facts", [])),
                created_at=turn.now,
                follow_up_at=follow_up,
            )
        )
        local = follow_up.astimezone(turn.local_now.tzinfo)
        turn.say(f"Planned. I'll ask you on {local:%A %d %B} whether it helped.")
        return END

    # -- follow-up ---------------------------------------------------------------------------

    async def _outcome(self, turn: Turn, plan_id: str, outcome: str) -> Transition:
        number = queries.as_id(plan_id)
        plan = await turn.session.get(ToolPlan, number) if number is not None else None
        if plan is None or plan.asked_by_id != turn.person.id or outcome not in ("yes", "partly", "no"):
            raise UserFacingError("That follow-up isn't yours or no longer exists.")
        if plan.status == "closed":
            turn.say("You've already told me how that went — thanks.")
            return END
        plan.outcome, plan.outcome_at, plan.status = outcome, turn.now, "closed"
        turn.session.add(plan)
        # What comes next: the tools whose cues fit the same description, minus every tool already
        # tried for this person (or team) and influence, and minus what the diagnosis ruled out.
        tried = await turn.session.execute(
            select(ToolPlan.tool_id).where(
                ToolPlan.asked_by_id == turn.person.id,
                ToolPlan.person_id == plan.person_id,
                ToolPlan.influence == plan.influence,
                ToolPlan.team_id == plan.team_id if plan.team_id else ToolPlan.team_id.is_(None),
            )
        )
        turn.data.update(
            plan=plan.id,
            influence=plan.influence,
            person=plan.person_id,
            team=plan.team_id,
            gap=plan.gap,
            signals=[[signal, "", "", False] for signal in plan.signals],
            facts=list(plan.facts or []),
            exclude=sorted({plan.tool_id, *tried.scalars()}),
        )
        names = await self._names(turn)
        text = next(r for r in score_influences(without_names(plan.gap, names), self.cat) if r.id == plan.influence)
        turn.data["fit"] = {plan.influence: list(text.tool_ids)}
        return "note"

    def note_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "Thanks — that will shape what I suggest here next time. Anything worth noting for next time? (optional)",
            choices=(Choice("Skip", "__skip"),),
            input=TextInput("What made the difference, or what got in the way…", 1000, True),
        )

    async def on_note(self, turn: Turn, value: str) -> Transition:
        plan = await turn.session.get(ToolPlan, turn.data["plan"])
        assert plan is not None
        if value != "__skip":
            plan.outcome_note = value
            turn.session.add(plan)
        if plan.outcome == "yes":
            turn.say("Noted. Glad it helped.")
            return END
        turn.say("Noted. Here are other tools for the same influence.")
        return "pick"


def follow_up_reply(plan: ToolPlan, tool_name: str, follow_up: str, subject: str | None) -> Reply:
    """The message that asks whether a planned tool helped."""
    about = f" for {subject}" if subject else ""
    return Reply(
        f"A while ago you chose *{tool_name}*{about} (“{shorten(plan.gap, 90)}”). {follow_up}",
        choices=(
            Choice("Yes", f"tools outcome {plan.id} yes", "primary"),
            Choice("Partly", f"tools outcome {plan.id} partly"),
            Choice("No", f"tools outcome {plan.id} no"),
        ),
        action="cmd",
    )


async def due_follow_ups(session: AsyncSession, now: datetime) -> list[tuple[ToolPlan, Person, str | None]]:
    """Plans whose follow-up time has come and that were not asked about yet, with who asked and
    whom it is about as said in the question ("Tom", "the Platform team"; None for the asker's own work)."""
    rows = await session.execute(select(ToolPlan).where(ToolPlan.status == "planned", ToolPlan.follow_up_at <= now))
    found = []
    for plan in rows.scalars():
        asker, subject = await session.get(Person, plan.asked_by_id), await session.get(Person, plan.person_id)
        if asker is None or subject is None:
            continue
        team = await session.get(Team, plan.team_id) if plan.team_id else None
        about = team_label(team) if team else None if subject.id == asker.id else subject.name.split(" ")[0]
        found.append((plan, asker, about))
    return found
