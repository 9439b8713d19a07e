"""The dashboard's pages: each builds its tables for one viewer, inside one read transaction.

Authorisation lives here, per page, before anything is read: `Forbidden` is a
403. A page returns `View`; the same tables become CSV (`?csv=key`), so an
export can never show more than its page.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from statistics import mean
from typing import Any

from aiohttp import web
from sqlalchemy import Integer as _INT
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.dashboard.auth import Viewer
from bot.dashboard.charts import line_chart, sparkline
from bot.dashboard.html import Cell, Markup, Table, hidden, join, link, paragraph, tag
from bot.reports import latest_period, participation
from dialogs.checkin import questions_for_team
from dialogs.common.periods import Rhythm, period_of
from dialogs.common.wording import is_nothing, shorten
from dialogs.engine.clock import Clock
from dialogs.engine.sealing import Sealer
from dialogs.review360 import (
    FLOOR,
    GROUP_NAMES,
    INFLUENCE_NAMES,
    answered_raters,
    close_early,
    closing_preview,
    compute_results,
    may_close,
)
from dialogs.services.rhythm import previous_periods
from dialogs.team import DAYS
from dialogs.team import describe as describe_rhythm
from storage.db import Database
from storage.deliveries import failed_deliveries, failure_reasons
from storage.models import (
    Campaign360,
    CheckinAnswer,
    CheckinRun,
    CheckinTemplate,
    FeedbackEntry,
    Goal,
    GoalUpdate,
    Person,
    Rater360,
    Team,
    ToolPlan,
)


@dataclass(frozen=True)
class Site:
    """What the dashboard needs from the running service: its database, its clock, the catalogue to show, and
    the sealer that checks the 1:1 invitation links chat hands out (None: those links are refused)."""

    db: Database
    clock: Clock
    catalogue_path: str | None = None
    sealer: Sealer | None = None


MAX_WEEKS = 26
DELIVERY_DAYS = 30  # failed deliveries shown to admins
DELIVERY_ROWS = 500
AGGREGATE_MINIMUM = FLOOR  # an organisation figure drawn from fewer people would point at individuals


class Forbidden(Exception):
    """The viewer may not see this (a 403 page)."""


class NotFound(Exception):
    """No such thing (a 404 page)."""


@dataclass
class Ctx:
    request: web.Request
    session: AsyncSession
    viewer: Viewer
    now: datetime
    site: Site
    # bot.reports.participation per team name, fetched before this page's transaction opened
    # (SQLite transactions take the write lock, so it cannot run inside one).
    participation: dict[str, dict] = field(default_factory=dict)


@dataclass
class View:
    title: str
    current: str
    parts: list[Any] = field(default_factory=list)  # Markup or Table, in page order
    query: dict[str, str] = field(default_factory=dict)  # kept in CSV links (e.g. weeks=8)

    @property
    def tables(self) -> dict[str, Table]:
        return {p.key: p for p in self.parts if isinstance(p, Table)}


def weeks_of(request: web.Request) -> int:
    return _int(request.query.get("weeks"), default=8, low=1, high=MAX_WEEKS)


def _int(value: str | None, *, default: int, low: int, high: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return min(max(number, low), high)


async def _people(session: AsyncSession, ids: set[int]) -> dict[int, Person]:
    if not ids:
        return {}
    return {p.id: p for p in (await session.execute(select(Person).where(Person.id.in_(ids)))).scalars()}  # type: ignore[misc]


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{value:.0%}"


def _date(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d") if moment else ""


# -- one person: check-ins, goals, feedback received, 360s ---------------------------------------


async def person_page(ctx: Ctx, person_id: int) -> View:
    """A person's own page, or a direct report's for their manager. Feedback only on one's own page."""
    if not ctx.viewer.may_see_person(person_id):
        raise Forbidden
    person = await ctx.session.get(Person, person_id)
    if person is None:
        raise NotFound
    own = person_id == ctx.viewer.id
    weeks = weeks_of(ctx.request)
    view = View(
        "Your dashboard" if own else person.name,
        "/dashboard" if own else "/dashboard/team",
        query={"weeks": str(weeks)},
    )
    if own and ctx.viewer.is_manager:
        view.parts.append(paragraph("Your team: ", link("/dashboard/team", "overview, pulse and blockers"), "."))
    if own and ctx.viewer.is_admin:
        view.parts.append(
            paragraph(
                "Organisation: ",
                link("/dashboard/org", "aggregates"),
                ", ",
                link("/dashboard/settings", "settings"),
                " and ",
                link("/dashboard/deliveries", "delivery problems"),
                ".",
            )
        )
    view.parts.append(await _checkins_table(ctx, person, weeks))
    view.parts.append(await _goals_table(ctx, [person], key="goals", caption="Goals"))
    if own:
        view.parts.append(await _feedback_table(ctx, person))
    view.parts.append(
        await _campaigns_table(ctx, {person.id}, caption="360s about " + ("you" if own else person.name.split(" ")[0]))
    )
    return view


# Feedback kinds as the person who received it would say them (the recipient's point of view).
FEEDBACK_KINDS = {
    "upward": "from a report",
    "downward": "from your manager",
    "peer": "from a colleague",
    "kudos": "kudos",
    "requested": "you asked for it",
}


