"""Participation and streaks per person and team, for `baton checkin report` and the dashboard.

A person away on a period's check-in day — from any source (typed leave, their
calendar, their status, a public holiday; dialogs/common/absence.py) — or
whose invitation was cancelled because they were away is "away" that period:
not asked, so it neither counts against their participation nor breaks their
streak.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.common.absence import away_ranges
from dialogs.common.manners import on_leave
from dialogs.common.periods import Rhythm, checkin_day, period_of
from dialogs.services.rhythm import previous_periods
from storage.db import Database
from storage.models import CheckinAnswer, CheckinRun, OutboxMessage, Person, Team


@dataclass(frozen=True, slots=True)
class Cell:
    status: str  # answered, skipped, missed, away, not-invited
    pulse: float | None


async def participation(db: Database, team_name: str, weeks: int, now: datetime) -> dict:
    """The team's last `weeks` periods: each person's status and pulse, participation rates and streaks.

    Raises LookupError when the team does not exist.
    """

    async def work(session) -> dict:  # noqa: ANN001
        team = (await session.execute(select(Team).where(Team.name == team_name))).scalars().first()
        if team is None:
            known = ", ".join(sorted((await session.execute(select(Team.name))).scalars())) or "none yet"
            raise LookupError(f"There is no team called {team_name!r} (teams: {known}).")
        people = list(
            (await session.execute(select(Person).where(Person.team_id == team.id).order_by(Person.email))).scalars()
        )
        rhythm = Rhythm.of(team)
        ids = [p.id for p in people]
        latest = await latest_period(session, rhythm, now, "UTC", ids)
        periods = previous_periods(latest, weeks)
        runs = list(
            (
                await session.execute(
                    select(CheckinRun).where(CheckinRun.person_id.in_(ids), CheckinRun.period.in_(periods))
                )
            ).scalars()
        )
        pulses: dict[int, float] = {}
        pulse_ids = {r.id: next((q["id"] for q in r.questions if q.get("feeds") == "pulse"), None) for r in runs}
        if runs:
            for answer in (
                await session.execute(select(CheckinAnswer).where(CheckinAnswer.run_id.in_(list(pulse_ids))))
            ).scalars():
                if pulse_ids.get(answer.run_id) == answer.question_id and answer.number is not None:
                    pulses[answer.run_id] = answer.number
        invited, cancelled = set(), set()
        for person_id, topic, status, error in await session.execute(
            select(OutboxMessage.person_id, OutboxMessage.topic, OutboxMessage.status, OutboxMessage.last_error).where(
                OutboxMessage.person_id.in_(ids), OutboxMessage.topic.in_([f"checkin:{p}" for p in periods])
            )
        ):
            key = (person_id, topic.split(":", 1)[1])
            (cancelled if (status, error) == ("cancelled", "leave") else invited).add(key)
        days = {period: checkin_day(period, rhythm.weekday) for period in periods}
        away = (
            await away_ranges(session, [i for i in ids if i is not None], min(days.values()), max(days.values()))
            if days
            else {}
        )
        by_key = {(r.person_id, r.period): r for r in runs}
        rows = []
        for person in people:
            cells = {}
            for period in periods:
                run = by_key.get((person.id, period))
                if run is not None and run.status in ("answered", "skipped"):
                    cells[period] = Cell(run.status, pulses.get(run.id))
                elif (person.id, period) in cancelled or on_leave(away.get(person.id, []), days[period]):
                    cells[period] = Cell("away", None)
                elif run is not None or (person.id, period) in invited:
                    cells[period] = Cell("missed", None)
                else:
                    cells[period] = Cell("not-invited", None)
            asked = [c for c in cells.values() if c.status in ("answered", "missed")]
            streak = 0
            for period in reversed(periods):
                status = cells[period].status
                if status == "answered":
                    streak += 1
                elif status == "missed":
                    break
            rows.append(
                {
                    "email": person.email,
                    "name": person.name,
                    "participation": round(sum(c.status == "answered" for c in asked) / len(asked), 3)
                    if asked
                    else None,
                    "streak": streak,
                    "periods": {p: {"status": c.status, "pulse": c.pulse} for p, c in cells.items()},
                }
            )
        team_rates = {}
        for period in periods:
            asked = [
                r["periods"][period]["status"] for r in rows if r["periods"][period]["status"] in ("answered", "missed")
            ]
            team_rates[period] = round(asked.count("answered") / len(asked), 3) if asked else None
        return {"team": team.name, "periods": periods, "team_participation": team_rates, "people": rows}

    return await db.run(work)


def as_csv(report: dict) -> str:
    """One row per person and period: team,period,email,name,status,pulse,participation,streak."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["team", "period", "email", "name", "status", "pulse", "participation", "streak"])
    for person in report["people"]:
        for period in report["periods"]:
            cell = person["periods"][period]
            writer.writerow(
                [
                    report["team"],
                    period,
                    person["email"],
                    person["name"],
                    cell["status"],
                    "" if cell["pulse"] is None else f"{cell['pulse']:g}",
                    "" if person["participation"] is None else person["participation"],
                    person["streak"],
                ]
            )
    return out.getvalue()


def as_json(report: dict) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2)


async def latest_period(
    session: AsyncSession, rhythm: Rhythm, now: datetime, zone: str, person_ids: list[int | None]
) -> str:
    """The newest period a report shows: the one sent last — or the coming one once someone has started it
    early (send-now, or `checkin` after the digest), so this week's answers never go missing."""
    sent = period_of(rhythm.open_send(now, zone), zone)
    coming = period_of(rhythm.current_send(now, zone), zone)
    if coming == sent or not person_ids:
        return sent
    started = await session.scalar(
        select(CheckinRun.id).where(CheckinRun.person_id.in_(person_ids), CheckinRun.period == coming).limit(1)
    )
    return coming if started is not None else sent
