"""1:1 pairs, their meetings and the agenda that builds itself from the weeks since the last one.

What the agenda reads, for the report and the manager of one pair, since the pair's last held 1:1:
the report's check-in priorities and the blockers of their latest check-in, the pulse trend in words,
what they asked of the manager, goals off track or whose status changed, feedback requests waiting
between the two, tool plans due for follow-up, kudos received, open action items, and talking points
either side added. Never anonymous 360 content: nothing here reads `answer_360`, `pool_360` or drafts.
Everything on an agenda is for the pair alone, like the private check-in answers it may quote.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col

from dialogs.common.cadence import ASK_AFTER, SKIPS_TOLD, Cadence, first_anchor, next_slot
from dialogs.common.wording import is_nothing, shorten
from dialogs.engine.clock import tz
from dialogs.engine.contract import COMMAND_ACTION
from dialogs.engine.messages import Choice, Reply
from storage.models import (
    ActionItem,
    CheckinAnswer,
    CheckinRun,
    FeedbackEntry,
    FeedbackRequest,
    Goal,
    GoalUpdate,
    Meeting,
    OneOnOne,
    Person,
    TalkingPoint,
    ToolPlan,
)

LOOKBACK = timedelta(weeks=5)  # a pair with no held 1:1 yet: the agenda reads this far back
TOOLS_AHEAD = timedelta(days=7)  # tool plans whose follow-up falls within a week after the 1:1
LABELS = {
    "typed": "Talking point",
    "priority": "Priority",
    "blocker": "Blocker",
    "pulse": "Pulse",
    "ask": "Asked of the manager",
    "goal": "Goal",
    "feedback-request": "Feedback request",
    "tool": "Tool follow-up",
    "kudos": "Kudos",
    "action": "Action item",
    "checkin": "Check-in",
    "feedback": "Feedback",
}


@dataclass(frozen=True, slots=True)
class Gathered:
    """One agenda item Baton found: its kind (a key of LABELS), what to show, and what it came from."""

    source: str
    text: str
    ref: str


def discuss_choice(ref: str) -> Choice:
    """The "Discuss in our 1:1" button (a command) for something in the week: `checkin:RUN:QUESTION`,
    `goal:ID`, `feedback:ID` — dialogs/oneonone.py puts it on the right pair's agenda."""
    return Choice("Discuss in our 1:1", f"1:1 discuss {ref}")


def insert_for(session: AsyncSession) -> Any:
    """The dialect's INSERT, for ON CONFLICT DO NOTHING."""
    postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
    return pg_insert if postgres else sqlite_insert


def first_name(person: Person) -> str:
    return person.name.split(" ")[0] or person.name


async def ensure_pairs(session: AsyncSession, now: datetime, *, only: int | None = None) -> int:
    """Give every active manager–report pair without one a 1:1 rhythm on the defaults, starting from the
    manager's today (`only`: the pairs this person is in). Safe to repeat on several replicas at once."""
    manager = aliased(Person)
    statement = (
        select(col(Person.id), col(Person.manager_id), col(manager.timezone))
        .join(manager, col(manager.id) == col(Person.manager_id))
        .where(col(Person.active).is_(True), col(manager.active).is_(True))
        .where(
            ~select(col(OneOnOne.id))
            .where(col(OneOnOne.report_id) == col(Person.id))
            .where(col(OneOnOne.manager_id) == col(Person.manager_id))
            .exists()
        )
    )
    if only is not None:
        statement = statement.where(or_(col(Person.id) == only, col(Person.manager_id) == only))
    missing = await session.execute(statement)
    rows = [
        {
            "manager_id": manager_id,
            "report_id": report_id,
            "anchor": first_anchor(Cadence().weekday, now.astimezone(tz(zone)).date()),
            "created_at": now,
        }
        | Cadence().to_dict()
        | {"ask_report": False, "skipped_in_row": 0, "skips_told": False, "active": True}
        for report_id, manager_id, zone in missing
    ]
    if rows:
        await session.execute(insert_for(session)(OneOnOne).on_conflict_do_nothing(), rows)
    return len(rows)


