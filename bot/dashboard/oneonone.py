"""1:1s on the dashboard: the list of one's pairs, a page per pair, its CSV and its `.ics` invitation.

Who sees what, as everywhere on the dashboard: a pair's page, CSV and invitation belong to its two people
only — the report, and the manager while the report still reports to them. Anyone else (another report, a
skip-level manager, an admin) gets the same 403 as for any page that is not theirs, and so does an id that
names no pair, so ids reveal nothing. An admin sees counts of the whole organisation, never a name or a
text. A private note (`MeetingNote`) is read only with its author's id in the query, so the other side's
notes never leave the database. Nothing here reads 360 tables.

Every page reads; none writes. `upcoming()` and `build()` in dialogs.common.agenda create rows, so the next
1:1 is read from its planned row when there is one and computed from the rhythm otherwise, and the agenda
shown is what `build()` would put on it: the points already on it, what Baton would gather now, and the
points people added that are still open.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.dashboard.html import Cell, Table, join, link, paragraph, tag
from bot.dashboard.views import AGGREGATE_MINIMUM, Ctx, Forbidden, View
from dialogs.common.agenda import (
    LABELS,
    LOOKBACK,
    actions_by_pair,
    agenda_of,
    ask_words,
    first_name,
    gather,
    last_held,
    open_actions,
    pairs_of,
    peek,
)
from dialogs.common.cadence import Cadence, local_label
from dialogs.common.invite import check_token, ics, token_pair
from dialogs.engine.clock import tz
from dialogs.engine.sealing import Sealer
from storage.models import ActionItem, Meeting, MeetingNote, OneOnOne, Person, TalkingPoint

HELD_WITHIN = timedelta(days=30)  # the admin's count of 1:1s held recently
HISTORY_ROWS = 50  # past 1:1s on the page; the CSV has them all
ICS_FILENAME = "one-on-one.ics"
ICS_TYPE = "text/calendar"
STALE_INVITE = (
    "This invitation link is not valid any more: the 1:1's rhythm changed, or the link was never Baton's. "
    "Ask Baton for a fresh link: type 1:1 invite in chat."
)


@dataclass(frozen=True, slots=True)
class File:
    """A download: its bytes, media type and the name the browser saves it under."""

    body: bytes
    content_type: str
    filename: str


@dataclass(frozen=True, slots=True)
class Item:
    """One line of an agenda as the page shows it (a stored talking point or one Baton would gather)."""

    label: str
    text: str
    discussed: bool = False
    note: str | None = None


# -- reading a pair without writing --------------------------------------------------------------------


async def agenda_preview(
    session: AsyncSession, pair: OneOnOne, meeting: Meeting | None, starts_at: datetime, now: datetime
) -> list[TalkingPoint | Item]:
    """What the next 1:1's agenda holds, or will hold when Baton builds it, without writing a row: the points
    already on `meeting`, what `gather` finds since the last held 1:1 that is not on it yet, and the points
    people added that nobody has discussed."""
    held = await last_held(session, pair.id or 0)
    since = held.starts_at if held is not None else starts_at - LOOKBACK
    shown: list[TalkingPoint | Item] = list(await agenda_of(session, meeting)) if meeting is not None else []
    have = {p.ref for p in shown if isinstance(p, TalkingPoint) and p.ref}
    for found in await gather(session, pair, since, min(now, starts_at)):
        if found.ref not in have:
            shown.append(Item(LABELS.get(found.source, found.source), found.text))
            have.add(found.ref)
    carried = select(TalkingPoint).where(
        col(TalkingPoint.pair_id) == pair.id,
        col(TalkingPoint.discussed_at).is_(None),
        col(TalkingPoint.author_id).is_not(None),
    )
    if meeting is not None:
        carried = carried.where(or_(col(TalkingPoint.meeting_id).is_(None), col(TalkingPoint.meeting_id) != meeting.id))
    shown += list((await session.execute(carried.order_by(col(TalkingPoint.id)))).scalars())
    return shown


def _label(point: TalkingPoint | Item, names: dict[int, str]) -> str:
    if isinstance(point, Item):
        return point.label
    if point.source == "typed" and point.author_id in names:
        return f"From {names[point.author_id]}"
    return LABELS.get(point.source, point.source)


async def _may_see_pair(ctx: Ctx, pair_id: int) -> tuple[OneOnOne, Person, Person]:
    """The pair with its manager and report, for one of its two people; `Forbidden` for anyone else, and for
    an id that names no pair (the same answer, so ids reveal nothing)."""
    pair = await ctx.session.get(OneOnOne, pair_id)
    if pair is None:
        raise Forbidden
    viewer = ctx.viewer
    is_report = viewer.id == pair.report_id
    # The manager of the pair, while the report still reports to them (a changed line takes effect at once).
    is_manager = viewer.id == pair.manager_id and viewer.may_see_person(pair.report_id)
    if not (is_report or is_manager):
        raise Forbidden
    manager = await ctx.session.get(Person, pair.manager_id)
    report = await ctx.session.get(Person, pair.report_id)
    if manager is None or report is None:
        raise Forbidden
    return pair, manager, report


def _today(ctx: Ctx) -> date:
    return ctx.now.astimezone(tz(ctx.viewer.person.timezone)).date()


def _when(moment: datetime | None, zone: str) -> str:
    return "" if moment is None else moment.astimezone(tz(zone)).strftime("%Y-%m-%d %H:%M")


def _day(moment: datetime | None, zone: str) -> str:
    return "" if moment is None else moment.astimezone(tz(zone)).strftime("%Y-%m-%d")


def _due(action: ActionItem, today: date) -> tuple[str, bool]:
    if action.due_on is None:
        return "", False
    return action.due_on.isoformat(), action.done_at is None and action.due_on < today


# -- the list ---------------------------------------------------------------------------------------------


async def list_page(ctx: Ctx) -> View:
    """The viewer's 1:1s: with their manager, and for a manager each report's last and next 1:1 and open and
    overdue actions. An admin also sees the organisation's counts — never names or texts."""
    view = View("1:1s", "/dashboard/1on1")
    zone = ctx.viewer.person.timezone
    today = _today(ctx)
    pairs = await pairs_of(ctx.session, ctx.viewer.person)
    mine = [(pair, other) for pair, other in pairs if pair.report_id == ctx.viewer.id]
    theirs = [(pair, other) for pair, other in pairs if pair.manager_id == ctx.viewer.id]
    actions: dict[int, list[ActionItem]] = defaultdict(list)
    for action in await open_actions(ctx.session, [p.id or 0 for p, _ in pairs]):
        actions[action.pair_id or 0].append(action)

    for pair, manager in mine:
        _, starts = await peek(ctx.session, pair, manager, ctx.now)
        href = f"/dashboard/1on1/{pair.id}"
        view.parts.append(
            paragraph(
                link(href, f"Your 1:1 with {manager.name}"),
                f" — {Cadence.of(pair).describe()}; next {local_label(starts, zone)} your time.",
            )
        )
    if ctx.viewer.is_manager or theirs:
        table = Table(
            "reports",
            "Your reports' 1:1s",
            ("Report", "Last 1:1", "Next 1:1 (your time)", "Open actions", "Overdue", "Page"),
            empty="No 1:1 rhythms yet: Baton sets one up for each report, or type 1:1 in chat.",
            note=f"Times in {zone}.",
        )
        for pair, report in theirs:
            held = await last_held(ctx.session, pair.id or 0)
            _, starts = await peek(ctx.session, pair, ctx.viewer.person, ctx.now)
            open_ = actions.get(pair.id or 0, [])
            overdue = sum(1 for a in open_ if _due(a, today)[1])
            href = f"/dashboard/1on1/{pair.id}"
            table.rows.append(
                (
                    report.name,
                    _day(held.starts_at, zone) if held else None,
                    local_label(starts, zone),
                    len(open_),
                    overdue,
                    Cell(href, link(href, f"1:1 with {first_name(report)}")),
                )
            )
        view.parts.append(table)
    if not pairs and not ctx.viewer.is_admin:
        view.parts.append(paragraph("You have no 1:1 rhythm yet. Type 1:1 to Baton in chat to set one up."))
    if ctx.viewer.is_admin:
        view.parts.append(await _organisation_counts(ctx))
    return view


