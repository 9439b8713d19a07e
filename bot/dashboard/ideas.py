"""The ideas board: ideas per owner and per team, the funnel, days to acknowledge and decide, adoption.

Who sees what:
- an owner sees the ideas addressed to them, in full (text, sender if signed, state, reason, result);
- a sender sees their own signed ideas (anonymous ones are nowhere linked to them: *idea mine* in chat);
- a manager sees, for ideas owned by their reports, counts only — waiting, decided, done — never content;
- an admin sees the funnel, medians and adoption per team, counts only, and only for teams with at least
  `AGGREGATE_MINIMUM` ideas (fewer would point at individuals).
Times are in days: ideas keep dates only.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from statistics import median
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import col

from bot.dashboard.html import Table, paragraph
from bot.dashboard.views import AGGREGATE_MINIMUM, Ctx, View
from dialogs.common.wording import shorten
from dialogs.ideas import DECISIONS, short
from storage.models import Idea, Person, Team

STAGES = ("received", "acknowledged", "decided", "done", "result")


def quarter(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def _days(pairs: list[tuple[date, date | None]]) -> str:
    spans = [(later - earlier).days for earlier, later in pairs if later is not None]
    return f"{median(spans):g}" if spans else "–"


def funnel_row(label: str, ideas: list[Idea]) -> list[Any]:
    """Label, how many reached each stage, median days to acknowledge and to decide."""
    reached = [sum(1 for i in ideas if STAGES.index(i.state) >= n) for n in range(len(STAGES))]
    return [
        label,
        *reached,
        _days([(i.received_on, i.acknowledged_on) for i in ideas]),
        _days([(i.received_on, i.decided_on) for i in ideas]),
    ]


def adoption_rows(label: str, ideas: list[Idea]) -> list[list[Any]]:
    """Per quarter of the decision: decided, adopted or tried, and the rate."""
    by_quarter: dict[str, list[Idea]] = defaultdict(list)
    for idea in ideas:
        if idea.decided_on is not None:
            by_quarter[quarter(idea.decided_on)].append(idea)
    rows = []
    for name, decided in sorted(by_quarter.items()):
        taken = sum(1 for i in decided if i.decision in ("adopt", "try"))
        rows.append([label, name, len(decided), taken, f"{round(100 * taken / len(decided))}%"])
    return rows


async def ideas_page(ctx: Ctx) -> View:
    viewer = ctx.viewer
    view = View("Ideas", "/dashboard/ideas")
    view.parts.append(
        paragraph(
            "Improvement ideas, from received to result. Anonymous ideas show no sender anywhere; counts of "
            "ideas your reports own are shown without their content. Days, not hours: ideas keep dates only."
        )
    )
    mine = list(
        await ctx.session.scalars(
            select(Idea)
            .where(or_(col(Idea.owner_id) == viewer.id, col(Idea.signed_by_id) == viewer.id))
            .order_by(col(Idea.received_on).desc())
        )
    )
    names = {
        p.id: p.name
        for p in await ctx.session.scalars(
            select(Person).where(col(Person.id).in_({i.signed_by_id for i in mine} | {i.owner_id for i in mine}))
        )
    }
    teams = {t.id: t.name for t in await ctx.session.scalars(select(Team))}
    board = Table(
        "ideas",
        "Ideas sent to you, and your own signed ideas",
        ["Idea", "From", "To", "Team", "Text", "State", "Decision", "Reason", "Result", "Received"],
        empty="No ideas yet: anyone can send one with *idea* in chat.",
    )
    for idea in mine:
        board.rows.append(
            [
                short(idea.id),
                names.get(idea.signed_by_id or 0, "anonymous"),
                names.get(idea.owner_id, "?"),
                teams.get(idea.team_id or 0, ""),
                shorten(idea.text, 300),
                idea.state,
                DECISIONS.get(idea.decision or "", ""),
                idea.reason or "",
                idea.result or "",
                idea.received_on.isoformat(),
            ]
        )
    view.parts.append(board)

    owned = [i for i in mine if i.owner_id == viewer.id]
    funnel = Table(
        "funnel",
        "Funnel and days to answer",
        ["Owner or team", *[s.capitalize() for s in STAGES], "Median days to acknowledge", "Median days to decide"],
    )
    adoption = Table(
        "adoption",
        "Adoption rate (adopted or tried / decided)",
        ["Owner or team", "Quarter", "Decided", "Adopted or tried", "Rate"],
    )
    if owned:
        funnel.rows.append(funnel_row("You", owned))
        adoption.rows += adoption_rows("You", owned)

    if viewer.reports:  # a manager's manager: counts of what their reports own, never the ideas themselves
        theirs = list(await ctx.session.scalars(select(Idea).where(col(Idea.owner_id).in_(list(viewer.reports)))))
        people = {
            p.id: p.name
            for p in await ctx.session.scalars(select(Person).where(col(Person.id).in_(list(viewer.reports))))
        }
        by_owner: dict[int, list[Idea]] = defaultdict(list)
        for idea in theirs:
            by_owner[idea.owner_id].append(idea)
        waiting = Table(
            "waiting",
            "Ideas your reports own (counts only)",
            ["Owner", "Waiting for acknowledgement", "Waiting for a decision", "Decided", "Done or with a result"],
            empty="None of your reports owns an idea.",
        )
        for owner_id, ideas in sorted(by_owner.items(), key=lambda kv: people.get(kv[0], "")):

            def count(*states: str, ideas: list[Idea] = ideas) -> int:
                return sum(1 for i in ideas if i.state in states)

            waiting.rows.append(
                [
                    people.get(owner_id, "?"),
                    count("received"),
                    count("acknowledged"),
                    count("decided"),
                    count("done", "result"),
                ]
            )
            funnel.rows.append(funnel_row(people.get(owner_id, "?"), ideas))
            adoption.rows += adoption_rows(people.get(owner_id, "?"), ideas)
        view.parts.append(waiting)

    if viewer.is_admin:  # per team, counts only, teams with enough ideas
        owners = {p.id: p.team_id for p in await ctx.session.scalars(select(Person))}
        by_team: dict[int, list[Idea]] = defaultdict(list)
        for idea in await ctx.session.scalars(select(Idea)):
            team_id = idea.team_id or owners.get(idea.owner_id)
            if team_id is not None:
                by_team[team_id].append(idea)
        for team_id, ideas in sorted(by_team.items(), key=lambda kv: teams.get(kv[0], "")):
            if len(ideas) >= AGGREGATE_MINIMUM:
                funnel.rows.append(funnel_row(f"Team {teams.get(team_id, '?')}", ideas))
                adoption.rows += adoption_rows(f"Team {teams.get(team_id, '?')}", ideas)
        funnel.note = f"Teams with fewer than {AGGREGATE_MINIMUM} ideas are left out."
    view.parts += [funnel, adoption]
    return view