async def pairs_of(session: AsyncSession, person: Person) -> list[tuple[OneOnOne, Person]]:
    """The person's active 1:1 pairs with the other side: their manager's first, then their reports'
    by name. Only pairs whose reporting line still holds."""
    found = []
    for pair, other in await session.execute(
        select(OneOnOne, Person)
        .join(Person, or_(col(Person.id) == col(OneOnOne.manager_id), col(Person.id) == col(OneOnOne.report_id)))
        .where(col(OneOnOne.active).is_(True), col(Person.id) != person.id, col(Person.active).is_(True))
        .where(or_(col(OneOnOne.manager_id) == person.id, col(OneOnOne.report_id) == person.id))
    ):
        report_id = pair.report_id
        manager_id = pair.manager_id
        current = person.manager_id if report_id == person.id else other.manager_id
        if current == manager_id:
            found.append((pair, other))
    found.sort(key=lambda item: (item[0].manager_id == person.id, item[1].name))
    return found


async def peek(
    session: AsyncSession, pair: OneOnOne, manager: Person, now: datetime
) -> tuple[Meeting | None, datetime]:
    """The pair's next (or running) 1:1 without writing: its planned row, or None and the rhythm's next slot
    that no held or called-off row has taken (one recorded early). Pages and the overview read this."""
    running = now - timedelta(minutes=pair.minutes)
    meeting = await session.scalar(
        select(Meeting)
        .where(col(Meeting.pair_id) == pair.id, col(Meeting.status) == "planned", col(Meeting.starts_at) > running)
        .order_by(col(Meeting.starts_at))
        .limit(1)
    )
    if meeting is not None:
        return meeting, meeting.starts_at
    slot = next_slot(pair, manager.timezone, running)
    taken = set(
        (
            await session.execute(
                select(col(Meeting.planned_at)).where(
                    col(Meeting.pair_id) == pair.id,
                    col(Meeting.planned_at) >= slot,
                    col(Meeting.status).in_(("held", "skipped", "unrecorded")),
                )
            )
        ).scalars()
    )
    while slot in taken:
        slot = next_slot(pair, manager.timezone, slot + timedelta(minutes=1))
    return None, slot


async def upcoming(session: AsyncSession, pair: OneOnOne, manager: Person, now: datetime) -> Meeting:
    """The pair's next (or running) 1:1 (`peek`), its row created from the rhythm if it has none yet."""
    meeting, slot = await peek(session, pair, manager, now)
    if meeting is not None:
        return meeting
    await session.execute(
        insert_for(session)(Meeting).on_conflict_do_nothing(),
        [
            {
                "pair_id": pair.id,
                "planned_at": slot,
                "starts_at": slot,
                "status": "planned",
                "created_at": now,
            }
        ],
    )
    created = await session.scalar(
        select(Meeting).where(col(Meeting.pair_id) == pair.id, col(Meeting.planned_at) == slot)
    )
    assert created is not None
    if created.status == "replaced":  # a change of rhythm set this slot aside, and another brought it back
        created.status, created.starts_at, created.moved = "planned", slot, None
        session.add(created)
    return created


async def last_held(session: AsyncSession, pair_id: int) -> Meeting | None:
    return await session.scalar(
        select(Meeting)
        .where(col(Meeting.pair_id) == pair_id, col(Meeting.status) == "held")
        .order_by(col(Meeting.starts_at).desc())
        .limit(1)
    )