async def _checkins_table(ctx: Ctx, person: Person, weeks: int) -> Table:
    team = await ctx.session.get(Team, person.team_id) if person.team_id else None
    latest = await latest_period(ctx.session, Rhythm.of(team), ctx.now, person.timezone, [person.id])
    periods = previous_periods(latest, weeks)
    runs = list(
        (
            await ctx.session.execute(
                select(CheckinRun)
                .where(CheckinRun.person_id == person.id, CheckinRun.period.in_(periods))
                .order_by(CheckinRun.period.desc())
            )
        ).scalars()
    )
    answers: dict[int, dict[str, CheckinAnswer]] = defaultdict(dict)
    if runs:
        for answer in (
            await ctx.session.execute(select(CheckinAnswer).where(CheckinAnswer.run_id.in_([r.id for r in runs])))
        ).scalars():
            answers[answer.run_id][answer.question_id] = answer
    table = Table(
        "checkins",
        f"Check-ins, last {weeks} weeks",
        ("Week", "Status", "Question", "Answer"),
        empty="No check-ins in these weeks.",
    )
    for run in runs:
        shown = False
        for question in run.questions:
            answer = answers[run.id].get(question["id"])
            if answer is None:
                continue
            value = answer.text if answer.text is not None else ("" if answer.number is None else f"{answer.number:g}")
            table.rows.append((run.period, run.status, question.get("prompt", question["id"]).replace("*", ""), value))
            shown = True
        if not shown:
            table.rows.append((run.period, run.status, "", ""))
    return table


async def _feedback_table(ctx: Ctx, person: Person) -> Table:
    entries = list(
        (
            await ctx.session.execute(
                select(FeedbackEntry)
                .where(FeedbackEntry.to_id == person.id)
                .order_by(FeedbackEntry.created_at.desc())
                .limit(200)
            )
        ).scalars()
    )
    names = await _people(ctx.session, {e.from_id for e in entries})
    table = Table(
        "feedback", "Feedback you received", ("Date", "From", "Kind", "Feedback"), empty="No feedback received yet."
    )
    for entry in entries:
        sender = names.get(entry.from_id)
        kind = FEEDBACK_KINDS.get(entry.kind, entry.kind)
        table.rows.append((_date(entry.created_at), sender.name if sender else "", kind, entry.text))
    return table


# -- goals ----------------------------------------------------------------------------------------


async def goals_page(ctx: Ctx) -> View:
    """Goals of the viewer, their reports (`?person=` narrows to one), and their teams."""
    wanted = ctx.request.query.get("person")
    if wanted is not None:
        person_id = _int(wanted, default=-1, low=-1, high=2**62)
        if not ctx.viewer.may_see_person(person_id):
            raise Forbidden
        ids = {person_id}
    else:
        ids = {ctx.viewer.id} | set(ctx.viewer.reports)
    people = await _people(ctx.session, ids)
    view = View("Goal board", "/dashboard/goals", query={"person": wanted} if wanted is not None else {})
    view.parts.append(
        paragraph(
            "Status compares progress with the share of time elapsed (aspirational goals: 65% of it). "
            "The trend line shows progress at each update."
        )
    )
    ordered = sorted(people.values(), key=lambda p: (p.id != ctx.viewer.id, p.name))
    own = await _goals_table(ctx, ordered, key="goals", caption="People's goals")
    if ctx.viewer.is_admin and wanted is None and not own.rows and not ctx.viewer.reports:
        own = None  # an admin without reports: the organisation's picture below says more than "no goals"
    if own is not None:
        view.parts.append(own)
    if wanted is None:
        team_ids = {p.team_id for p in people.values() if p.team_id is not None}
        if ctx.viewer.is_admin:
            team_ids |= set((await ctx.session.execute(select(Team.id))).scalars())
            view.parts.append(await _organisation_goals_table(ctx))
        view.parts.append(await _team_goals_table(ctx, team_ids))
    return view


async def _organisation_goals_table(ctx: Ctx) -> Table:
    """For admins: each team's people's goals as counts by status — titles stay with owners and managers."""
    rows = await ctx.session.execute(
        select(Team.name, Goal.status, Goal.rag, func.count())
        .join(Person, Person.team_id == Team.id)
        .join(Goal, Goal.owner_id == Person.id)
        .where(Goal.status != "dropped")
        .group_by(Team.name, Goal.status, Goal.rag)
    )
    tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for team, status, rag, count in rows:
        tally[team]["done" if status == "done" else rag or "no update"] += count
    table = Table(
        "org-goals",
        "Goals across the organisation",
        ("Team", "Open goals", "Green", "Amber", "Red", "No update yet", "Done"),
        empty="Nobody has set a goal yet. People set their own in chat with “goals”.",
    )
    for team in sorted(tally):
        c = tally[team]
        open_goals = c["green"] + c["amber"] + c["red"] + c["no update"]
        table.rows.append((team, open_goals, c["green"], c["amber"], c["red"], c["no update"], c["done"]))
    return table


async def _visible_goal_ids(ctx: Ctx, goals: list[Goal]) -> set[int]:
    """Goals whose title the viewer may read: their own, their reports', and their teams' goals."""
    allowed_people = {ctx.viewer.id} | set(ctx.viewer.reports)
    teams = {p.team_id for p in (await _people(ctx.session, allowed_people)).values() if p.team_id is not None}
    return {g.id for g in goals if g.owner_id in allowed_people or (g.owner_id is None and g.team_id in teams)}  # type: ignore[misc]


