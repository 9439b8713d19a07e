"""The team's rhythm as one picture (/dashboard/rhythm): an inline SVG timeline and the same steps as a table.

Drawn on the server like charts.py: no script, no CDN, every mark labelled in words, so it reads without
colour. Swimlanes per role (team members, managers, the manager–report pair), the fortnight's days across,
arrows for what flows into what. The <title> and <desc> state every step, so a screen reader (and a test)
gets the data. The picture comes from dialogs/services/picture.py, i.e. from the scheduler's own functions.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import col

from bot.dashboard.html import Markup, Table, join, link, paragraph, tag
from bot.dashboard.views import Ctx, Forbidden, NotFound, View
from dialogs.common.manners import WEEKLY_BUDGET
from dialogs.engine.clock import tz
from dialogs.services.picture import LANE_NAMES, LANES, Moment, Picture, Step, picture_of
from storage.models import Person, Team

WIDTH = 1000
LEFT, RIGHT, TOP = 140, 12, 40
ROW = 24  # one row of steps inside a lane
CHAR = 6.2  # average width of a label character at the drawing's font size
RULE_ROW = 26


def _x(picture: Picture, when: datetime) -> float:
    span = (picture.end - picture.start).total_seconds() or 1
    share = (when - picture.start).total_seconds() / span
    return LEFT + (WIDTH - LEFT - RIGHT) * min(max(share, 0.0), 1.0)


def _pack(picture: Picture, steps: list[Step]) -> list[tuple[Step, int, float, float]]:
    """Each step with its row inside the lane, so no two labels overlap: (step, row, x from, x to)."""
    rows: list[float] = []  # where each row is free from
    placed = []
    for step in sorted(steps, key=lambda s: (s.first or picture.end, s.id)):
        assert step.first is not None and step.last is not None
        x1, x2 = _x(picture, step.first), _x(picture, step.last)
        reach = max(x2, x1 + 8) + 4 + len(step.label) * CHAR
        start = x1
        if reach > WIDTH:  # no room on the right: the label goes on the left of the span
            start, reach = x1 - 10 - len(step.label) * CHAR, x2
        row = next((i for i, free in enumerate(rows) if free <= start), len(rows))
        if row == len(rows):
            rows.append(0.0)
        rows[row] = reach + 6
        placed.append((step, row, x1, max(x2, x1 + 8)))
    return placed


def rhythm_svg(picture: Picture, zone: str = "UTC", *, chart_id: str = "rhythm") -> Markup:
    """The picture as SVG: days in `zone` across, lanes down, arrows for the flows, standing rules below."""
    lanes = {lane: _pack(picture, [s for s in picture.timed if s.lane == lane]) for lane in LANES}
    heights = {
        lane: max(1, 1 + max((row for _, row, _, _ in placed), default=0)) * ROW + 12 for lane, placed in lanes.items()
    }
    rules = picture.rules
    wrapped = [_wrap(_rule_text(r), int((WIDTH - LEFT - RIGHT) / CHAR)) for r in rules]
    rules_height = 24 + sum(RULE_ROW + 14 * (len(lines) - 1) for lines in wrapped) if rules else 0
    height = TOP + sum(heights.values()) + rules_height + 12
    parts: list[Markup] = []

    # Days across, in the viewer's zone.
    local = tz(zone)
    day = picture.start.astimezone(local).date()
    while True:
        midnight = datetime.combine(day, datetime.min.time(), tzinfo=local)
        if midnight >= picture.end:
            break
        if midnight >= picture.start:
            x = _x(picture, midnight)
            parts.append(tag("line", x1=f"{x:.1f}", x2=f"{x:.1f}", y1=TOP - 14, y2=height - 8, class_="grid"))
        label_at = _x(picture, max(midnight, picture.start) + timedelta(hours=1))
        if _x(picture, midnight + timedelta(days=1)) - label_at > 40:  # a day too short to hold its name has none
            parts.append(tag("text", f"{day:%a} {day.day}", x=f"{label_at:.1f}", y=TOP - 18, class_="axis"))
        day += timedelta(days=1)
    parts.append(tag("text", zone, x=4, y=TOP - 18, class_="axis zone"))

    # Lanes with their steps.
    where: dict[str, tuple[float, float, float]] = {}  # step id → (x from, x to, y)
    y = TOP
    for lane in LANES:
        parts.append(tag("rect", x=0, y=y, width=WIDTH, height=heights[lane], class_="lane"))
        parts.append(tag("text", LANE_NAMES[lane], x=6, y=y + 17, class_="lane-name"))
        for step, row, x1, x2 in lanes[lane]:
            cy = y + 6 + row * ROW + ROW / 2
            where[step.id] = (x1, x2, cy)
            parts.append(_step(step, x1, x2, cy))
        y += heights[lane]

    # What flows into what.
    for flow in picture.flows:
        if flow.source not in where or flow.target not in where:
            continue
        _, sx, sy = where[flow.source]
        tx, _, ty = where[flow.target]
        mid = (sx + tx) / 2
        parts.append(
            tag(
                "path",
                tag("title", f"{picture.step(flow.source).title} → {picture.step(flow.target).title}: {flow.label}"),
                d=f"M{sx:.1f},{sy:.1f} C{mid:.1f},{sy:.1f} {mid:.1f},{ty:.1f} {tx - 3:.1f},{ty:.1f}",
                class_="flow",
                marker_end=f"url(#{chart_id}-arrow)",
            )
        )

    # Standing rules: nudges whose times depend on what people do.
    if rules:
        parts.append(tag("text", "Whenever due:", x=6, y=y + 18, class_="lane-name"))
        y += 24
        for step, lines in zip(rules, wrapped, strict=True):
            parts.append(
                tag(
                    "g",
                    tag("title", step.describe()),
                    tag(
                        "text",
                        join(tag("tspan", line, x=LEFT, dy=0 if i == 0 else 14) for i, line in enumerate(lines)),
                        x=LEFT,
                        y=y + 16,
                        class_="rule",
                    ),
                    class_=f"step rule kind-{step.kind}",
                    data_step=step.id,
                )
            )
            y += RULE_ROW + 14 * (len(lines) - 1)

    defs = tag(
        "defs",
        tag(
            "marker",
            tag("path", d="M0,0 L8,4 L0,8 z", class_="arrowhead"),
            id=f"{chart_id}-arrow",
            viewBox="0 0 8 8",
            refX=8,
            refY=4,
            markerWidth=8,
            markerHeight=8,
            orient="auto",
        ),
    )
    return tag(
        "svg",
        tag(
            "title", f"{picture.team}'s rhythm, {picture.start:%d %b} to {picture.end:%d %b %Y}", id=f"{chart_id}-title"
        ),
        tag("desc", picture.describe(), id=f"{chart_id}-desc"),
        defs,
        join(parts),
        viewBox=f"0 0 {WIDTH} {height}",
        role="img",
        aria_labelledby=f"{chart_id}-title {chart_id}-desc",
        class_="chart rhythm",
        id=chart_id,
        preserveAspectRatio="xMinYMin meet",
        xmlns="http://www.w3.org/2000/svg",
    )


def _step(step: Step, x1: float, x2: float, cy: float) -> Markup:
    marks = [
        tag(
            "circle",
            tag("title", f"{m.name}: {m.when()}" + (f", {m.status()}" if m.status() else "")),
            cx=f"{_xm(step, m, x1, x2):.1f}",
            cy=f"{cy:.1f}",
            r=4,
            class_="held" if m.held else "moment",
        )
        for m in step.moments
    ]
    label = step.label + ("" if step.scheduled else " (defaults)") + (" ·budget" if step.budgeted else "")
    return tag(
        "g",
        tag("title", step.describe()),
        tag("line", x1=f"{x1:.1f}", x2=f"{x2:.1f}", y1=f"{cy:.1f}", y2=f"{cy:.1f}", class_="span"),
        join(marks),
        tag("text", label, x=f"{x2 + 6:.1f}", y=f"{cy + 4:.1f}", class_="step-label")
        if x2 + 6 + len(label) * CHAR < WIDTH
        else tag("text", label, x=f"{x1 - 6:.1f}", y=f"{cy + 4:.1f}", class_="step-label", text_anchor="end"),
        class_=f"step kind-{step.kind}" + ("" if step.scheduled else " unscheduled"),
        data_step=step.id,
    )


def _rule_text(step: Step) -> str:
    budget = f" (weekly budget of {WEEKLY_BUDGET})" if step.budgeted else ""
    return f"{step.title}{budget}: {step.rule}"


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _xm(step: Step, moment: Moment, x1: float, x2: float) -> float:
    first, last = step.first, step.last
    assert first is not None and last is not None
    span = (last - first).total_seconds()
    return x1 + (x2 - x1) * ((moment.at - first).total_seconds() / span if span else 0)


def steps_table(picture: Picture) -> Table:
    """The same steps as rows: one per recipient, in time order, with their own local time."""
    table = Table(
        "steps",
        "Every step, in each person's own time",
        ("When (UTC)", "What", "Who", "Their time", "Budget", "Notes"),
        empty="Nothing is scheduled for this team in the coming fortnight.",
        note="Reminders and nudges count against each person's weekly budget of "
        f"{WEEKLY_BUDGET} messages Baton sends on its own; nothing arrives during quiet hours.",
    )
    rows = sorted(((m.at, s, m) for s in picture.timed for m in s.moments), key=lambda r: (r[0], r[1].id, r[2].name))
    for at, step, moment in rows:
        notes = [n for n in (moment.status(), step.condition, "" if step.scheduled else "not yet scheduled") if n]
        table.rows.append(
            (
                f"{at.astimezone(tz('UTC')):%a %d %b %H:%M}",
                step.title,
                moment.name,
                f"{moment.local:%a %d %b %H:%M} ({moment.zone})",
                "yes" if step.budgeted else "no",
                "; ".join(notes) or None,
            )
        )
    for step in picture.rules:
        table.rows.append(("when due", step.title, None, None, "yes" if step.budgeted else "no", step.rule))
    return table


# -- the page -----------------------------------------------------------------------------------


async def visible_teams(ctx: Ctx) -> list[Team]:
    """Teams the viewer may see the rhythm of: every team for an admin; otherwise their own team and the
    teams of their direct reports."""
    if ctx.viewer.is_admin:
        statement = select(Team)
    else:
        ids = {ctx.viewer.person.team_id}
        if ctx.viewer.reports:
            rows = await ctx.session.execute(select(col(Person.team_id)).where(col(Person.id).in_(ctx.viewer.reports)))
            ids |= set(rows.scalars())
        statement = select(Team).where(col(Team.id).in_({i for i in ids if i is not None}))
    return list((await ctx.session.execute(statement.order_by(col(Team.name)))).scalars())


async def rhythm_page(ctx: Ctx) -> View:
    """One team's rhythm: `?team=ID` picks among the teams the viewer may see (their own by default)."""
    teams = await visible_teams(ctx)
    raw = ctx.request.query.get("team")
    if raw is not None:
        if not raw.isdigit() or len(raw) > 18:
            raise NotFound
        team = next((t for t in teams if t.id == int(raw)), None)
        if team is None:
            if ctx.viewer.is_admin:
                raise NotFound
            raise Forbidden  # another team's rhythm, or none: the same answer either way
    else:
        own = ctx.viewer.person.team_id
        team = next((t for t in teams if t.id == own), teams[0] if teams else None)
        if team is None:
            raise NotFound
    picture = await picture_of(ctx.session, team, ctx.now)
    view = View(f"{team.name}'s rhythm", "/dashboard/rhythm", query={"team": str(team.id)})
    if len(teams) > 1:
        view.parts.append(
            paragraph(
                "Teams: ",
                Markup(
                    ", ".join(
                        tag("strong", t.name) if t.id == team.id else link(f"/dashboard/rhythm?team={t.id}", t.name)
                        for t in teams
                    )
                ),
            )
        )
    zone = ctx.viewer.person.timezone
    view.parts.append(
        paragraph(
            "What Baton does for this team in the coming fortnight, read from the schedule it runs: check-ins, "
            "reminders, the digest, 1:1s and nudges, who gets each and when. Days are in your time zone "
            f"({zone}); the table gives each person's own time."
        )
    )
    view.parts.append(
        tag(
            "figure",
            rhythm_svg(picture, zone, chart_id="rhythm-chart"),
            tag("figcaption", "Arrows show what feeds into what: check-ins → digest → 1:1 agenda → actions → nudges."),
            class_="chart-box rhythm-box",
        )
    )
    for note in picture.notes:
        view.parts.append(paragraph(note, class_="note"))
    if ctx.viewer.is_admin:
        view.parts.append(paragraph(link("/dashboard/settings", "Change the team's rhythm"), " in Settings."))
    view.parts.append(steps_table(picture))
    return view
