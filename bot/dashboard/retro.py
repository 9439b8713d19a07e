"""Retros on the dashboard: a team's retro history and story log, and a page per retro.

Who sees what: a retro belongs to its team. Its members and the managers of its members see the history,
what each close released (themes, quotes, proposals and their totals, the stories their authors signed)
and the commitments with their status. An admin who is neither sees counts only — retros, answers, voters,
commitments — for teams of at least `AGGREGATE_MINIMUM` people, never a theme, a quote or a name. A retro
that is not the viewer's gets the same 403 as one that does not exist. Nothing here reads a sealed draft:
what was not released at the close is not in the database to show.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from bot.dashboard.html import Table, link, paragraph
from bot.dashboard.views import AGGREGATE_MINIMUM, Ctx, Forbidden, View
from storage.models import ActionItem, Person, Retro, RetroProposal, RetroQuote, RetroTheme, Team

STAGE_NAMES = {"discover": "Discover", "dream": "Dream", "design": "Design"}
STATUS_NAMES = {
    "collecting": "collecting answers",
    "closing": "closing",
    "voting": "voting",
    "counting": "counting votes",
    "choosing": "choosing commitments",
    "done": "done",
    "stopped": "stopped",
}


async def visible_teams(ctx: Ctx) -> set[int]:
    """The teams whose retros the viewer may read: their own, and their direct reports'."""
    teams = {ctx.viewer.person.team_id} if ctx.viewer.person.team_id is not None else set()
    if ctx.viewer.reports:
        teams |= set(
            await ctx.session.scalars(
                select(col(Person.team_id)).where(
                    col(Person.id).in_(ctx.viewer.reports), col(Person.team_id).is_not(None)
                )
            )
        )
    return {t for t in teams if t is not None}


async def retros_page(ctx: Ctx) -> View:
    view = View("Retros", "/dashboard/retro")
    teams = await visible_teams(ctx)
    view.parts.append(
        paragraph(
            "Appreciative retros of your team: themes and quotes are shown only when at least the retro's threshold "
            "of people (never below 3) shared them; signed stories carry their author's name by their choice."
        )
    )
    names = {t.id: t.name for t in await ctx.session.scalars(select(Team).where(col(Team.id).in_(teams)))}
    retros = list(
        await ctx.session.scalars(
            select(Retro).where(col(Retro.team_id).in_(teams)).order_by(col(Retro.opens_at).desc())
        )
    )
    view.parts.append(
        Table(
            "retros",
            "Retro history",
            ("Team", "Theme", "Opened", "Status", "Answered", "Voters"),
            [
                (
                    names.get(r.team_id, "?"),
                    link(f"/dashboard/retro/{r.id}", r.theme),
                    r.opens_at.date().isoformat(),
                    STATUS_NAMES.get(r.status, r.status),
                    r.answered if r.closed_on else "",
                    r.voters if r.voted_on else "",
                )
                for r in retros
            ],
            empty="No retro yet. Type retro to Baton to start one.",
        )
    )
    quotes = list(
        await ctx.session.execute(
            select(RetroQuote, Retro)
            .join(Retro, col(Retro.id) == col(RetroQuote.retro_id))
            .where(col(Retro.team_id).in_(teams))
            .order_by(col(Retro.opens_at).desc(), col(RetroQuote.id))
        )
    )
    authors = await _names(ctx, {q.author_id for q, _ in quotes if q.author_id})
    view.parts.append(
        Table(
            "stories",
            "Story log",
            ("Retro", "Released on", "Stage", "Story", "Signed by"),
            [
                (
                    r.theme,
                    q.written_on.isoformat(),
                    STAGE_NAMES.get(q.stage, q.stage),
                    q.text,
                    authors.get(q.author_id or 0, ""),
                )
                for q, r in quotes
            ],
            empty="No story released yet.",
        )
    )
    if ctx.viewer.is_admin:
        view.parts.append(await _counts_table(ctx))
    return view