async def _goal_rows(ctx: Ctx, goals: list[Goal], owner_name: dict[int, str]) -> list[tuple[Any, ...]]:
    ids = [g.id for g in goals]
    history: dict[int, list[GoalUpdate]] = defaultdict(list)
    if ids:
        for update in (
            await ctx.session.execute(
                select(GoalUpdate).where(GoalUpdate.goal_id.in_(ids)).order_by(GoalUpdate.recorded_at, GoalUpdate.id)
            )
        ).scalars():
            history[update.goal_id].append(update)
    parent_ids = {g.parent_id for g in goals if g.parent_id}
    parents = (
        {p.id: p for p in (await ctx.session.execute(select(Goal).where(Goal.id.in_(parent_ids)))).scalars()}
        if parent_ids
        else {}
    )
    readable = await _visible_goal_ids(ctx, list(parents.values()))
    rows = []
    for goal in goals:
        updates = history.get(goal.id, [])
        latest = updates[-1] if updates else None
        parent = parents.get(goal.parent_id) if goal.parent_id else None
        aligned = "" if parent is None else parent.title if parent.id in readable else f"goal #{parent.id}"
        spark = sparkline([u.progress for u in updates[-12:]], label=f"Progress of {goal.title}")
        trend = Cell(" ".join(f"{u.progress:.0%}" for u in updates[-12:]), spark)
        rag = goal.rag or (latest.rag if latest else "")
        rows.append(
            (
                owner_name.get(goal.owner_id or -1, ""),
                goal.title,
                goal.status,
                Cell(rag, tag("span", rag or "–", class_=f"rag rag-{rag}" if rag else "rag")),
                _pct(latest.progress) if latest else None,
                _pct(latest.expected) if latest else None,
                trend,
                goal.due_date.isoformat() if goal.due_date else "",
                aligned,
            )
        )
    return rows


GOAL_HEADERS = ("Owner", "Goal", "Status", "RAG", "Progress", "Expected", "Trend", "Due", "Aligned to")


async def _goals_table(ctx: Ctx, people: list[Person], *, key: str, caption: str) -> Table:
    ids = [p.id for p in people]
    goals = list(
        (
            await ctx.session.execute(
                select(Goal).where(Goal.owner_id.in_(ids), Goal.status != "dropped").order_by(Goal.owner_id, Goal.id)
            )
        ).scalars()
    )
    order = {pid: i for i, pid in enumerate(ids)}
    goals.sort(key=lambda g: (order.get(g.owner_id, 0), g.id))
    table = Table(key, caption, GOAL_HEADERS, empty="No goals yet — set one in chat with “goals”.")
    table.rows = await _goal_rows(ctx, goals, {p.id: p.name for p in people})  # type: ignore[misc]
    return table


async def _team_goals_table(ctx: Ctx, team_ids: set[int]) -> Table:
    goals = (
        list(
            (
                await ctx.session.execute(
                    select(Goal)
                    .where(Goal.team_id.in_(team_ids), Goal.owner_id.is_(None), Goal.status != "dropped")
                    .order_by(Goal.id)
                )
            ).scalars()
        )
        if team_ids
        else []
    )
    table = Table("team-goals", "Team goals", GOAL_HEADERS, empty="No team goals.")
    table.rows = await _goal_rows(ctx, goals, {})
    teams = (
        {t.id: t.name for t in (await ctx.session.execute(select(Team).where(Team.id.in_(team_ids)))).scalars()}
        if team_ids
        else {}
    )
    table.rows = [(teams.get(g.team_id, ""), *tuple(row[1:])) for g, row in zip(goals, table.rows, strict=True)]  # type: ignore[arg-type]
    return table


# -- team overview (managers) ----------------------------------------------------------------------


async def team_page(ctx: Ctx) -> View:
    """Participation per week, the pulse trend and open blockers of the viewer's direct reports."""
    if not ctx.viewer.is_manager:
        raise Forbidden
    weeks = weeks_of(ctx.request)
    reports = sorted((await _people(ctx.session, set(ctx.viewer.reports))).values(), key=lambda p: p.name)
    view = View("Team overview", "/dashboard/team", query={"weeks": str(weeks)})
    rows, periods = await _participation_rows(ctx, reports, weeks)
    by_email = {p.email: p for p in reports}

    # Participation per week: answered / asked among reports.
    rates = []
    pulses: list[float | None] = []
    for period in periods:
        asked = [
            r["periods"][period]["status"] for r in rows if r["periods"][period]["status"] in ("answered", "missed")
        ]
        rates.append(asked.count("answered") / len(asked) if asked else None)
        values = [r["periods"][period]["pulse"] for r in rows if r["periods"][period]["pulse"] is not None]
        pulses.append(mean(values) if values else None)

    view.parts.append(
        tag(
            "section",
            tag("h2", "Pulse trend", id="pulse-heading"),
            paragraph(
                "Average of the weekly 1–5 pulse (“how was this week for getting your work done?”) across your reports."
            ),
            tag(
                "figure",
                line_chart(periods, pulses, title=f"Team pulse, last {weeks} weeks", chart_id="pulse-chart"),
                class_="chart-box",
            ),
            aria_labelledby="pulse-heading",
        )
    )
    weekly = Table("weekly", "Participation per week", ("Week", "Answered", "Asked", "Participation", "Average pulse"))
    for period, rate, pulse in zip(periods, rates, pulses, strict=True):
        answered = sum(r["periods"][period]["status"] == "answered" for r in rows)
        asked = sum(r["periods"][period]["status"] in ("answered", "missed") for r in rows)
        weekly.rows.append((period, answered, asked, _pct(rate), None if pulse is None else f"{pulse:.1f}"))
    view.parts.append(weekly)

    people = Table("people", "People", ("Person", "Participation", "Streak", "Latest pulse", "Goals", "Page"))
    for row in rows:
        person = by_email[row["email"]]
        latest_pulse = next(
            (row["periods"][p]["pulse"] for p in reversed(periods) if row["periods"][p]["pulse"] is not None), None
        )
        page = f"/dashboard/people/{person.id}"
        people.rows.append(
            (
                person.name,
                _pct(row["participation"]),
                row["streak"],
                None if latest_pulse is None else f"{latest_pulse:g}",
                Cell(f"/dashboard/goals?person={person.id}", link(f"/dashboard/goals?person={person.id}", "Goals")),
                Cell(page, link(page, f"Check-ins of {person.name.split(' ')[0]}")),
            )
        )
    view.parts.append(people)
    view.parts.append(await _blockers_table(ctx, reports, periods))
    return view


