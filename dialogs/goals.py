"""Goals: metrics or milestones, red/amber/green against elapsed time, escalation on trends, gentle nudges.

Status compares progress (the share of the way from start to target, or of
milestones done) with what is expected by now: the share of the period
elapsed — or, for aspirational goals, 65% of it, since stretch goals expect
60–70% attainment. Escalation to the manager needs a deteriorating trend over
several updates or red at consecutive updates; a single dip never escalates.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.common.agenda import discuss_choice
from dialogs.common.wording import shorten
from dialogs.engine import END, Dialog, State, Transition, Turn
from dialogs.engine.clock import tz
from dialogs.engine.errors import UserFacingError
from dialogs.engine.messages import Choice, Reply, TextInput
from storage import queries
from storage.models import Goal, GoalMilestone, GoalUpdate, Person

AMBER_TOLERANCE = 0.10  # up to 10 points behind what's expected: green
RED_TOLERANCE = 0.25  # more than 25 points behind: red
ASPIRATIONAL_TARGET = 0.65
TREND_UPDATES = 3
STALE_DAYS = 14
DUE_SOON_DAYS = 7
NUMBER = re.compile(r"^\s*([-+]?\d+(?:[.,]\d+)?)\s*([^\d\s].*)?$")


@dataclass(frozen=True, slots=True)
class Status:
    progress: float
    expected: float
    rag: str

    @property
    def behind(self) -> float:
        return max(0.0, self.expected - self.progress)


def elapsed(goal: Goal, today: date) -> float:
    if goal.due_date is None or goal.due_date <= goal.start_date:
        return 0.0
    return min(1.0, max(0.0, (today - goal.start_date).days / (goal.due_date - goal.start_date).days))


def status_of(
    goal: Goal, progress: float, today: date, *, amber: float = AMBER_TOLERANCE, red: float = RED_TOLERANCE
) -> Status:
    """Red/amber/green from progress against the share of time elapsed (aspirational: 65% of it)."""
    expected = elapsed(goal, today) * (1.0 if goal.committed else ASPIRATIONAL_TARGET)
    gap = expected - progress
    rag = "green" if gap <= amber else "amber" if gap <= red else "red"
    return Status(round(progress, 4), round(expected, 4), rag)


def progress_of(goal: Goal, value: float) -> float:
    """The share of the way from start to target that `value` stands for (works for 'down' goals too)."""
    if goal.start_value is None or goal.target_value is None or goal.target_value == goal.start_value:
        return 0.0
    return (value - goal.start_value) / (goal.target_value - goal.start_value)


def parse_value(goal: Goal, raw: str) -> float:
    """A number for this goal, in its unit. Raises UserFacingError for a wrong unit or an impossible number."""
    match = NUMBER.match(raw.replace("\u2212", "-"))
    if not match:
        raise UserFacingError(f"That needs a number{f' in {goal.unit}' if goal.unit else ''}, like *{_example(goal)}*.")
    number = float(match.group(1).replace(",", "."))
    unit = (match.group(2) or "").strip()
    if unit and unit.casefold() != goal.unit.casefold():
        raise UserFacingError(
            f"This goal is measured in {goal.unit or 'plain numbers'}, not {shorten(unit, 40)}. Nothing was recorded."
        )
    if not math.isfinite(number):
        raise UserFacingError("That isn't a number I can record.")
    if goal.unit == "%" and not -1000 <= number <= 1000:
        raise UserFacingError("A percentage that large can't be right. Nothing was recorded.")
    if goal.start_value is not None and goal.target_value is not None:
        span = abs(goal.target_value - goal.start_value)
        if abs(number - goal.start_value) > 100 * max(span, 1e-9):  # a hundred times the whole range: a typo
            raise UserFacingError("That's far outside the goal's range — a typo? Nothing was recorded.")
    return number


def doubtful(goal: Goal, value: float) -> str | None:
    """Why a value may be a typo worth confirming — it crosses zero or lands far past the target — or None."""
    if goal.kind != "metric" or goal.start_value is None or goal.target_value is None:
        return None
    unit = f" {goal.unit}" if goal.unit and goal.unit != "%" else goal.unit
    if value < 0 <= min(goal.start_value, goal.target_value):
        return f"{value:g}{unit} is below zero, and this goal runs from {goal.start_value:g} to {goal.target_value:g}{unit}"
    progress = progress_of(goal, value)
    if progress > 1.5:
        return f"{value:g}{unit} is well past the target of {goal.target_value:g}{unit}"
    if progress < -0.5:
        return f"{value:g}{unit} is well behind where this goal started ({goal.start_value:g}{unit})"
    return None


def _example(goal: Goal) -> str:
    value = goal.target_value if goal.target_value is not None else 42
    return f"{value:g}{(' ' + goal.unit) if goal.unit and goal.unit != '%' else goal.unit}"


async def record_progress(
    session: AsyncSession,
    goal: Goal,
    value: float,
    *,
    source: str,
    now: datetime,
    today: date,
    recorded_by: int | None = None,
    note: str | None = None,
    close_when_reached: bool = True,
) -> tuple[GoalUpdate, bool]:
    """Store a progress value with its source and time; return it and whether to escalate to the manager.

    A metric goal that reaches its target is marked done, unless `close_when_reached` is False (in chat,
    the person is asked instead)."""
    if goal.kind == "milestones":
        progress = value
    else:
        progress = progress_of(goal, value)
    status = status_of(goal, progress, today)
    update = GoalUpdate(
        goal_id=goal.id,
        value=value,
        progress=status.progress,
        expected=status.expected,
        rag=status.rag,
        source=source[:64],
        note=(note or None) and note[:500],
        recorded_at=now,
        recorded_by_id=recorded_by,
    )
    session.add(update)
    goal.rag = status.rag
    if close_when_reached and goal.kind == "metric" and progress >= 1.0 and goal.status == "active":
        goal.status = "done"
    session.add(goal)
    await session.flush()
    history = list(
        (
            await session.execute(
                select(GoalUpdate)
                .where(GoalUpdate.goal_id == goal.id)
                .order_by(GoalUpdate.recorded_at.desc(), GoalUpdate.id.desc())
                .limit(TREND_UPDATES + 1)
            )
        ).scalars()
    )
    return update, should_escalate(list(reversed(history)))


def should_escalate(history: list[GoalUpdate]) -> bool:
    """A deteriorating trend across several updates, or red at consecutive updates — never a single dip."""
    if len(history) >= 2 and history[-1].rag == "red" and history[-2].rag == "red":
        return True
    if len(history) >= TREND_UPDATES:
        gaps = [u.expected - u.progress for u in history[-TREND_UPDATES:]]
        worsening = all(later > earlier for earlier, later in itertools.pairwise(gaps))
        return worsening and history[-1].rag != "green"
    return False


def escalation_reply(goal: Goal, owner: Person, status: str) -> Reply:
    first = owner.name.split(" ")[0]
    return Reply(
        f"*{goal.title}* ({first}) has been slipping over its last updates and is now {status}. "
        "A conversation about what's in the way usually helps more than a reminder.",
        choices=(Choice("Which tool helps?", f"tools {owner.email}", "primary"),),
        action="cmd",
    )


def describe(goal: Goal, latest: GoalUpdate | None) -> str:
    if latest is None:
        state = "no progress recorded yet"
    else:
        state = f"{latest.progress:.0%} of the way, {latest.rag}"
        if latest.rag != "green":
            state += f", about {max(0, latest.expected - latest.progress):.0%} behind"
    due = f", due {goal.due_date:%d %b}" if goal.due_date else ""
    kind = " (aspirational)" if not goal.committed else " (learning goal)" if goal.learning else ""
    return f"#{goal.id} {goal.title}{kind} — {state}{due}"


async def latest_updates(session: AsyncSession, goal_ids: list[int]) -> dict[int, GoalUpdate]:
    if not goal_ids:
        return {}
    rows = await session.execute(
        select(GoalUpdate).where(GoalUpdate.goal_id.in_(goal_ids)).order_by(GoalUpdate.recorded_at, GoalUpdate.id)
    )
    return {u.goal_id: u for u in rows.scalars()}


async def may_update(session: AsyncSession, person: Person, goal: Goal) -> bool:
    """Owners, their managers, team members (for team goals) and admins may record progress."""
    if person.is_admin or goal.owner_id == person.id or goal.created_by_id == person.id:
        return True
    if goal.team_id is not None and goal.team_id == person.team_id:
        return True
    if goal.owner_id is not None:
        owner = await session.get(Person, goal.owner_id)
        return owner is not None and owner.manager_id == person.id
    return False


class GoalsDialog(Dialog):
    name = "goals"
    title = "your goals"
    commands = ("goals", "goal")
    summary = "Your goals: see them, record progress, create one, see how they align."

    def __init__(self) -> None:
        self.first = "list"
        self.states = {
            "list": State(self.list_prompt, on_choice=self.on_list),
            "pick": State(self.pick_prompt, on_choice=self.on_pick),
            "value": State(self.value_prompt, on_text=self.on_value, on_choice=self.on_value, max_length=64),
            "title": State(self.title_prompt, on_text=self.on_title, max_length=200),
            "kind": State(self.kind_prompt, on_choice=self.on_kind),
            "metric": State(self.metric_prompt, on_text=self.on_metric, max_length=80),
            "milestones": State(self.milestones_prompt, on_text=self.on_milestones, max_length=1000),
            "due": State(self.due_prompt, on_text=self.on_due, on_choice=self.on_due, max_length=20),
            "commit": State(self.commit_prompt, on_choice=self.on_commit),
            "new_to_me": State(self.new_to_me_prompt, on_choice=self.on_new_to_me),
            "doubt": State(self.doubt_prompt, on_choice=self.on_doubt),
            "reached": State(self.reached_prompt, on_choice=self.on_reached),
        }

    async def begin(self, turn: Turn, args: str) -> Transition:
        words = args.split()
        verb = words[0].lower() if words else ""
        if verb == "new":
            return "title"
        verbs = ("update", "tree", "stop", "snooze", "undo", "reopen")
        if verb in verbs and len(words) >= 2 and words[1].lstrip("#").isdigit():
            goal_id = queries.as_id(words[1].lstrip("#"))
            if goal_id is None:
                raise UserFacingError(
                    f"There's no goal #{shorten(words[1].lstrip('#'), 12)}. Type *goals* to see yours."
                )
            goal = await self._goal(turn, goal_id)
            turn.data["goal"] = goal.id
            if verb == "undo":
                return await self._undo(turn, goal)
            if verb == "reopen":
                goal.status = "active"
                turn.session.add(goal)
                turn.say(f"*{goal.title}* is open again.")
                return END
            if verb == "tree":
                turn.say(await self._tree(turn, goal))
                return END
            if verb == "stop":
                goal.nudges_off = True
                turn.session.add(goal)
                turn.say(
                    f"I won't nudge you about *{goal.title}* any more. Type *goal update {goal.id} VALUE* whenever you like."
                )
                return END
            if verb == "snooze":
                goal.snoozed_until = turn.now + timedelta(days=7)
                turn.session.add(goal)
                turn.say(f"OK, no nudges about *{goal.title}* for a week.")
                return END
            if len(words) >= 3:
                return await self._record(turn, goal, " ".join(words[2:]))
            return "value"
        return "list"

    async def _goal(self, turn: Turn, goal_id: int) -> Goal:
        goal = await turn.session.get(Goal, goal_id)
        if goal is None or not await may_update(turn.session, turn.person, goal):
            raise UserFacingError("I can't find that goal among yours.")
        return goal

    async def _mine(self, turn: Turn) -> list[Goal]:
        return await open_goals(turn.session, turn.person)

    async def list_prompt(self, turn: Turn) -> Reply:
        goals = await self._mine(turn)
        latest = await latest_updates(turn.session, [g.id for g in goals])
        if not goals:
            return Reply(
                "You have no open goals yet.", choices=(Choice("New goal", "new", "primary"), Choice("Done", "done"))
            )
        lines = [describe(g, latest.get(g.id)) for g in goals]
        return Reply(
            "Your goals:\n" + "\n".join(lines),
            choices=(Choice("Record progress", "update", "primary"), Choice("New goal", "new"), Choice("Done", "done")),
        )

    async def on_list(self, turn: Turn, value: str) -> Transition:
        if value == "done":
            return END
        if value == "new":
            return "title"
        if value == "update":
            return "pick"
        return None

    async def pick_prompt(self, turn: Turn) -> Reply:
        goals = await self._mine(turn)
        return Reply("Which goal?", choices=tuple(Choice(f"#{g.id} {g.title[:60]}", str(g.id)) for g in goals[:9]))

    async def on_pick(self, turn: Turn, value: str) -> Transition:
        goal = await self._goal(turn, int(value))
        turn.data["goal"] = goal.id
        return "value"

    async def value_prompt(self, turn: Turn) -> Reply:
        goal = await turn.session.get(Goal, turn.data["goal"])
        assert goal is not None
        if goal.kind == "milestones":
            milestones = list(
                (
                    await turn.session.execute(
                        select(GoalMilestone).where(GoalMilestone.goal_id == goal.id).order_by(GoalMilestone.position)
                    )
                ).scalars()
            )
            return Reply(
                f"Which milestone of *{goal.title}* is done?",
                choices=tuple(Choice(m.title[:70], str(m.id)) for m in milestones if m.done_at is None)[:9],
            )
        return Reply(
            f"Where does *{goal.title}* stand now? (from {goal.start_value:g} to {goal.target_value:g} {goal.unit})",
            input=TextInput(_example(goal), 64, False),
        )

    async def on_value(self, turn: Turn, value: str) -> Transition:
        goal = await turn.session.get(Goal, turn.data["goal"])
        assert goal is not None
        return await self._record(turn, goal, value)

    async def _record(self, turn: Turn, goal: Goal, raw: str) -> Transition:
        if goal.kind == "milestones":
            milestone_id = queries.as_id(raw.strip())
            milestone = await turn.session.get(GoalMilestone, milestone_id) if milestone_id else None
            if milestone is None or milestone.goal_id != goal.id:
                raise UserFacingError("Please pick one of the milestones above.")
            milestone.done_at = milestone.done_at or turn.now
            turn.session.add(milestone)
            await turn.session.flush()
            total = await turn.session.scalar(
                select(func.count()).select_from(GoalMilestone).where(GoalMilestone.goal_id == goal.id)
            )
            done = await turn.session.scalar(
                select(func.count())
                .select_from(GoalMilestone)
                .where(GoalMilestone.goal_id == goal.id, GoalMilestone.done_at.is_not(None))
            )
            value = (done or 0) / max(total or 1, 1)
        else:
            value = parse_value(goal, raw)
            why = doubtful(goal, value)
            if why and turn.data.get("sure") != raw:
                turn.data.update(doubt=why, raw=raw)
                return "doubt"
        update, escalate = await record_progress(
            turn.session,
            goal,
            value,
            source="chat",
            now=turn.now,
            today=turn.local_now.date(),
            recorded_by=turn.person.id,
            close_when_reached=False,
        )
        undo = f" (Typed the wrong number? *goal undo {goal.id}*.)"
        recorded = f"Recorded. {describe(goal, update)}.{undo if goal.kind == 'metric' else ''}"
        # Off track, its owner may want to steer it with their manager: the same button a nudge carries.
        off_track = update.rag in ("amber", "red") and goal.owner_id == turn.person.id and turn.person.manager_id
        turn.say(Reply(recorded, choices=(discuss_choice(f"goal:{goal.id}"),)) if off_track else recorded)
        if escalate:
            await escalate_goal(turn, goal, update)
        if update.progress >= 1.0 and goal.status == "active":
            return "reached"
        return END

    def doubt_prompt(self, turn: Turn) -> Reply:
        return Reply(
            f"{turn.data['doubt'][0].upper()}{turn.data['doubt'][1:]}. Record it anyway?",
            choices=(
                Choice("Record it", "record", "primary"),
                Choice("Type another value", "again"),
                Choice("Cancel", "cancel"),
            ),
        )

    async def on_doubt(self, turn: Turn, value: str) -> Transition:
        if value == "cancel":
            turn.say("Nothing was recorded.")
            return END
        if value == "again":
            return "value"
        if value != "record":
            return None
        goal = await turn.session.get(Goal, turn.data["goal"])
        assert goal is not None
        turn.data["sure"] = turn.data["raw"]
        return await self._record(turn, goal, turn.data["raw"])

    def reached_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "That reaches the target. Mark the goal done?",
            choices=(Choice("Mark it done", "done", "primary"), Choice("Keep it open", "open")),
        )

    async def on_reached(self, turn: Turn, value: str) -> Transition:
        goal = await turn.session.get(Goal, turn.data["goal"])
        assert goal is not None
        if value == "done":
            goal.status = "done"
            turn.session.add(goal)
            turn.say(f"Done: *{goal.title}*. Well reached. (*goal reopen {goal.id}* opens it again.)")
        else:
            turn.say("Kept open.")
        return END

    async def _undo(self, turn: Turn, goal: Goal) -> Transition:
        """Take back the last progress value this person recorded on the goal, and reopen it if that closed it."""
        last = (
            await turn.session.execute(
                select(GoalUpdate)
                .where(GoalUpdate.goal_id == goal.id)
                .order_by(GoalUpdate.recorded_at.desc(), GoalUpdate.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if last is None or last.recorded_by_id != turn.person.id:
            raise UserFacingError("There's no update of yours to take back on that goal.")
        await turn.session.delete(last)
        await turn.session.flush()
        previous = (await latest_updates(turn.session, [goal.id])).get(goal.id)  # type: ignore[arg-type]
        goal.rag = previous.rag if previous is not None else None
        if goal.status == "done":
            goal.status = "active"
        turn.session.add(goal)
        turn.say(f"Taken back: {last.value:g}. {describe(goal, previous)}.")
        return END

    async def _tree(self, turn: Turn, goal: Goal) -> Reply:
        chain = [goal]
        while chain[0].parent_id is not None and len(chain) < 10:
            parent = await turn.session.get(Goal, chain[0].parent_id)
            if parent is None:
                break
            chain.insert(0, parent)
        children = list((await turn.session.execute(select(Goal).where(Goal.parent_id == goal.id))).scalars())
        lines = [("  " * depth) + ("└ " if depth else "") + g.title for depth, g in enumerate(chain)]
        lines += [("  " * len(chain)) + "└ " + child.title for child in children]
        return Reply("How it aligns:\n" + "\n".join(lines))

    # -- creating a goal -------------------------------------------------------------------

    def title_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "What's the goal? Say what you want to achieve, specifically.",
            input=TextInput("Cut checkout p95 latency to 200 ms", 200, False),
        )

    async def on_title(self, turn: Turn, text: str) -> Transition:
        if len(text) < 4:
            raise UserFacingError("Could you say a bit more about what you want to achieve?")
        turn.data["new"] = {"title": text}
        return "kind"

    def kind_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "How will you measure it?",
            choices=(Choice("A number", "metric", "primary"), Choice("Milestones", "milestones")),
        )

    async def on_kind(self, turn: Turn, value: str) -> Transition:
        turn.data["new"] = {**turn.data["new"], "kind": value}
        return value if value in ("metric", "milestones") else None

    def metric_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "From what to what, in which unit? For example *480 to 200 ms* or *0 to 40 customers*.",
            input=TextInput("480 to 200 ms", 80, False),
        )

    async def on_metric(self, turn: Turn, text: str) -> Transition:
        match = re.match(r"^\s*([-+]?\d+(?:[.,]\d+)?)\s*(?:to|->|→|-)\s*([-+]?\d+(?:[.,]\d+)?)\s*(\S{0,16})\s*$", text)
        if not match:
            raise UserFacingError("Please write it like *480 to 200 ms*.")
        start, target = float(match.group(1).replace(",", ".")), float(match.group(2).replace(",", "."))
        if start == target:
            raise UserFacingError("The target has to differ from where you start.")
        turn.data["new"] = {**turn.data["new"], "start": start, "target": target, "unit": match.group(3)}
        return "due"

    def milestones_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "List the milestones, one per line or separated by semicolons.",
            input=TextInput("Draft; Review; Ship", 1000, True),
        )

    async def on_milestones(self, turn: Turn, text: str) -> Transition:
        items = [m.strip() for m in re.split(r"[;\n]", text) if m.strip()]
        if not 2 <= len(items) <= 12:
            raise UserFacingError("Between 2 and 12 milestones, please.")
        turn.data["new"] = {**turn.data["new"], "milestones": items}
        return "due"

    def due_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "When is it due? (a date like *2027-03-31*)",
            choices=(Choice("No due date", "none"),),
            input=TextInput("2027-03-31", 20, False),
        )

    async def on_due(self, turn: Turn, text: str) -> Transition:
        if text == "none":
            turn.data["new"] = {**turn.data["new"], "due": None}
            turn.say("Noted. A due date makes a goal easier to steer by; you can add one later.")
            return "commit"
        try:
            due = date.fromisoformat(text.strip())
        except ValueError:
            raise UserFacingError("Please write the date like *2027-03-31*.") from None
        if due <= turn.local_now.date():
            raise UserFacingError("The due date should be in the future.")
        turn.data["new"] = {**turn.data["new"], "due": due.isoformat()}
        return "commit"

    def commit_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "Is this a committed goal, or an aspirational stretch (where reaching 60–70% is a good result)?",
            choices=(Choice("Committed", "committed", "primary"), Choice("Aspirational", "aspirational")),
        )

    async def on_commit(self, turn: Turn, value: str) -> Transition:
        turn.data["new"] = {**turn.data["new"], "committed": value == "committed"}
        return "new_to_me"

    def new_to_me_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "Is this new territory — work you haven't done before?",
            choices=(Choice("Yes, it's new", "yes"), Choice("No, I know this work", "no")),
        )

    async def on_new_to_me(self, turn: Turn, value: str) -> Transition:
        new = turn.data["new"]
        goal = Goal(
            owner_id=turn.person.id,
            title=new["title"],
            kind=new["kind"],
            start_value=new.get("start"),
            target_value=new.get("target"),
            unit=new.get("unit", ""),
            start_date=turn.local_now.date(),
            due_date=date.fromisoformat(new["due"]) if new.get("due") else None,
            committed=new.get("committed", True),
            learning=value == "yes",
            created_by_id=turn.person.id,
            created_at=turn.now,
        )
        turn.session.add(goal)
        await turn.session.flush()
        for position, title in enumerate(new.get("milestones", [])):
            turn.session.add(GoalMilestone(goal_id=goal.id, title=title[:200], position=position))
        tip = ""
        if value == "yes":
            tip = (
                " Since it's new territory, I've marked it a *learning goal*: for new, complex work, aiming at what you'll "
                "learn (the approaches to try, the skills to build) tends to work better than aiming at the outcome alone."
            )
        turn.say(
            f"Created goal #{goal.id}: *{goal.title}*.{tip} Record progress any time with *goal update {goal.id} VALUE*."
        )
        return END


async def escalate_goal(turn: Turn, goal: Goal, update: GoalUpdate) -> None:
    """Tell the owner's manager, once per goal per ISO week, with a way into "which tool helps?"."""
    owner = await turn.session.get(Person, goal.owner_id) if goal.owner_id else None
    if owner is None or owner.manager_id is None:
        return
    year, week, _ = turn.now.isocalendar()
    turn.tell(
        owner.manager_id, escalation_reply(goal, owner, update.rag), key=f"goal-escalation:{goal.id}:{year}-W{week:02d}"
    )