async def _organisation_counts(ctx: Ctx) -> Table:
    """For admins: how many pairs, 1:1s held in the last 30 days and overdue actions — counts only, withheld
    below the dashboard's aggregate minimum so that no figure points at one pair."""
    pairs = await ctx.session.scalar(select(func.count()).select_from(OneOnOne).where(col(OneOnOne.active).is_(True)))
    held = await ctx.session.scalar(
        select(func.count())
        .select_from(Meeting)
        .join(OneOnOne, col(OneOnOne.id) == col(Meeting.pair_id))
        .where(
            col(OneOnOne.active).is_(True),
            col(Meeting.status) == "held",
            col(Meeting.starts_at) >= ctx.now - HELD_WITHIN,
            col(Meeting.starts_at) <= ctx.now,
        )
    )
    overdue = await ctx.session.scalar(
        select(func.count())
        .select_from(ActionItem)
        .join(OneOnOne, col(OneOnOne.id) == col(ActionItem.pair_id))
        .where(
            col(OneOnOne.active).is_(True),
            col(ActionItem.done_at).is_(None),
            col(ActionItem.due_on) < ctx.now.date(),
        )
    )
    pairs = int(pairs or 0)
    enough = pairs >= AGGREGATE_MINIMUM
    table = Table(
        "organisation",
        "1:1s across the organisation",
        ("Active pairs", f"1:1s held in the last {HELD_WITHIN.days} days", "Overdue action items"),
        note=f"Counts only: agendas, notes and actions stay with each pair. With fewer than {AGGREGATE_MINIMUM} "
        "pairs the other figures are withheld (–), so that no number points at one pair.",
    )
    table.rows.append((pairs, int(held or 0) if enough else None, int(overdue or 0) if enough else None))
    return table