async def _participation_rows(ctx: Ctx, people: list[Person], weeks: int) -> tuple[list[dict], list[str]]:
    """bot.reports.participation for each team involved, kept to `people` (never anyone else)."""
    wanted = {p.email for p in people}
    teams = {p.team_id for p in people if p.team_id is not None}
    names = (
        {t.id: t.name for t in (await ctx.session.execute(select(Team).where(Team.id.in_(teams)))).scalars()}
        if teams
        else {}
    )
    rows: list[dict] = []
    periods: list[str] = []
    for team_id in sorted(teams):
        report = ctx.participation.get(names[team_id])
        if report is None:
            continue
        periods = periods or report["periods"]  # teams on other schedules are realigned by period name below
        rows.extend(r for r in report["people"] if r["email"] in wanted)
    if not periods:
        latest = period_of(Rhythm().open_send(ctx.now, "UTC"), "UTC")
        periods = previous_periods(latest, weeks)
    empty = {"status": "not-invited", "pulse": None}
    for row in rows:
        row["periods"] = {p: row["periods"].get(p, empty) for p in periods}
    return rows, periods


async def _blockers_table(ctx: Ctx, people: list[Person], periods: list[str]) -> Table:
    table = Table(
        "blockers",
        "Open blockers (latest check-in)",
        ("Person", "Week", "Blocker"),
        empty="No blockers in the latest check-ins.",
        note="From each person's most recent answered check-in in these weeks.",
    )
    ids = [p.id for p in people]
    if not ids:
        return table
    runs = list(
        (
            await ctx.session.execute(
                select(CheckinRun).where(
                    CheckinRun.person_id.in_(ids), CheckinRun.period.in_(periods), CheckinRun.status == "answered"
                )
            )
        ).scalars()
    )
    latest: dict[int, CheckinRun] = {}
    for run in runs:
        if run.person_id not in latest or run.period > latest[run.person_id].period:
            latest[run.person_id] = run
    if not latest:
        return table
    answers = defaultdict(dict)
    for answer in (
        await ctx.session.execute(
            select(CheckinAnswer).where(CheckinAnswer.run_id.in_([r.id for r in latest.values()]))
        )
    ).scalars():
        answers[answer.run_id][answer.question_id] = answer
    for person in people:
        run = latest.get(person.id)
        if run is None:
            continue
        for question in run.questions:
            if question.get("feeds") != "blockers":
                continue
            answer = answers[run.id].get(question["id"])
            if answer is not None and not is_nothing(answer.text):
                table.rows.append((person.name, run.period, shorten(answer.text or "", 500)))
    return table


async def participation_teams(session: AsyncSession, viewer: Viewer, page: str) -> list[str]:
    """The teams whose participation `page` needs for `viewer` (none when the page will refuse them)."""
    if page == "team" and viewer.is_manager:
        statement = (
            select(Team.name).join(Person, Person.team_id == Team.id).where(Person.id.in_(viewer.reports)).distinct()
        )
    elif page == "org" and viewer.is_admin:
        statement = select(Team.name)
    else:
        return []
    return sorted((await session.execute(statement)).scalars())


async def fetch_participation(site: Site, teams: list[str], weeks: int, now: datetime) -> dict[str, dict]:
    found = {}
    for name in teams:
        try:
            found[name] = await participation(site.db, name, weeks, now)
        except LookupError:  # renamed or removed between the two transactions
            continue
    return found


# -- organisation (admins): aggregates only ---------------------------------------------------------


