"""A person's overview ("home"): next check-in, open goals, feedback requests, a manager's team, an admin's delivery problems.

Platform-neutral: it returns a `Reply` (text, a card, buttons that stand for
commands). Slack shows it as the App Home tab; any other surface may show it
as a message. Read-only, and short: each list shows at most `MAX_ITEMS` and
says how many more there are; an empty section is left out.

Goal status is said about the work's schedule ("a little behind schedule"),
never about the person (DOMAIN.md §4). Delivery problems name the platform's
error only — never a message's content, which can hold feedback.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.common.absence import away_ranges
from dialogs.common.agenda import first_name, pairs_of, peek
from dialogs.common.cadence import local_label
from dialogs.common.manners import HELD_DAYS, held_summary, on_leave
from dialogs.common.periods import Rhythm, period_of, week_label
from dialogs.common.wording import shorten
from dialogs.engine import COMMAND_ACTION
from dialogs.engine.clock import tz
from dialogs.engine.messages import Card, Choice, Reply
from dialogs.goals import latest_updates, open_goals, status_of
from storage import queries
from storage.db import Database
from storage.deliveries import failure_reasons
from storage.models import CheckinRun, FeedbackRequest, Goal, GoalUpdate, Person, Team

MAX_ITEMS = 5  # goals or feedback requests listed before "…and N more"
TITLE_LENGTH = 120
TOPIC_LENGTH = 80
PROBLEM_DAYS = 7  # an admin sees deliveries that failed for good in this many days
TOP_REASONS = 3
# Where a goal stands against the time elapsed (dialogs.goals.status_of): words about the schedule of the work.
SCHEDULE = {"green": "on track", "amber": "a little behind schedule", "red": "well behind schedule"}
RAG_ORDER = {"red": 0, "amber": 1, "green": 2}


def _when(moment: datetime, zone_name: str) -> str:
    local = moment.astimezone(tz(zone_name))
    return f"{local:%A %-d %B, %H:%M} ({zone_name})"


async def overview(db: Database, person_id: int, now: datetime) -> Reply | None:
    """The overview for the person with `person_id`, read in one transaction; None when there is no such person."""

    async def read(session: AsyncSession) -> Reply | None:
        person = await session.get(Person, person_id)
        return await home(session, person, now) if person is not None else None

    return await db.run(read)


async def home(session: AsyncSession, person: Person, now: datetime) -> Reply:
    """The overview for `person` at `now` (aware UTC), times in the person's own zone.

    Buttons carry commands (`action` = COMMAND_ACTION): the check-in, *goals*,
    *ask answer ID* for each listed feedback request, *dashboard* for an admin
    with delivery problems, and *help*.
    """
    first = person.name.split(" ")[0] or person.name
    fields: list[tuple[str, str]] = []
    lines: list[str] = []
    choices: list[Choice] = []
    team = await session.get(Team, person.team_id) if person.team_id is not None else None
    if team is None:
        fields.append(("Check-ins", "You're not in a team with check-ins yet."))
    else:
        rhythm = Rhythm.of(team)
        send = rhythm.current_send(now, person.timezone)
        period = period_of(send, person.timezone)
        closes = rhythm.close_after(send, person.timezone)
        run = await _run(session, person.id, period)
        fields.append(("Next check-in", _when(rhythm.next_send(now, person.timezone), person.timezone)))
        if run is not None and run.status == "answered":
            editable = now < closes
            status = "Answered ✓" + (f" — you can change it until {_when(closes, person.timezone)}" if editable else "")
            if editable:
                choices.append(Choice("Review my check-in", "checkin"))
        elif run is not None and run.status == "skipped":
            status = "Skipped"
            choices.append(Choice("Answer it after all", "checkin", "primary"))
        else:
            status = "Not answered yet"
            choices.append(Choice("Answer my check-in", "checkin", "primary"))
        fields.append((f"This period ({week_label(period)})", status))
    next_one = await _next_one_on_one(session, person, now)
    if next_one:
        fields.append(("Next 1:1", next_one))
        choices.append(Choice("My 1:1", "1:1"))
    goal_lines = await _goals(session, person, now)
    if goal_lines:
        lines.extend(goal_lines)
        choices.append(Choice("My goals", "goals"))
    request_lines, request_choices = await _requests(session, person, now)
    lines.extend(request_lines)
    choices.extend(request_choices)
    reports = await queries.reports_of(session, person.id) if person.id is not None else []
    if reports:
        answered, asked, report_lines = await _participation(session, reports, now)
        away = f", {len(reports) - asked} away or not asked" if asked < len(reports) else ""
        fields.append(("Your team this period", f"{answered} of {asked} answered{away}"))
        lines.append("*Your team this period*")
        lines.extend(report_lines)
    held = await held_summary(session, person.id, now) if person.id is not None else None
    if held:
        fields.append((f"Held for you in the last {HELD_DAYS} days", held))
    if person.is_admin:
        problems = await _delivery_problems(session, now)
        if problems:
            fields.append(("Delivery problems", problems))
            choices.append(Choice("Open the dashboard", "dashboard"))
    choices.append(Choice("Help", "help"))
    return Reply(
        f"Hi {first}, here's where things stand.",
        card=Card("Your overview", tuple(fields), tuple(lines)),
        choices=tuple(choices),
        action=COMMAND_ACTION,
    )


async def _next_one_on_one(session: AsyncSession, person: Person, now: datetime) -> str | None:
    """'Maya, Tue 8 Dec 10:00' — the soonest of the person's 1:1s, read without creating anything."""
    soonest: tuple[datetime, str] | None = None
    for pair, other in await pairs_of(session, person):
        manager = person if pair.manager_id == person.id else other
        _, when = await peek(session, pair, manager, now)
        if soonest is None or when < soonest[0]:
            soonest = (when, first_name(other))
    if soonest is None:
        return None
    return f"{soonest[1]}, {local_label(soonest[0], person.timezone)}"