# -- one pair ---------------------------------------------------------------------------------------------


async def pair_page(ctx: Ctx, pair_id: int) -> View:
    """One pair's rhythm, next 1:1, agenda, open actions and history, for the pair's two people only. The
    viewer's own private notes are shown; the other side's never are."""
    pair, manager, report = await _may_see_pair(ctx, pair_id)
    viewer = ctx.viewer
    zone = viewer.person.timezone
    today = _today(ctx)
    other = report if viewer.id == manager.id else manager
    names = {manager.id or 0: first_name(manager), report.id or 0: first_name(report)}
    view = View(f"1:1 with {other.name}", "/dashboard/1on1")
    meeting, starts = await peek(ctx.session, pair, manager, ctx.now)
    rhythm = Cadence.of(pair).describe()
    own_clock = "" if manager.id == viewer.id else f" ({first_name(manager)}'s time, {manager.timezone})"
    moved = " — moved because of leave" if meeting is not None and meeting.moved else ""
    asks = ask_words(pair.ask_report, pair, viewer.person, other)  # who "How did it go?" asks afterwards
    view.parts.append(
        tag(
            "dl",
            tag("dt", "Rhythm"),
            tag("dd", rhythm + own_clock),
            tag("dt", "Next 1:1"),
            tag("dd", f"{local_label(starts, zone)} your time ({zone}){moved}", id="next-1on1"),
            tag("dt", "Afterwards"),
            tag(
                "dd",
                f"{asks[0].upper()}{asks[1:]}. To change it, type 1:1 ask-report on or off in chat; "
                "the other side confirms.",
                id="asks",
            ),
            class_="facts",
        )
    )
    view.parts.append(
        paragraph(
            link(f"/dashboard/1on1/{pair.id}/invite.ics", "Add to your calendar (.ics)", id="ics"),
            " · ",
            link(f"/dashboard/1on1/{pair.id}.csv", "Download everything as CSV", id="pair-csv"),
            class_="note",
        )
    )

    agenda = Table(
        "agenda",
        "Agenda for the next 1:1",
        ("#", "Item", "What", "Discussed", "Note"),
        empty="Nothing on the agenda yet. Add a talking point in chat with 1:1.",
        note="Baton sends the agenda the day before; until then this shows what it would gather now. "
        "Only the two of you see it.",
    )
    for number, point in enumerate(await agenda_preview(ctx.session, pair, meeting, starts, ctx.now), 1):
        discussed = point.discussed_at is not None if isinstance(point, TalkingPoint) else point.discussed
        agenda.rows.append((number, _label(point, names), point.text, "✓ discussed" if discussed else "", point.note))
    view.parts.append(agenda)

    actions = Table(
        "actions",
        "Open action items",
        ("Owner", "Action", "Due", "Overdue"),
        empty="No open action items.",
    )
    for action in (await actions_by_pair(ctx.session, [pair])).get(pair.id or 0, []):
        due, late = _due(action, today)
        actions.rows.append(
            (
                names.get(action.owner_id, "someone"),
                action.text,
                due,
                Cell("overdue", tag("span", "overdue", class_="rag rag-red")) if late else "",
            )
        )
    view.parts.append(actions)
    view.parts.append(await _history(ctx, pair, names, zone))
    return view