async def org_page(ctx: Ctx) -> View:
    """Per-team participation and pulse; figures from fewer than three people are withheld."""
    if not ctx.viewer.is_admin:
        raise Forbidden
    weeks = weeks_of(ctx.request)
    view = View("Organisation", "/dashboard/org", query={"weeks": str(weeks)})
    view.parts.append(
        paragraph(
            f"Aggregates only. A figure drawn from fewer than {AGGREGATE_MINIMUM} people is withheld (“–”), "
            "so no number points at one person. Individual check-ins and 360 answers are not shown here."
        )
    )
    teams = list((await ctx.session.execute(select(Team).order_by(Team.name))).scalars())
    table = Table(
        "teams",
        "Participation and pulse per team and week",
        ("Team", "Week", "People asked", "Participation", "Average pulse"),
    )
    org: dict[str, list[float]] = defaultdict(list)
    org_asked: dict[str, list[str]] = defaultdict(list)
    all_periods: list[str] = []
    for team in teams:
        report = ctx.participation.get(team.name)
        if report is None:
            continue
        all_periods = all_periods or report["periods"]
        for period in report["periods"]:
            cells = [r["periods"][period] for r in report["people"]]
            asked = [c["status"] for c in cells if c["status"] in ("answered", "missed")]
            values = [c["pulse"] for c in cells if c["pulse"] is not None]
            org[period].extend(values)
            org_asked[period].extend(asked)
            enough = len(asked) >= AGGREGATE_MINIMUM
            table.rows.append(
                (
                    team.name,
                    period,
                    len(asked),
                    _pct(asked.count("answered") / len(asked)) if enough else None,
                    f"{mean(values):.1f}" if len(values) >= AGGREGATE_MINIMUM else None,
                )
            )
    pulses = [mean(org[p]) if len(org[p]) >= AGGREGATE_MINIMUM else None for p in all_periods]
    if all_periods:
        view.parts.append(
            tag(
                "section",
                tag("h2", "Organisation pulse", id="org-pulse"),
                tag(
                    "figure",
                    line_chart(all_periods, pulses, title="Organisation pulse", chart_id="pulse-chart"),
                    class_="chart-box",
                ),
                aria_labelledby="org-pulse",
            )
        )
    view.parts.append(table)

    goals = Table("goal-status", "Goals by status", ("Team", "Active", "Green", "Amber", "Red", "Done"))
    rows = await ctx.session.execute(
        select(Team.name, Goal.status, Goal.rag, func.count())
        .select_from(Goal)
        .join(Person, Person.id == Goal.owner_id, isouter=True)
        .join(Team, Team.id == func.coalesce(Goal.team_id, Person.team_id), isouter=True)
        .group_by(Team.name, Goal.status, Goal.rag)
    )
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for team_name, status, rag, count in rows:
        bucket = counts[team_name or "(no team)"]
        bucket[status] += count
        if status == "active" and rag:
            bucket[rag] += count
    for name in sorted(counts):
        c = counts[name]
        goals.rows.append((name, c["active"], c["green"], c["amber"], c["red"], c["done"]))
    view.parts.append(goals)

    reviews = Table(
        "360-participation", "360s: participation", ("Status", "Campaigns", "Raters asked", "Answered", "Response rate")
    )
    for status, campaigns, asked, answered in await ctx.session.execute(
        select(
            Campaign360.status,
            func.count(func.distinct(Campaign360.id)),
            func.count(Rater360.id),
            func.sum(func.cast(Rater360.answered, type_=_INT)),
        )
        .select_from(Campaign360)
        .join(Rater360, Rater360.campaign_id == Campaign360.id, isouter=True)
        .group_by(Campaign360.status)
        .order_by(Campaign360.status)
    ):
        answered = int(answered or 0)
        reviews.rows.append((status, campaigns, asked, answered, _pct(answered / asked) if asked else None))
    view.parts.append(reviews)
    return view


# -- 360s ----------------------------------------------------------------------------------------------


async def _campaigns_table(
    ctx: Ctx, subject_ids: set[int] | None, *, caption: str, key: str = "360s", only_open: bool = False
) -> Table:
    """360s about these people (None: about anyone), newest first."""
    statement = select(Campaign360).order_by(Campaign360.created_at.desc())
    if subject_ids is not None:
        statement = statement.where(Campaign360.subject_id.in_(subject_ids))
    if only_open:
        statement = statement.where(Campaign360.status != "closed")
    campaigns = list((await ctx.session.execute(statement)).scalars()) if subject_ids != set() else []
    names = await _people(ctx.session, {c.subject_id for c in campaigns})
    counts: dict[int, tuple[int, int]] = {}
    if campaigns:
        for campaign_id, asked, answered in await ctx.session.execute(
            select(Rater360.campaign_id, func.count(), func.sum(func.cast(Rater360.answered, type_=_INT)))
            .where(Rater360.campaign_id.in_([c.id for c in campaigns]))
            .group_by(Rater360.campaign_id)
        ):
            counts[campaign_id] = (asked, int(answered or 0))
    table = Table(key, caption, ("About", "Status", "Asked", "Answered", "Closes", "Report"), empty="No 360s.")
    for campaign in campaigns:
        asked, answered = counts.get(campaign.id, (0, 0))
        href = f"/dashboard/360/{campaign.id}"
        report = Cell(href, link(href, "Results" if campaign.status == "closed" else "Status"))
        subject = names.get(campaign.subject_id)
        table.rows.append(
            (subject.name if subject else "", campaign.status, asked, answered, _date(campaign.closes_at), report)
        )
    return table


async def reviews_page(ctx: Ctx) -> View:
    view = View("360 reports", "/dashboard/360")
    view.parts.append(
        paragraph(
            f"Results are shown per rater group, only when at least the campaign's threshold (never below {FLOOR}) answered. "
            "Peers and reports are never named."
        )
    )
    view.parts.append(await _campaigns_table(ctx, {ctx.viewer.id}, caption="360s about you"))
    if ctx.viewer.is_manager:
        view.parts.append(await _campaigns_table(ctx, set(ctx.viewer.reports), caption="360s about your reports"))
    if ctx.viewer.is_admin:
        view.parts.append(
            await _campaigns_table(
                ctx, None, caption="Open 360s (you may close one early)", key="open-360s", only_open=True
            )
        )
        view.parts.append(
            paragraph(
                "As an admin you see 360 participation on the ",
                link("/dashboard/org", "organisation page"),
                " — never results or comments.",
            )
        )
    return view