def _one_line(text: str, limit: int) -> str:
    return shorten(" ".join(text.split()), limit)


def _more(shown: int, total: int, tail: str) -> list[str]:
    return [f"…and {total - shown} more{tail}"] if total > shown else []


async def _goals(session: AsyncSession, person: Person, now: datetime) -> list[str]:
    """A heading and one line per open goal (own and team), those furthest behind schedule first."""
    goals = await open_goals(session, person) if person.id is not None else []
    if not goals:
        return []
    today = now.astimezone(tz(person.timezone)).date()
    latest = await latest_updates(session, [g.id for g in goals if g.id is not None])
    ranked = []
    for goal in goals:
        update = latest.get(goal.id)  # type: ignore[arg-type]
        rag = status_of(goal, update.progress, today).rag if update is not None and goal.due_date is not None else None
        ranked.append((RAG_ORDER.get(rag or "", 3), goal.due_date or date.max, goal.id or 0, goal, update, rag))
    ranked.sort(key=lambda item: item[:3])
    lines = [f"*Your goals* ({len(goals)} open)"]
    for *_, goal, update, rag in ranked[:MAX_ITEMS]:
        lines.append("• " + _goal_line(goal, update, rag, today, team=goal.owner_id != person.id))
    return lines + _more(min(len(goals), MAX_ITEMS), len(goals), " — type *goals* to see them all.")


def _goal_line(goal: Goal, update: GoalUpdate | None, rag: str | None, today: date, *, team: bool) -> str:
    """Title, progress and where the work stands against the time elapsed — never a word about the person."""
    marks = [
        m
        for m, on in (("team goal", team), ("aspirational", not goal.committed), ("learning goal", goal.learning))
        if on
    ]
    title = _one_line(goal.title, TITLE_LENGTH) + (f" ({', '.join(marks)})" if marks else "")
    if update is None:
        state = "no progress recorded yet"
    else:
        state = f"{update.progress:.0%} of the way"
        if rag is not None:
            state += f", {SCHEDULE[rag]}"
    if goal.due_date is None:
        due = "no due date"
    else:
        due = f"due {goal.due_date:%-d %b}" + (f" {goal.due_date:%Y}" if goal.due_date.year != today.year else "")
    return f"{title} — {state} · {due}"