async def _names(ctx: Ctx, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return {p.id or 0: p.name for p in await ctx.session.scalars(select(Person).where(col(Person.id).in_(wanted)))}


async def _counts_table(ctx: Ctx) -> Table:
    """Organisation counts for admins: per team of at least AGGREGATE_MINIMUM people, never content."""
    sizes = dict(
        (
            await ctx.session.execute(
                select(col(Person.team_id), func.count())
                .where(col(Person.active).is_(True), col(Person.team_id).is_not(None))
                .group_by(col(Person.team_id))
            )
        ).all()
    )
    rows: list[Sequence[Any]] = []
    for team in await ctx.session.scalars(select(Team).order_by(col(Team.name))):
        if sizes.get(team.id, 0) < AGGREGATE_MINIMUM:
            continue
        retros = list(await ctx.session.scalars(select(Retro).where(col(Retro.team_id) == team.id)))
        ids = [r.id for r in retros]
        commitments = (
            await ctx.session.scalar(
                select(func.count())
                .select_from(RetroProposal)
                .where(col(RetroProposal.retro_id).in_(ids), col(RetroProposal.chosen).is_(True))
            )
            if ids
            else 0
        )
        rows.append(
            (
                team.name,
                len(retros),
                sum(r.status == "done" for r in retros),
                sum(r.answered for r in retros),
                sum(r.voters for r in retros),
                commitments or 0,
            )
        )
    return Table(
        "retro-counts",
        "Retros across the organisation (counts only)",
        ("Team", "Retros", "Finished", "Answers", "Voters", "Commitments"),
        rows,
        note=f"Teams of fewer than {AGGREGATE_MINIMUM} people are left out.",
    )


async def retro_page(ctx: Ctx, retro_id: int) -> View:
    retro = await ctx.session.get(Retro, retro_id)
    if retro is None or retro.team_id not in await visible_teams(ctx):
        raise Forbidden  # the same answer for "not yours" and "no such retro"
    view = View(f"Retro — {retro.theme}", "/dashboard/retro")
    closes = retro.closes_at.date().isoformat()
    view.parts.append(
        paragraph(
            f"Status: {STATUS_NAMES.get(retro.status, retro.status)}. Open {retro.opens_at.date().isoformat()} to {closes}; "
            f"threshold {retro.threshold}."
            + (f" {retro.answered} people answered." if retro.closed_on else " Answers are sealed until the close.")
            + (f" {retro.voters} people voted." if retro.voted_on else "")
        )
    )
    themes = list(
        await ctx.session.scalars(
            select(RetroTheme)
            .where(col(RetroTheme.retro_id) == retro.id)
            .order_by(col(RetroTheme.stage), col(RetroTheme.id))
        )
    )
    view.parts.append(
        Table(
            "themes",
            "Themes",
            ("Stage", "Theme", "People"),
            [(STAGE_NAMES.get(t.stage, t.stage), t.name, t.people) for t in themes],
            empty="No theme reached the threshold." if retro.closed_on else "Shown when the retro closes.",
        )
    )
    quotes = list(
        await ctx.session.scalars(
            select(RetroQuote).where(col(RetroQuote.retro_id) == retro.id).order_by(col(RetroQuote.id))
        )
    )
    theme_names = {t.id: t.name for t in themes}
    authors = await _names(ctx, {q.author_id for q in quotes})
    view.parts.append(
        Table(
            "quotes",
            "Quotes and signed stories",
            ("Stage", "Theme", "Words", "Signed by"),
            [
                (
                    STAGE_NAMES.get(q.stage, q.stage),
                    theme_names.get(q.theme_id or "", ""),
                    q.text,
                    authors.get(q.author_id or 0, ""),
                )
                for q in quotes
            ],
        )
    )
    proposals = list(
        await ctx.session.execute(
            select(RetroProposal, ActionItem)
            .outerjoin(ActionItem, col(ActionItem.id) == col(RetroProposal.action_item_id))
            .where(col(RetroProposal.retro_id) == retro.id)
            .order_by(col(RetroProposal.number))
        )
    )
    owners = await _names(ctx, {item.owner_id for _, item in proposals if item is not None})
    view.parts.append(
        Table(
            "proposals",
            "Design proposals and commitments",
            ("#", "Proposal", "Votes", "Owner", "Due", "Status", "Helped (yes / partly / no)"),
            [
                (
                    p.number,
                    p.text,
                    "" if p.votes is None else p.votes,
                    owners.get(item.owner_id, "") if item else "",
                    item.due_on.isoformat() if item and item.due_on else "",
                    ("done" if item.done_at else "open") if item else "",
                    f"{p.helped_yes} / {p.helped_partly} / {p.helped_no}" if item else "",
                )
                for p, item in proposals
            ],
            note="Vote totals are kept only when at least the threshold of people voted.",
        )
    )
    return view
