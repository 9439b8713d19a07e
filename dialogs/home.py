"""A person's overview ("home"): their next check-in, this period's status, and a manager's team.

Platform-neutral: it returns a `Reply` (text, a card, buttons that stand for
commands). Slack shows it as the App Home tab; any other surface may show it
as a message. Read-only.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.checkin import Rhythm, period_of, week_label
from dialogs.engine import COMMAND_ACTION
from dialogs.manners import tz
from dialogs.messages import Card, Choice, Reply
from storage import queries
from storage.models import CheckinRun, Person, Team


def _when(moment: datetime, zone_name: str) -> str:
    local = moment.astimezone(tz(zone_name))
    return f"{local:%A %-d %B, %H:%M} ({zone_name})"


async def home(session: AsyncSession, person: Person, now: datetime) -> Reply:
    """The overview for `person` at `now` (aware UTC), times in the person's own zone."""
    first = person.name.split(" ")[0] or person.name
    fields: list[tuple[str, str]] = []
    lines: list[str] = []
    choices: list[Choice] = []
    team = await session.get(Team, person.team_id) if person.team_id is not None else None
    if team is None:
        fields.append(("Check-ins", "You're not in a team with check-ins yet."))
    else:
        rhythm = Rhythm.of(team)
        open_send = rhythm.open_send(now, person.timezone)
        period = period_of(open_send, person.timezone)
        closes = rhythm.close_after(open_send, person.timezone)
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
    reports = await queries.reports_of(session, person.id) if person.id is not None else []
    if reports:
        answered, report_lines = await _participation(session, reports, now)
        fields.append(("Your team this period", f"{answered} of {len(reports)} answered"))
        lines.extend(report_lines)
    choices.append(Choice("Help", "help"))
    return Reply(
        f"Hi {first}, here's where things stand.",
        card=Card("Your check-ins", tuple(fields), tuple(lines)),
        choices=tuple(choices),
        action=COMMAND_ACTION,
    )


async def _run(session: AsyncSession, person_id: int | None, period: str) -> CheckinRun | None:
    statement = select(CheckinRun).where(CheckinRun.person_id == person_id, CheckinRun.period == period)
    return (await session.execute(statement)).scalars().first()


async def _participation(session: AsyncSession, reports: list[Person], now: datetime) -> tuple[int, list[str]]:
    """How many reports answered their own open period, and one line each."""
    team_ids = {r.team_id for r in reports if r.team_id is not None}
    teams = {t.id: t for t in (await session.execute(select(Team).where(Team.id.in_(team_ids)))).scalars()} if team_ids else {}
    periods = {}
    for report in reports:
        team = teams.get(report.team_id)
        if team is not None:
            periods[report.id] = period_of(Rhythm.of(team).open_send(now, report.timezone), report.timezone)
    runs = {}
    if periods:
        rows = await session.execute(
            select(CheckinRun).where(CheckinRun.person_id.in_(list(periods)), CheckinRun.period.in_(set(periods.values())))
        )
        runs = {(r.person_id, r.period): r for r in rows.scalars()}
    answered, lines = 0, []
    for report in reports:
        period = periods.get(report.id)
        run = runs.get((report.id, period)) if period else None
        if period is None:
            state = "not in a team with check-ins"
        elif run is not None and run.status == "answered":
            state = "answered ✓"
            answered += 1
        elif run is not None and run.status == "skipped":
            state = "skipped this week"
        else:
            state = "not answered yet"
        lines.append(f"• {report.name}: {state}")
    return answered, lines