async def review_page(ctx: Ctx, campaign_id: int) -> View:
    """One 360's results, through compute_results only: the subject and the subject's manager."""
    campaign = await ctx.session.get(Campaign360, campaign_id)
    if campaign is None:
        # Same answer as "not yours": ids must not reveal which campaigns exist.
        raise Forbidden
    still_open = campaign.status != "closed"
    # Admins may close an open 360 (and see who answered, in counts); results stay the subject's and manager's.
    if not (ctx.viewer.may_see_person(campaign.subject_id) or (still_open and ctx.viewer.is_admin)):
        raise Forbidden
    subject = await ctx.session.get(Person, campaign.subject_id)
    assert subject is not None
    view = View(f"360 for {subject.name}", "/dashboard/360")
    if still_open:
        closing = campaign.status == "open" and campaign.closes_at is not None and campaign.closes_at <= ctx.now
        if closing:
            view.parts.append(
                paragraph("Closing now: the results reach the subject and their manager within a minute or two.")
            )
            return view
        view.parts.append(
            paragraph(
                f"This 360 is {campaign.status}. Results appear when it closes{' on ' + _date(campaign.closes_at) if campaign.closes_at else ''}."
            )
        )
        if campaign.status == "open" and await may_close(ctx.session, campaign, ctx.viewer.person):
            preview = closing_preview(campaign, await answered_raters(ctx.session, campaign))
            view.parts.append(close_form(campaign, ctx.viewer.csrf, preview))
        return view
    results = await compute_results(ctx.session, campaign)
    groups = Table("groups", "Who answered", ("Group", "Answered", "Shown"))
    comments = Table(
        "comments",
        "Comments",
        ("Group", "About", "Comment"),
        empty="No comments shown (too few in a group, or none written).",
    )
    released = [g for g in results.groups if g.released]
    scores = Table(
        "scores",
        "Scores (1 = strongly disagree, 5 = strongly agree)",
        ("Influence", *tuple(GROUP_NAMES[g.group] for g in released)),
        empty="No group had enough answers to be shown.",
    )
    for group in results.groups:
        name = GROUP_NAMES[group.group]
        groups.rows.append((name, group.raters, "yes" if group.released else f"not shown: {group.reason}"))
        if group.released:
            comments.rows.extend((name, label, comment) for label, comment in group.comments)
    if released:
        for influence, label in INFLUENCE_NAMES.items():
            cells = tuple("" if influence not in g.scores else f"{g.scores[influence]:g}" for g in released)
            if any(cells):
                scores.rows.append((label, *cells))
    lowest = results.lowest()
    if lowest:
        view.parts.append(
            paragraph("Lowest across groups (other than self): " + ", ".join(INFLUENCE_NAMES[i] for i in lowest) + ".")
        )
    view.parts += [groups, scores, comments]
    return view


# -- tool plans ------------------------------------------------------------------------------------------


def _plan_subject(plan: ToolPlan, teams: dict[int, Team], about: Person | None, viewer_id: int) -> str:
    """Whom a tool plan is about, as the tools page names it: a team, "yourself", or a person."""
    from dialogs.tools import team_label

    if plan.team_id in teams:
        return team_label(teams[plan.team_id]).removeprefix("the ")
    if plan.person_id == viewer_id:
        return "yourself"
    return about.name if about else ""


async def tools_page(ctx: Ctx) -> View:
    """The viewer's own tool plans (gap descriptions are the asker's alone); admins also see outcome totals."""
    from dialogs.tools import catalogue

    cat = catalogue(ctx.site.catalogue_path)
    view = View("Tool plans", "/dashboard/tools")
    plans = list(
        (
            await ctx.session.execute(
                select(ToolPlan).where(ToolPlan.asked_by_id == ctx.viewer.id).order_by(ToolPlan.created_at.desc())
            )
        ).scalars()
    )
    people = await _people(ctx.session, {p.person_id for p in plans})
    team_ids = {p.team_id for p in plans if p.team_id is not None}
    teams = (
        {t.id: t for t in (await ctx.session.execute(select(Team).where(Team.id.in_(team_ids)))).scalars()}
        if team_ids
        else {}
    )
    table = Table(
        "plans",
        "Your tool plans",
        ("Created", "About", "Gap", "Influence", "Tool", "Follow-up", "Status", "Outcome", "Note"),
        empty="No tool plans yet — try *tools* in chat when someone is stuck.",
    )
    for plan in plans:
        tool = cat.get(plan.tool_id)
        about = people.get(plan.person_id)
        table.rows.append(
            (
                _date(plan.created_at),
                _plan_subject(plan, teams, about, ctx.viewer.id),
                shorten(plan.gap, 300),
                INFLUENCE_NAMES.get(plan.influence, plan.influence),
                tool.name if tool else plan.tool_id,
                _date(plan.follow_up_at),
                plan.status,
                plan.outcome or "",
                plan.outcome_note or "",
            )
        )
    view.parts.append(table)
    if ctx.viewer.is_admin:
        totals = Table(
            "outcomes",
            "Outcomes across the organisation",
            ("Tool", "Influence", "Plans", "Worked", "Partly", "Didn't", "Open"),
        )
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for tool_id, outcome, count in await ctx.session.execute(
            select(ToolPlan.tool_id, ToolPlan.outcome, func.count()).group_by(ToolPlan.tool_id, ToolPlan.outcome)
        ):
            counts[tool_id][outcome or "open"] += count
        for tool_id in sorted(counts):
            tool = cat.get(tool_id)
            c = counts[tool_id]
            totals.rows.append(
                (
                    tool.name if tool else tool_id,
                    INFLUENCE_NAMES.get(tool.influence, tool.influence) if tool else "",
                    sum(c.values()),
                    c["yes"],
                    c["partly"],
                    c["no"],
                    c["open"],
                )
            )
        view.parts.append(totals)
    return view