async def _history(ctx: Ctx, pair: OneOnOne, names: dict[int, str], zone: str) -> Table:
    past = list(
        (
            await ctx.session.execute(
                select(Meeting)
                .where(col(Meeting.pair_id) == pair.id, col(Meeting.starts_at) <= ctx.now)
                .order_by(col(Meeting.starts_at).desc())
                .limit(HISTORY_ROWS)
            )
        ).scalars()
    )
    ids = [m.id for m in past if m.id is not None]
    talked: dict[int, list[TalkingPoint]] = defaultdict(list)
    mine: dict[int, list[str]] = defaultdict(list)
    if ids:
        for point in (
            await ctx.session.execute(
                select(TalkingPoint)
                .where(col(TalkingPoint.meeting_id).in_(ids), col(TalkingPoint.discussed_at).is_not(None))
                .order_by(col(TalkingPoint.id))
            )
        ).scalars():
            talked[point.meeting_id or 0].append(point)
        for note in await _own_notes(ctx.session, ctx.viewer.id, ids):
            mine[note.meeting_id].append(note.text)
    table = Table(
        "history",
        "Past 1:1s",
        ("When (your time)", "Status", "Shared notes", "Talked about", "Your private notes"),
        empty="No 1:1 has happened yet.",
        note=f"The latest {HISTORY_ROWS}; the CSV has them all. Your private notes are yours alone: "
        "the other person never sees them, here or anywhere.",
    )
    for meeting in past:
        points = talked.get(meeting.id or 0, [])
        texts = [f"{_label(p, names)}: {p.text}" + (f" — {p.note}" if p.note else "") for p in points]
        status = meeting.status + (f" (moved: {meeting.moved})" if meeting.moved else "")
        if meeting.status == "planned":
            status = "not recorded yet"
        table.rows.append(
            (
                _when(meeting.starts_at, zone),
                status,
                meeting.shared_notes,
                Cell("; ".join(texts), tag("ul", join(tag("li", t) for t in texts))) if texts else None,
                "\n".join(mine.get(meeting.id or 0, [])) or None,
            )
        )
    return table


async def _own_notes(session: AsyncSession, author_id: int, meeting_ids: list[int]) -> list[MeetingNote]:
    """The author's private notes on these 1:1s. The author is part of the query: another person's notes are
    never read, so no later change to a page can show them."""
    return list(
        (
            await session.execute(
                select(MeetingNote)
                .where(col(MeetingNote.author_id) == author_id, col(MeetingNote.meeting_id).in_(meeting_ids))
                .order_by(col(MeetingNote.id))
            )
        ).scalars()
    )


# -- downloads ---------------------------------------------------------------------------------------------