def nudge_reply(goal: Goal, reason: str, latest: GoalUpdate | None, today: date, *, discuss: bool = False) -> Reply:
    """A friendly nudge, always with a way out; with `discuss` (the owner has a manager), also "Discuss in
    our 1:1"."""
    if reason == "stale":
        text = f"When you have a minute: *{goal.title}* hasn't had an update for a while. Where does it stand?"
    elif reason == "due":
        behind = f" — about {latest.expected - latest.progress:.0%} behind where it would be on track" if latest else ""
        days = (goal.due_date - today).days if goal.due_date else 0
        text = (
            f"*{goal.title}* is due in {days} day{'s' if days != 1 else ''} and at {latest.progress:.0%}{behind}. Is anything in the way?"
            if latest
            else f"*{goal.title}* is due soon."
        )
    else:
        text = (
            f"*{goal.title}* has no {'number to measure it by' if goal.kind == 'metric' and goal.target_value is None else 'due date'} yet. "
            "Specific goals — a measure and a date — tend to get further than 'do your best' ones."
        )
    return Reply(
        text,
        choices=(
            Choice("Record progress", f"goal update {goal.id}", "primary"),
            Choice("Snooze a week", f"goal snooze {goal.id}"),
            Choice("Stop nudging me about this", f"goal stop {goal.id}"),
            *((discuss_choice(f"goal:{goal.id}"),) if discuss else ()),
        ),
        action="cmd",
    )