# -- failed deliveries (admins) ----------------------------------------------------------------------------


async def deliveries_page(ctx: Ctx) -> View:
    """Messages Baton gave up on in the last 30 days: when, where, to whom, what kind, why — never their content."""
    if not ctx.viewer.is_admin:
        raise Forbidden
    since = ctx.now - timedelta(days=DELIVERY_DAYS)
    view = View("Delivery problems", "/dashboard/deliveries")
    view.parts.append(
        paragraph(
            f"Messages from the last {DELIVERY_DAYS} days that Slack or Teams refused for good, or that failed until Baton stopped "
            "retrying. What the messages said is never shown: it can hold feedback."
        )
    )
    reasons = await failure_reasons(ctx.session, since)
    summary = Table(
        "reasons",
        "Reasons",
        ("Reason", "Messages"),
        empty=f"No failed deliveries in the last {DELIVERY_DAYS} days.",
        note="user_not_found or account_inactive: the person left or was deactivated on that platform. "
        "channel_not_found or not_in_channel: a team channel was removed, or Baton isn't in it. "
        "Teams refused (403 …): Baton was uninstalled or blocked in that chat.",
    )
    summary.rows = [(name, count) for name, count in reasons]
    view.parts.append(summary)
    failed = await failed_deliveries(ctx.session, since, limit=DELIVERY_ROWS)
    total = sum(count for _, count in reasons)
    shown = f"The latest {DELIVERY_ROWS} of {total}. " if total > len(failed) else ""
    table = Table(
        "failed",
        "Failed deliveries",
        ("When (UTC)", "Channel", "Recipient", "Kind", "Reason"),
        empty=f"No failed deliveries in the last {DELIVERY_DAYS} days.",
        note=f"{shown}When: the time the last attempt was due.",
    )
    for row in failed:
        table.rows.append(
            (
                row.when.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
                row.channel,
                row.recipient or "team channel",
                row.kind,
                row.reason,
            )
        )
    view.parts.append(table)
    return view


# -- settings (admins) -------------------------------------------------------------------------------------


def close_form(campaign: Campaign360, csrf: str, preview: str) -> Markup:
    """Close a 360 early, after reading which groups would stay hidden; the button is the confirmation."""
    return tag(
        "form",
        tag("h2", "Close it early?"),
        paragraph(preview, " Answers not yet submitted are discarded; the results go out at once."),
        hidden("csrf", csrf),
        tag("button", "Close this 360 now", type="submit", class_="danger"),
        method="post",
        action=f"/dashboard/360/{campaign.id}/close",
        class_="close-360",
    )


async def close_review(session: AsyncSession, viewer: Viewer, campaign_id: int, now: datetime) -> bool:
    """Bring an open 360's close forward, if this viewer may; the next tick closes it and sends the results."""
    campaign = await session.get(Campaign360, campaign_id)
    if campaign is None or campaign.status != "open" or not await may_close(session, campaign, viewer.person):
        return False
    close_early(campaign, now)
    session.add(campaign)
    return True


def rhythm_form(team: Team, csrf: str, values: dict[str, str] | None = None) -> Markup:
    values = values or {}

    def day_select(name: str, current: int) -> Markup:
        chosen = int(values.get(name, current)) if str(values.get(name, current)).isdigit() else current
        options = join(tag("option", day, value=i, selected=i == chosen) for i, day in enumerate(DAYS))
        return tag("select", options, name=name, id=f"{name}-{team.id}")

    def field_row(label: str, control: Markup, name: str) -> Markup:
        return tag("div", tag("label", label, for_=f"{name}-{team.id}"), control, class_="field")

    def text_input(name: str, current: Any, **attrs: Any) -> Markup:
        return Markup(
            tag("input", name=name, id=f"{name}-{team.id}", value=values.get(name, current), **attrs).replace(
                "</input>", ""
            )
        )

    return tag(
        "form",
        hidden("csrf", csrf),
        field_row("Check-in day", day_select("checkin_weekday", team.checkin_weekday), "checkin_weekday"),
        field_row(
            "Check-in time", text_input("checkin_time", team.checkin_time, type="time", required=True), "checkin_time"
        ),
        field_row(
            "Reminders",
            text_input("reminder_count", team.reminder_count, type="number", min=0, max=3, required=True),
            "reminder_count",
        ),
        field_row(
            "Minutes before a reminder",
            text_input(
                "reminder_after_minutes", team.reminder_after_minutes, type="number", min=15, max=1440, required=True
            ),
            "reminder_after_minutes",
        ),
        field_row("Digest day", day_select("digest_weekday", team.digest_weekday), "digest_weekday"),
        field_row(
            "Digest time", text_input("digest_time", team.digest_time, type="time", required=True), "digest_time"
        ),
        tag("button", f"Save {team.name}'s rhythm", type="submit"),
        method="post",
        action=f"/dashboard/settings/teams/{team.id}",
        class_="rhythm",
    )