CSV_HEADERS = ("Kind", "Date", "1:1", "Who", "Status", "Due", "Text", "Note")


async def pair_csv(ctx: Ctx, pair_id: int) -> File:
    """Every meeting, talking point and action item of the pair, and the viewer's own private notes, one row
    each, dates in the viewer's time zone. Cells a spreadsheet would run as formulas are kept text (`Table`)."""
    pair, manager, report = await _may_see_pair(ctx, pair_id)
    zone = ctx.viewer.person.timezone
    today = _today(ctx)
    names = {manager.id or 0: manager.name, report.id or 0: report.name}
    meetings = list(
        (
            await ctx.session.execute(
                select(Meeting).where(col(Meeting.pair_id) == pair.id).order_by(col(Meeting.starts_at))
            )
        ).scalars()
    )
    when = {m.id or 0: _when(m.starts_at, zone) for m in meetings}
    table = Table("pair", "1:1", CSV_HEADERS)
    for meeting in meetings:
        status = meeting.status + (f" (moved: {meeting.moved})" if meeting.moved else "")
        table.rows.append(
            ("1:1", when[meeting.id or 0], when[meeting.id or 0], "", status, "", meeting.shared_notes, "")
        )
    points = await ctx.session.execute(
        select(TalkingPoint).where(col(TalkingPoint.pair_id) == pair.id).order_by(col(TalkingPoint.id))
    )
    for point in points.scalars():
        table.rows.append(
            (
                LABELS.get(point.source, point.source),
                _day(point.created_at, zone),
                when.get(point.meeting_id or 0, ""),
                names.get(point.author_id or 0, "Baton"),
                f"discussed {_day(point.discussed_at, zone)}" if point.discussed_at else "open",
                "",
                point.text,
                point.note,
            )
        )
    items = await ctx.session.execute(
        select(ActionItem).where(col(ActionItem.pair_id) == pair.id).order_by(col(ActionItem.id))
    )
    for action in items.scalars():
        due, late = _due(action, today)
        status = f"done {_day(action.done_at, zone)}" if action.done_at else "overdue" if late else "open"
        table.rows.append(
            (
                "Action item",
                _day(action.created_at, zone),
                when.get(action.meeting_id or 0, ""),
                names.get(action.owner_id, ""),
                status,
                due,
                action.text,
                "",
            )
        )
    for note in await _own_notes(ctx.session, ctx.viewer.id, list(when)):
        table.rows.append(
            (
                "Your private note",
                _day(note.created_at, zone),
                when.get(note.meeting_id, ""),
                ctx.viewer.person.name,
                "",
                "",
                note.text,
                "",
            )
        )
    # The BOM makes Excel read UTF-8 names correctly, as the dashboard's other exports do.
    return File(table.csv().encode("utf-8-sig"), "text/csv", f"baton-1on1-{pair.id}.csv")


async def pair_ics(ctx: Ctx, pair_id: int) -> File:
    """The pair's recurring invitation, for one of its two people."""
    pair, manager, report = await _may_see_pair(ctx, pair_id)
    return File(ics(pair, manager, report, now=ctx.now), ICS_TYPE, ICS_FILENAME)


async def invite_file(session: AsyncSession, sealer: Sealer, token: str, now: datetime) -> File | None:
    """The invitation a chat link names (`GET INVITE_PATH/{token}.ics`, no sign-in), or None when the token is
    wrong, names another rhythm than the pair's current one, or the pair or one of its people is gone."""
    pair_id = token_pair(token)
    if pair_id is None or len(token) > 64:
        return None
    pair = await session.get(OneOnOne, pair_id)
    if pair is None or not pair.active or not check_token(sealer, token, pair):
        return None
    manager = await session.get(Person, pair.manager_id)
    report = await session.get(Person, pair.report_id)
    if manager is None or report is None or not (manager.active and report.active):
        return None
    return File(ics(pair, manager, report, now=now), ICS_TYPE, ICS_FILENAME)


__all__ = ["File", "invite_file", "list_page", "pair_csv", "pair_ics", "pair_page"]