async def count_skip(session: AsyncSession, pair: OneOnOne) -> bool:
    """Count one more 1:1 skipped (or unrecorded) in a row; True when the manager is to hear of it now —
    the run reached SKIPS_TOLD and nobody told them yet. One rule for the scheduler and for a skip recorded in
    chat. Both steps are single statements, so of two replicas (or a tick and a press) one counts each skip
    and one tells (PostgreSQL re-checks the condition after the other's commit)."""
    counted, told = (
        await session.execute(
            sql_update(OneOnOne)
            .where(col(OneOnOne.id) == pair.id)
            .values(skipped_in_row=col(OneOnOne.skipped_in_row) + 1)
            .returning(col(OneOnOne.skipped_in_row), col(OneOnOne.skips_told))
            .execution_options(synchronize_session=False)
        )
    ).one()
    set_committed_value(pair, "skipped_in_row", counted)
    if counted < SKIPS_TOLD or told:
        return False
    result: Any = await session.execute(
        sql_update(OneOnOne)
        .where(col(OneOnOne.id) == pair.id, col(OneOnOne.skips_told).is_(False))
        .values(skips_told=True)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    set_committed_value(pair, "skips_told", True)
    return True


def skips_reply(pair: OneOnOne, report: Person, meeting: Meeting) -> Reply:
    """What the manager hears, once, when 1:1s were skipped SKIPS_TOLD times in a row: about the rhythm, a
    question for the pair, no verdict on anyone."""
    return Reply(
        f"Your last {pair.skipped_in_row} 1:1s with {first_name(report)} were skipped or not recorded. "
        "Does the rhythm still fit you both?",
        choices=(
            Choice("Change the rhythm", f"1:1 time pair:{pair.id}", "primary"),
            Choice("Record the last one", f"1:1 notes meeting:{meeting.id}"),
        ),
        action=COMMAND_ACTION,
    )


def skips_key(pair: OneOnOne, meeting: Meeting) -> str:
    return f"1on1-skips:{pair.id}:{meeting.id}"


def ask_time(pair: OneOnOne, meeting: Meeting) -> datetime:
    """When "How did it go?" is asked: a little after the 1:1's planned end."""
    return meeting.starts_at + timedelta(minutes=pair.minutes) + ASK_AFTER


# -- gathering ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """One pair's agenda to gather: the report, their manager, and what happened in [since, until)."""

    pair_id: int
    report: int
    manager: int
    since: datetime
    until: datetime


CHUNK = 500  # ids in one IN list


async def gather(session: AsyncSession, pair: OneOnOne, since: datetime, until: datetime) -> list[Gathered]:
    """What happened between the pair since `since`, as agenda items, in a fixed order."""
    window = Window(pair.id or 0, pair.report_id, pair.manager_id, since, until)
    return (await gather_many(session, [window]))[window.pair_id]


async def gather_many(session: AsyncSession, windows: list[Window]) -> dict[int, list[Gathered]]:
    """`gather` for many pairs at once: one query per source for all of them (the scheduler builds a few
    hundred agendas in a tick), then each pair's items picked out in the same fixed order."""
    found: dict[int, list[Gathered]] = {w.pair_id: [] for w in windows}
    if not windows:
        return found
    checkins = await _from_checkins(session, windows)
    goals = await _from_goals(session, windows)
    requests = await _from_requests(session, windows)
    tools = await _from_tools(session, windows)
    kudos = await _from_kudos(session, windows)
    for w in windows:
        for source in (checkins, goals, requests, tools, kudos):
            found[w.pair_id] += source.get(w.pair_id, [])
    return found


async def _rows(session: AsyncSession, statement: Any, column: Any, ids: list[int]) -> list[Any]:
    """`statement` for `ids` in chunks of CHUNK (`column IN ids`)."""
    rows: list[Any] = []
    for start in range(0, len(ids), CHUNK):
        rows += list((await session.execute(statement.where(column.in_(ids[start : start + CHUNK])))).scalars())
    return rows


def _span(windows: list[Window]) -> tuple[datetime, datetime]:
    return min(w.since for w in windows), max(w.until for w in windows)


async def _from_checkins(session: AsyncSession, windows: list[Window]) -> dict[int, list[Gathered]]:
    first, last = _span(windows)
    runs = await _rows(
        session,
        select(CheckinRun)
        .where(col(CheckinRun.status) == "answered")
        .where(col(CheckinRun.answered_at) >= first, col(CheckinRun.answered_at) < last)
        .order_by(col(CheckinRun.period)),
        col(CheckinRun.person_id),
        sorted({w.report for w in windows}),
    )
    answers: dict[int, dict[str, CheckinAnswer]] = {run.id or 0: {} for run in runs}
    for answer in await _rows(session, select(CheckinAnswer), col(CheckinAnswer.run_id), list(answers)):
        answers[answer.run_id][answer.question_id] = answer
    by_person: dict[int, list[CheckinRun]] = {}
    for run in sorted(runs, key=lambda r: r.period):
        by_person.setdefault(run.person_id, []).append(run)

    def fed(run: CheckinRun, kind: str) -> list[tuple[str, CheckinAnswer]]:
        mine = answers[run.id or 0]
        return [(q["id"], mine[q["id"]]) for q in run.questions if q.get("feeds") == kind and q["id"] in mine]

    found: dict[int, list[Gathered]] = {}
    for w in windows:
        mine = [
            r for r in by_person.get(w.report, []) if r.answered_at is not None and w.since <= r.answered_at < w.until
        ]
        if not mine:
            continue
        items = found.setdefault(w.pair_id, [])
        latest = mine[-1]
        for question_id, answer in fed(latest, "priorities"):
            if not is_nothing(answer.text):
                items.append(
                    Gathered("priority", shorten(answer.text or "", 280), f"checkin:{latest.id}:{question_id}")
                )
        # A blocker is still open while the latest check-in names it; earlier ones were answered by later weeks.
        for question_id, answer in fed(latest, "blockers"):
            if not is_nothing(answer.text):
                items.append(Gathered("blocker", shorten(answer.text or "", 280), f"checkin:{latest.id}:{question_id}"))
        pulses = [a.number for run in mine for _, a in fed(run, "pulse") if a.number is not None]
        if pulses:
            items.append(Gathered("pulse", pulse_words(pulses), f"pulse:{latest.id}"))
        for run in mine:
            for question_id, answer in fed(run, "requests"):
                if not is_nothing(answer.text):
                    items.append(Gathered("ask", shorten(answer.text or "", 280), f"checkin:{run.id}:{question_id}"))
    return found


def pulse_words(values: list[float]) -> str:
    """'4 → 3 → 2, going down' — the trend in words, never a verdict."""
    shown = " → ".join(f"{v:g}" for v in values[-4:])
    if len(values) < 2:
        return f"{shown} (one check-in so far)"
    first, last = values[0], values[-1]
    direction = "going up" if last > first else "going down" if last < first else "steady"
    return f"{shown}, {direction}"


async def _from_goals(session: AsyncSession, windows: list[Window]) -> dict[int, list[Gathered]]:
    goals = await _rows(
        session,
        select(Goal).where(col(Goal.status) == "active").order_by(col(Goal.id)),
        col(Goal.owner_id),
        sorted({w.report for w in windows}),
    )
    if not goals:
        return {}
    _, last = _span(windows)
    history: dict[int, list[GoalUpdate]] = {}
    for update in await _rows(
        session,
        select(GoalUpdate)
        .where(col(GoalUpdate.recorded_at) < last)
        .order_by(col(GoalUpdate.recorded_at), col(GoalUpdate.id)),
        col(GoalUpdate.goal_id),
        [g.id or 0 for g in goals],
    ):
        history.setdefault(update.goal_id, []).append(update)
    found: dict[int, list[Gathered]] = {}
    for w in windows:
        for goal in (g for g in goals if g.owner_id == w.report):
            before = [u.rag for u in history.get(goal.id or 0, []) if u.recorded_at < w.since]
            was = before[-1] if before else None
            changed = goal.rag is not None and was is not None and was != goal.rag
            if goal.rag in ("amber", "red") or changed:
                status = f"{was} → {goal.rag}" if changed else goal.rag
                found.setdefault(w.pair_id, []).append(
                    Gathered("goal", f"{shorten(goal.title, 120)} ({status})", f"goal:{goal.id}")
                )
    return found


async def _from_requests(session: AsyncSession, windows: list[Window]) -> dict[int, list[Gathered]]:
    people = sorted({w.report for w in windows} | {w.manager for w in windows})
    requests = await _rows(
        session,
        select(FeedbackRequest).where(col(FeedbackRequest.status) == "open").order_by(col(FeedbackRequest.id)),
        col(FeedbackRequest.requester_id),
        people,
    )
    found: dict[int, list[Gathered]] = {}
    for w in windows:
        for request in requests:
            if (request.requester_id, request.responder_id) not in ((w.report, w.manager), (w.manager, w.report)):
                continue
            who = "asked of the manager" if request.requester_id == w.report else "asked of the report"
            found.setdefault(w.pair_id, []).append(
                Gathered("feedback-request", f"{shorten(request.topic, 160)} ({who})", f"request:{request.id}")
            )
    return found


async def _from_tools(session: AsyncSession, windows: list[Window]) -> dict[int, list[Gathered]]:
    _, last = _span(windows)
    plans = await _rows(
        session,
        select(ToolPlan)
        .where(col(ToolPlan.status).in_(("planned", "asked")), col(ToolPlan.follow_up_at) <= last + TOOLS_AHEAD)
        .order_by(col(ToolPlan.follow_up_at)),
        col(ToolPlan.person_id),
        sorted({w.report for w in windows}),
    )
    found: dict[int, list[Gathered]] = {}
    for w in windows:
        for plan in plans:
            if plan.person_id == w.report and plan.follow_up_at <= w.until + TOOLS_AHEAD:
                found.setdefault(w.pair_id, []).append(
                    Gathered("tool", f"{plan.tool_id.replace('-', ' ')} — did it help?", f"tool:{plan.id}")
                )
    return found


async def _from_kudos(session: AsyncSession, windows: list[Window]) -> dict[int, list[Gathered]]:
    """Kudos are counted; only public ones are quoted (a private one is for the two people involved)."""
    first, last = _span(windows)
    entries = await _rows(
        session,
        select(FeedbackEntry)
        .where(col(FeedbackEntry.kind) == "kudos")
        .where(col(FeedbackEntry.created_at) >= first, col(FeedbackEntry.created_at) < last)
        .order_by(col(FeedbackEntry.created_at), col(FeedbackEntry.id)),
        col(FeedbackEntry.to_id),
        sorted({w.report for w in windows}),
    )
    found: dict[int, list[Gathered]] = {}
    for w in windows:
        rows = [e for e in entries if e.to_id == w.report and w.since <= e.created_at < w.until]
        if not rows:
            continue
        public = [shorten(entry.text, 120) for entry in rows if entry.public]
        text = f"{len(rows)} received" + (f" — “{public[-1]}”" if public else "")
        found[w.pair_id] = [Gathered("kudos", text, f"kudos:{rows[-1].id}")]
    return found


# -- the agenda of one meeting -------------------------------------------------------------------------


async def build(session: AsyncSession, pair: OneOnOne, meeting: Meeting, now: datetime) -> list[TalkingPoint]:
    """Put what Baton gathered and every open talking point on `meeting`'s agenda; return the agenda."""
    return (await build_many(session, [(pair, meeting)], now))[meeting.id or 0]


async def build_many(
    session: AsyncSession, wanted: list[tuple[OneOnOne, Meeting]], now: datetime
) -> dict[int, list[TalkingPoint]]:
    """`build` for many meetings at once (by meeting id), a query per kind of row for all of them.

    Undiscussed points people added for earlier 1:1s move to the pair's meeting here; gathered items already
    on it (by what they came from) are not added twice, so building again is harmless."""
    if not wanted:
        return {}
    pair_ids = [pair.id or 0 for pair, _ in wanted]
    held: dict[int, datetime] = {}
    for pair_id, starts_at in await session.execute(
        select(col(Meeting.pair_id), col(Meeting.starts_at))
        .where(col(Meeting.pair_id).in_(pair_ids), col(Meeting.status) == "held")
        .order_by(col(Meeting.starts_at))
    ):
        held[pair_id] = starts_at  # the latest wins
    windows = [
        Window(
            pair.id or 0,
            pair.report_id,
            pair.manager_id,
            held.get(pair.id or 0, meeting.starts_at - LOOKBACK),
            min(now, meeting.starts_at),
        )
        for pair, meeting in wanted
    ]
    gathered = await gather_many(session, windows)
    meeting_ids = [meeting.id or 0 for _, meeting in wanted]
    have: dict[int, set[str]] = {m: set() for m in meeting_ids}
    for meeting_id, ref in await session.execute(
        select(col(TalkingPoint.meeting_id), col(TalkingPoint.ref)).where(
            col(TalkingPoint.meeting_id).in_(meeting_ids), col(TalkingPoint.ref).is_not(None)
        )
    ):
        have[meeting_id or 0].add(ref or "")
    rows = []
    for pair, meeting in wanted:
        mine = have[meeting.id or 0]
        for found in gathered[pair.id or 0]:
            if found.ref not in mine:
                mine.add(found.ref)
                rows.append(
                    {
                        "pair_id": pair.id,
                        "source": found.source,
                        "ref": found.ref,
                        "text": found.text,
                        "meeting_id": meeting.id,
                        "created_at": now,
                    }
                )
    for start in range(0, len(rows), CHUNK):
        await session.execute(insert(TalkingPoint), rows[start : start + CHUNK])
    by_pair = {pair.id: meeting.id for pair, meeting in wanted}
    # What people added and nobody discussed moves to the pair's coming meeting; Baton gathers its own afresh.
    for point in await _rows(
        session,
        select(TalkingPoint).where(col(TalkingPoint.discussed_at).is_(None), col(TalkingPoint.author_id).is_not(None)),
        col(TalkingPoint.pair_id),
        pair_ids,
    ):
        if point.meeting_id != by_pair[point.pair_id]:
            point.meeting_id = by_pair[point.pair_id]
            session.add(point)
    await session.flush()
    agendas: dict[int, list[TalkingPoint]] = {m: [] for m in meeting_ids}
    for point in await _rows(
        session, select(TalkingPoint).order_by(col(TalkingPoint.id)), col(TalkingPoint.meeting_id), meeting_ids
    ):
        agendas[point.meeting_id or 0].append(point)
    return agendas


async def agenda_of(session: AsyncSession, meeting: Meeting) -> list[TalkingPoint]:
    rows = await session.execute(
        select(TalkingPoint).where(col(TalkingPoint.meeting_id) == meeting.id).order_by(col(TalkingPoint.id))
    )
    return list(rows.scalars())


async def open_actions(session: AsyncSession, pair_ids: Iterable[int]) -> list[ActionItem]:
    ids = list(pair_ids)
    if not ids:
        return []
    rows = await session.execute(
        select(ActionItem)
        .where(col(ActionItem.pair_id).in_(ids), col(ActionItem.done_at).is_(None))
        .order_by(col(ActionItem.due_on).asc().nulls_last(), col(ActionItem.id))  # the same on both databases
    )
    return list(rows.scalars())


async def actions_by_pair(session: AsyncSession, pairs: list[OneOnOne]) -> dict[int, list[ActionItem]]:
    """Each pair's open action items: the pair's own, and what either of the two committed to elsewhere
    (a retro's commitment, say), which their 1:1 is the place to follow up."""
    if not pairs:
        return {}
    people = sorted({p.manager_id for p in pairs} | {p.report_id for p in pairs})
    rows = await _rows(
        session,
        select(ActionItem)
        .where(col(ActionItem.done_at).is_(None))
        .order_by(col(ActionItem.due_on).asc().nulls_last(), col(ActionItem.id)),
        col(ActionItem.owner_id),
        people,
    )
    found: dict[int, list[ActionItem]] = {}
    for pair in pairs:
        found[pair.id or 0] = [
            a
            for a in rows
            if a.pair_id == pair.id or (a.pair_id is None and a.owner_id in (pair.manager_id, pair.report_id))
        ]
    return found


def item_line(index: int, point: TalkingPoint, names: dict[int, str]) -> str:
    """'3. Blocker: waiting for the API keys — discussed' (the author named for typed points)."""
    label = LABELS.get(point.source, point.source)
    if point.source == "typed" and point.author_id in names:
        label = f"From {names[point.author_id]}"
    state = " ✓ discussed" if point.discussed_at else ""
    note = f" — note: {shorten(point.note, 120)}" if point.note else ""
    return f"{index}. {label}: {point.text}{state}{note}"


def action_line(action: ActionItem, names: dict[int, str], zone: str, today: date) -> str:
    owner = names.get(action.owner_id, "someone")
    due = ""
    if action.due_on is not None:
        due = f", due {action.due_on:%a} {action.due_on.day} {action.due_on:%b}"
        if action.due_on < today:
            due += " (overdue)"
    return f"{owner}: {shorten(action.text, 200)}{due}"


def local_day(moment: datetime, zone: str) -> date:
    return moment.astimezone(tz(zone)).date()


def ask_words(on: bool, pair: OneOnOne, viewer: Person, other: Person) -> str:
    """Who gets "How did it go?" after each 1:1, in `viewer`'s words (`other`: the other side)."""
    manager = viewer.id == pair.manager_id
    if on:
        return f"“How did it go?” goes to {first_name(other) if manager else 'you'} too after each 1:1"
    return f"only {'you get' if manager else first_name(other) + ' gets'} “How did it go?” after each 1:1"