async def settings_page(ctx: Ctx, *, errors: dict[int, tuple[str, dict[str, str]]] | None = None) -> View:
    if not ctx.viewer.is_admin:
        raise Forbidden
    from dialogs.tools import catalogue

    errors = errors or {}
    view = View("Settings", "/dashboard/settings")
    saved = ctx.request.query.get("saved")
    teams = list((await ctx.session.execute(select(Team).order_by(Team.name))).scalars())
    if saved:
        name = next((t.name for t in teams if str(t.id) == saved), None)
        if name:
            view.parts.append(tag("p", f"Saved {name}'s rhythm.", class_="ok", role="status"))
    schedule = Table(
        "schedules",
        "Team schedules",
        ("Team", "Check-in day", "Time", "Reminders", "Reminder after (min)", "Digest day", "Digest time"),
    )
    forms = []
    for team in teams:
        schedule.rows.append(
            (
                team.name,
                DAYS[team.checkin_weekday],
                team.checkin_time,
                team.reminder_count,
                team.reminder_after_minutes,
                DAYS[team.digest_weekday],
                team.digest_time,
            )
        )
        error, values = errors.get(team.id, ("", {}))  # type: ignore[arg-type]
        forms.append(
            tag(
                "details",
                tag("summary", f"Edit {team.name}"),
                tag("p", describe_rhythm(team), class_="note"),
                paragraph(link(f"/dashboard/rhythm?team={team.id}", f"See {team.name}'s rhythm as one picture")),
                tag("p", error, class_="error", role="alert") if error else Markup(""),
                rhythm_form(team, ctx.viewer.csrf, values),
                open=bool(error),
            )
        )
    view.parts.append(schedule)
    view.parts.append(tag("section", tag("h2", "Edit a team's rhythm"), join(forms), class_="forms"))

    templates = Table(
        "templates", "Check-in questions per team", ("Team", "Source", "#", "Question", "Kind", "Feeds", "Private")
    )
    custom = {t.team_id for t in (await ctx.session.execute(select(CheckinTemplate))).scalars()}
    for team in teams:
        for number, question in enumerate(await questions_for_team(ctx.session, team.id), 1):
            templates.rows.append(
                (
                    team.name,
                    "team's own" if team.id in custom else "default",
                    number,
                    question.get("prompt", "").replace("*", ""),
                    question.get("kind", ""),
                    question.get("feeds", "other"),
                    "yes" if question.get("private") else "no",
                )
            )
    view.parts.append(templates)

    thresholds = Table(
        "thresholds",
        "360 thresholds (open and draft campaigns)",
        ("Campaign", "Status", "Threshold", "Comment threshold", "Closes"),
        empty="No open or draft 360s.",
        note=f"Every group of peers or reports needs at least this many answers to be shown; the floor is {FLOOR} and thresholds can only rise while a 360 is open.",
    )
    for campaign in (
        await ctx.session.execute(select(Campaign360).where(Campaign360.status != "closed").order_by(Campaign360.id))
    ).scalars():
        thresholds.rows.append(
            (
                f"#{campaign.id}",
                campaign.status,
                campaign.threshold,
                campaign.comment_threshold,
                _date(campaign.closes_at),
            )
        )
    view.parts.append(thresholds)

    cat = catalogue(ctx.site.catalogue_path)
    tools = Table(
        "catalogue",
        "Tool catalogue",
        ("Id", "Tool", "Influence", "Time", "Cost"),
        note="Shipped catalogue"
        + (
            " with this organisation's file (BATON_CATALOGUE) added."
            if ctx.site.catalogue_path
            else "; set BATON_CATALOGUE to add or override tools."
        ),
    )
    for tool in cat:
        tools.rows.append(
            (tool.id, tool.name, INFLUENCE_NAMES.get(tool.influence, tool.influence), tool.time_label, tool.cost)
        )
    view.parts.append(tools)
    return view


RHYTHM_FIELDS = (
    "checkin_weekday",
    "checkin_time",
    "reminder_count",
    "reminder_after_minutes",
    "digest_weekday",
    "digest_time",
)


def parse_rhythm(form: dict[str, str]) -> dict[str, Any]:
    """Validated team rhythm fields from a form; ValueError says which field is wrong."""
    from dialogs.engine.errors import UserFacingError
    from dialogs.team import parse_time

    values: dict[str, Any] = {}
    for name in ("checkin_weekday", "digest_weekday"):
        raw = form.get(name, "")
        if not raw.isdigit() or not 0 <= int(raw) <= 6:
            raise ValueError(f"{name.replace('_', ' ')}: pick a weekday")
        values[name] = int(raw)
    for name in ("checkin_time", "digest_time"):
        try:
            values[name] = parse_time(form.get(name, ""))
        except UserFacingError:
            raise ValueError(f"{name.replace('_', ' ')}: write a time like 16:00") from None
    for name, low, high in (("reminder_count", 0, 3), ("reminder_after_minutes", 15, 1440)):
        raw = form.get(name, "").strip()
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise ValueError(f"{name.replace('_', ' ')}: a whole number from {low} to {high}")
        values[name] = int(raw)
    return values