async def due_nudges(session: AsyncSession, now: datetime) -> list[tuple[Goal, Person, str, GoalUpdate | None]]:
    """Goals that deserve a nudge now: stale, due soon and behind, or not specific. Keys make each once."""
    rows = await session.execute(
        select(Goal, Person)
        .join(Person, Person.id == Goal.owner_id)
        .where(Goal.status == "active", Goal.nudges_off.is_(False))
    )
    pairs = [(g, p) for g, p in rows if g.snoozed_until is None or g.snoozed_until <= now]
    latest = await latest_updates(session, [g.id for g, _ in pairs])
    found = []
    for goal, owner in pairs:
        today = now.astimezone(tz(owner.timezone)).date()
        last = latest.get(goal.id)
        last_touch = last.recorded_at if last else goal.created_at
        if goal.due_date is None or (goal.kind == "metric" and goal.target_value is None):
            found.append((goal, owner, "specific", last))
        elif last is not None and last.rag != "green" and 0 <= (goal.due_date - today).days <= DUE_SOON_DAYS:
            found.append((goal, owner, "due", last))
        elif now - last_touch >= timedelta(days=STALE_DAYS):
            found.append((goal, owner, "stale", last))
    return found


def nudge_key(goal: Goal, reason: str, now: datetime) -> str:
    if reason == "specific":
        return f"goal-specific:{goal.id}"
    if reason == "due":
        return f"goal-due:{goal.id}:{goal.due_date}"
    year, week, _ = now.isocalendar()
    return f"goal-stale:{goal.id}:{year}-W{week:02d}"


async def open_goals(session: AsyncSession, person: Person) -> list[Goal]:
    """The active goals `person` sees as theirs: their own and their team's, oldest first."""
    rows = await session.execute(
        select(Goal)
        .where(Goal.status == "active")
        .where((Goal.owner_id == person.id) | ((Goal.team_id == person.team_id) & (Goal.team_id.is_not(None))))
        .order_by(Goal.id)
    )
    return list(rows.scalars())


async def person_goals(session: AsyncSession, person_id: int) -> list[Goal]:
    return list(
        (await session.execute(select(Goal).where(Goal.owner_id == person_id, Goal.status == "active"))).scalars()
    )