async def _requests(session: AsyncSession, person: Person, now: datetime) -> tuple[list[str], list[Choice]]:
    """Feedback requests waiting for `person`'s answer: open, before their deadline, from someone still in Baton.

    Answered, declined and expired requests are not listed, nor an open one
    whose deadline has passed (the tick marks it expired; answers are refused).
    """
    if person.id is None:
        return [], []
    rows = list(
        await session.execute(
            select(FeedbackRequest, Person)
            .join(Person, Person.id == FeedbackRequest.requester_id)
            .where(
                FeedbackRequest.responder_id == person.id,
                FeedbackRequest.status == "open",
                FeedbackRequest.deadline > now,
                Person.active.is_(True),
            )
            .order_by(FeedbackRequest.deadline, FeedbackRequest.id)
        )
    )
    if not rows:
        return [], []
    zone = tz(person.timezone)
    lines = [f"*Feedback requests waiting for your answer* ({len(rows)}, times in {person.timezone})"]
    choices = []
    for request, requester in rows[:MAX_ITEMS]:
        topic = _one_line(request.topic, TOPIC_LENGTH)
        lines.append(
            f"• {requester.name} asks for feedback on “{topic}” — by {request.deadline.astimezone(zone):%a %-d %b, %H:%M}"
        )
        given = requester.name.split(" ")[0] or requester.name
        choices.append(Choice(_one_line(f"Answer {given}: {request.topic}", 40), f"ask answer {request.id}"))
    return lines + _more(
        min(len(rows), MAX_ITEMS), len(rows), ", due later — each request in your messages has its own buttons."
    ), choices


async def _delivery_problems(session: AsyncSession, now: datetime) -> str | None:
    """For admins: how many messages failed for good in the last days, and the commonest error names."""
    reasons = await failure_reasons(session, now - timedelta(days=PROBLEM_DAYS))
    if not reasons:
        return None
    total = sum(count for _, count in reasons)
    top = ", ".join(f"{name} ({count})" for name, count in reasons[:TOP_REASONS])
    others = len(reasons) - TOP_REASONS
    if others > 0:
        top += f" and {others} other reason{'s' if others != 1 else ''}"
    messages = "message" if total == 1 else "messages"
    return (
        f"{total} {messages} in the last {PROBLEM_DAYS} days could not be delivered: {top}. "
        "The dashboard's Deliveries page lists them — type *dashboard* for a link."
    )


async def _run(session: AsyncSession, person_id: int | None, period: str) -> CheckinRun | None:
    statement = select(CheckinRun).where(CheckinRun.person_id == person_id, CheckinRun.period == period)
    return (await session.execute(statement)).scalars().first()


async def _participation(session: AsyncSession, reports: list[Person], now: datetime) -> tuple[int, int, list[str]]:
    """How many reports answered their own open period, of how many were asked (not those away or in no team
    with check-ins), and one line each."""
    team_ids = {r.team_id for r in reports if r.team_id is not None}
    teams = (
        {t.id: t for t in (await session.execute(select(Team).where(Team.id.in_(team_ids)))).scalars()}
        if team_ids
        else {}
    )
    periods, checkin_days = {}, {}
    for report in reports:
        team = teams.get(report.team_id)
        if team is not None:
            send = Rhythm.of(team).open_send(now, report.timezone)
            periods[report.id] = period_of(send, report.timezone)
            checkin_days[report.id] = send.astimezone(tz(report.timezone)).date()
    # Away on their check-in day (typed leave, calendar, status, holiday): not asked, so not "not answered".
    away = (
        await away_ranges(session, list(checkin_days), min(checkin_days.values()), max(checkin_days.values()))
        if checkin_days
        else {}
    )
    runs = {}
    if periods:
        rows = await session.execute(
            select(CheckinRun).where(
                CheckinRun.person_id.in_(list(periods)), CheckinRun.period.in_(set(periods.values()))
            )
        )
        runs = {(r.person_id, r.period): r for r in rows.scalars()}
    answered, not_asked, lines = 0, 0, []
    for report in reports:
        period = periods.get(report.id)
        run = runs.get((report.id, period)) if period else None
        if period is None:
            state = "not in a team with check-ins"
            not_asked += 1
        elif run is not None and run.status == "answered":
            state = "answered ✓"
            answered += 1
        elif run is not None and run.status == "skipped":
            state = "skipped this week"
        elif on_leave(away.get(report.id, []), checkin_days[report.id]):
            state = "away"
            not_asked += 1
        else:
            state = "not answered yet"
        lines.append(f"• {report.name}: {state}")
    return answered, len(reports) - not_asked, lines
