"""A person's data on request: everything Baton holds about them (export), and forgetting them (erase).

Export answers a data subject access request: their profile and settings,
identities, leave, check-ins, goals, feedback given and received (kudos
included), feedback requests, tool plans by them or about their work, 360s
about them and their participation in others', their 1:1s (with their own
private notes, never the other side's) and action items, and the messages
Baton sent them. Anonymous 360 answers are not theirs: they cannot be linked to anyone,
so they are neither exported nor found.

Erase removes the person and every row that names them, and rewrites what
points at them from others' rows (a report's manager, who created a goal);
the 1:1s they are in go whole, being about them;
messages and conversations of others that mention their name or email go
too. Released anonymous 360 answers stay (they name nobody). With
`keep_aggregates`, what feeds counts — check-in runs and their numeric
answers (pulse), tool plan outcomes — moves to a placeholder person with no
name, email or free text, so team trends and tool rankings keep their
numbers.
"""

from __future__ import annotations

import json
import secrets
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, cast, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from storage.models import (
    ActionItem,
    Answer360,
    AwayOverride,
    CalendarFeed,
    Campaign360,
    CheckinAnswer,
    CheckinRun,
    DashboardSession,
    DashboardToken,
    DialogState,
    FeedbackEntry,
    FeedbackRequest,
    Goal,
    GoalMilestone,
    GoalUpdate,
    Idea,
    IdeaMessage,
    Identity,
    Leave,
    Meeting,
    MeetingNote,
    OneOnOne,
    OutboxMessage,
    Person,
    Pool360,
    Rater360,
    Retro,
    RetroParticipant,
    RetroProposal,
    RetroQuote,
    RetroTheme,
    SealedDraft,
    TalkingPoint,
    Team,
    ToolPlan,
)

ANONYMOUS_NOTE = (
    "Anonymous 360 answers are not part of this export: they are stored without any link to the person "
    "who wrote them, so nobody — Baton included — can tell which are theirs."
)


class NoSuchPerson(LookupError):
    pass


async def find(session: AsyncSession, email: str) -> Person:
    person = await session.scalar(select(Person).where(col(Person.email) == email.strip().lower()))
    if person is None:
        person = await session.scalar(select(Person).where(col(Person.email) == email.strip()))
    if person is None:
        raise NoSuchPerson(f"Nobody with the email {email} is in this organisation.")
    return person


def _plain(row: SQLModel, *skip: str) -> dict[str, Any]:
    out = {}
    for key, value in row.model_dump().items():
        if key in skip:
            continue
        out[key] = value.isoformat() if isinstance(value, (datetime, date)) else value
    return out


async def _rows(session: AsyncSession, statement: Any) -> list[Any]:
    return list((await session.scalars(statement)).all())


async def export(session: AsyncSession, email: str) -> dict[str, Any]:
    """Everything Baton holds about the person with `email`, as JSON-ready data."""
    person = await find(session, email)
    pid = person.id
    names = {p.id: p.name for p in await _rows(session, select(Person))}
    team = await session.get(Team, person.team_id) if person.team_id else None
    runs = await _rows(
        session, select(CheckinRun).where(col(CheckinRun.person_id) == pid).order_by(col(CheckinRun.period))
    )
    answers: dict[int, list[CheckinAnswer]] = {}
    if runs:
        for answer in await _rows(
            session, select(CheckinAnswer).where(col(CheckinAnswer.run_id).in_([r.id for r in runs]))
        ):
            answers.setdefault(answer.run_id, []).append(answer)
    goals = await _rows(session, select(Goal).where(col(Goal.owner_id) == pid).order_by(col(Goal.id)))
    goal_ids = [g.id for g in goals]
    updates = await _rows(session, select(GoalUpdate).where(col(GoalUpdate.goal_id).in_(goal_ids))) if goal_ids else []
    milestones = (
        await _rows(session, select(GoalMilestone).where(col(GoalMilestone.goal_id).in_(goal_ids))) if goal_ids else []
    )
    entries = await _rows(
        session,
        select(FeedbackEntry)
        .where(or_(col(FeedbackEntry.from_id) == pid, col(FeedbackEntry.to_id) == pid))
        .order_by(col(FeedbackEntry.created_at)),
    )
    requests = await _rows(
        session,
        select(FeedbackRequest).where(
            or_(col(FeedbackRequest.requester_id) == pid, col(FeedbackRequest.responder_id) == pid)
        ),
    )
    plans = await _rows(
        session, select(ToolPlan).where(or_(col(ToolPlan.asked_by_id) == pid, col(ToolPlan.person_id) == pid))
    )
    about = await _rows(session, select(Campaign360).where(col(Campaign360.subject_id) == pid))
    rated = await _rows(session, select(Rater360).where(col(Rater360.rater_id) == pid))
    messages = await _rows(
        session, select(OutboxMessage).where(col(OutboxMessage.person_id) == pid).order_by(col(OutboxMessage.id))
    )
    drafts = await _rows(session, select(SealedDraft).where(col(SealedDraft.person_id) == pid))
    state = await session.get(DialogState, pid)
    one_on_ones = await _one_on_ones(session, pid)

    def who(other: int | None) -> str:
        return names.get(other, "(someone no longer here)") if other is not None else "(nobody)"

    return {
        "person": {
            **_plain(person),
            "team": team.name if team else None,
            "manager": who(person.manager_id) if person.manager_id else None,
        },
        "identities": [
            {"platform": i.platform, "account": i.external_id, "updated_at": i.updated_at.isoformat()}
            for i in await _rows(session, select(Identity).where(col(Identity.person_id) == pid))
        ],
        "leave": [
            _plain(leave, "person_id")
            for leave in await _rows(session, select(Leave).where(col(Leave.person_id) == pid))
        ],
        "calendar_feed": (
            {
                "connected": feed.created_at.isoformat(),
                "last_read": feed.ok_at.isoformat() if feed.ok_at else None,
                "address": "sealed: Baton keeps it encrypted and shows it to nobody",
            }
            if (feed := await session.get(CalendarFeed, pid)) is not None
            else None
        ),
        "working_despite_away": [
            d.isoformat()
            for d in await _rows(session, select(col(AwayOverride.day)).where(col(AwayOverride.person_id) == pid))
        ],
        "checkins": [
            {
                **_plain(run, "person_id", "questions"),
                "answers": [_plain(a, "run_id") for a in sorted(answers.get(run.id, []), key=lambda a: a.question_id)],
            }
            for run in runs
        ],
        "goals": [
            {
                **_plain(goal),
                "milestones": [_plain(m) for m in milestones if m.goal_id == goal.id],
                "updates": [_plain(u) for u in updates if u.goal_id == goal.id],
            }
            for goal in goals
        ],
        "feedback_given": [{**_plain(e, "from_id", "to_id"), "to": who(e.to_id)} for e in entries if e.from_id == pid],
        "feedback_received": [
            {**_plain(e, "from_id", "to_id"), "from": who(e.from_id)} for e in entries if e.to_id == pid
        ],
        "feedback_requests": [
            {
                **_plain(r, "requester_id", "responder_id"),
                "asked_by": who(r.requester_id),
                "asked_of": who(r.responder_id),
            }
            for r in requests
        ],
        "tool_plans": [
            {**_plain(p, "asked_by_id", "person_id"), "asked_by": who(p.asked_by_id), "about": who(p.person_id)}
            for p in plans
        ],
        "reviews_360_about_them": [_plain(c, "subject_id", "created_by_id") for c in about],
        "reviews_360_asked_to_rate": [
            {"campaign": r.campaign_id, "group": r.group, "answered": r.answered, "declined": r.declined} for r in rated
        ],
        "anonymous_360_answers": ANONYMOUS_NOTE,
        "one_on_ones": [{**entry, "with": who(entry.pop("other"))} for entry in one_on_ones["pairs"]],
        "action_items": [_plain(a, "owner_id") for a in one_on_ones["actions"]],
        "retros": {
            "taken_part_in": [
                {"retro": r.retro_id, "answered": r.answered, "voted": r.voted}
                for r in await _rows(session, select(RetroParticipant).where(col(RetroParticipant.person_id) == pid))
            ],
            "signed_stories": [
                _plain(q, "author_id")
                for q in await _rows(session, select(RetroQuote).where(col(RetroQuote.author_id) == pid))
            ],
            "anonymous_answers": ANONYMOUS_NOTE,
        },
        "ideas": {
            "signed": [
                _plain(i, "relay", "signed_by_id")
                for i in await _rows(session, select(Idea).where(col(Idea.signed_by_id) == pid))
            ],
            "sent_to_them": [
                _plain(i, "relay", "owner_id")
                for i in await _rows(session, select(Idea).where(col(Idea.owner_id) == pid))
            ],
            "anonymous": ANONYMOUS_NOTE,
        },
        "drafts_in_progress": len(drafts),
        "conversation": _plain(state, "person_id") if state else None,
        "messages_sent_to_them": [
            {
                "id": m.id,
                "channel": m.channel,
                "status": m.status,
                "kind": m.kind,
                "created_at": m.created_at.isoformat(),
                "sent_at": m.sent_at.isoformat() if m.sent_at else None,
                "message": m.payload,
            }
            for m in messages
        ],
    }


async def _one_on_ones(session: AsyncSession, pid: int | None) -> dict[str, Any]:
    """Their 1:1s: each pair's rhythm, its meetings with the shared notes, the talking points, and their own
    private notes (never the other side's)."""
    pairs = await _rows(
        session, select(OneOnOne).where(or_(col(OneOnOne.manager_id) == pid, col(OneOnOne.report_id) == pid))
    )
    found = []
    for pair in pairs:
        meetings = await _rows(
            session, select(Meeting).where(col(Meeting.pair_id) == pair.id).order_by(col(Meeting.starts_at))
        )
        ids = [m.id for m in meetings]
        notes = (
            await _rows(
                session,
                select(MeetingNote).where(col(MeetingNote.meeting_id).in_(ids), col(MeetingNote.author_id) == pid),
            )
            if ids
            else []
        )
        points = await _rows(session, select(TalkingPoint).where(col(TalkingPoint.pair_id) == pair.id))
        found.append(
            {
                **_plain(pair, "manager_id", "report_id", "proposal"),
                "role": "manager" if pair.manager_id == pid else "report",
                "other": pair.report_id if pair.manager_id == pid else pair.manager_id,
                "meetings": [
                    {
                        **_plain(m, "pair_id"),
                        "my_private_notes": [n.text for n in notes if n.meeting_id == m.id],
                    }
                    for m in meetings
                ],
                "talking_points": [_plain(p, "pair_id") for p in points],
            }
        )
    actions = await _rows(session, select(ActionItem).where(col(ActionItem.owner_id) == pid))
    return {"pairs": found, "actions": actions}


async def erase(session: AsyncSession, email: str, *, keep_aggregates: bool = False) -> dict[str, int]:
    """Forget the person with `email` (see the module docstring); rows changed per table."""
    person = await find(session, email)
    pid = person.id
    assert pid is not None
    # As stored in JSON columns too, where non-ASCII characters are written as \u escapes.
    marks = sorted({m for value in (person.email, person.name) for m in (value, json.dumps(value)[1:-1])})
    done: dict[str, int] = {}

    async def run(table: str, statement: Any) -> None:
        result: Any = await session.execute(statement, execution_options={"synchronize_session": False})
        if result.rowcount:
            done[table] = done.get(table, 0) + result.rowcount

    stand_in = None
    if keep_aggregates:
        stand_in = Person(
            email=f"erased-{secrets.token_hex(8)}@erased.invalid",
            name="Erased person",
            team_id=person.team_id,
            manager_id=person.manager_id,
            active=False,
            created_at=person.created_at,
        )
        session.add(stand_in)
        await session.flush()

    # Others' rows that point at them.
    await run("person", update(Person).where(col(Person.manager_id) == pid).values(manager_id=None))
    await run("leave", update(Leave).where(col(Leave.created_by_id) == pid).values(created_by_id=None))
    await run("goal", update(Goal).where(col(Goal.created_by_id) == pid).values(created_by_id=None))
    await run(
        "goal_update", update(GoalUpdate).where(col(GoalUpdate.recorded_by_id) == pid).values(recorded_by_id=None)
    )
    await run(
        "campaign_360",
        update(Campaign360)
        .where(col(Campaign360.created_by_id) == pid, col(Campaign360.subject_id) != pid)
        .values(created_by_id=Campaign360.subject_id),
    )

    # Their 1:1s are about them: each pair they are in goes whole (meetings, points, notes, actions).
    pairs = select(col(OneOnOne.id)).where(or_(col(OneOnOne.manager_id) == pid, col(OneOnOne.report_id) == pid))
    # A retro's proposal lets go of a commitment that goes with them (theirs, or of a pair of theirs).
    going = select(col(ActionItem.id)).where(or_(col(ActionItem.owner_id) == pid, col(ActionItem.pair_id).in_(pairs)))
    await run(
        "retro_proposal",
        update(RetroProposal).where(col(RetroProposal.action_item_id).in_(going)).values(action_item_id=None),
    )
    meetings = select(col(Meeting.id)).where(col(Meeting.pair_id).in_(pairs))
    await run(
        "one_on_one_note",
        delete(MeetingNote).where(or_(col(MeetingNote.meeting_id).in_(meetings), col(MeetingNote.author_id) == pid)),
    )
    await run("talking_point", delete(TalkingPoint).where(col(TalkingPoint.pair_id).in_(pairs)))
    await run("talking_point", update(TalkingPoint).where(col(TalkingPoint.author_id) == pid).values(author_id=None))
    await run(
        "action_item",
        delete(ActionItem).where(or_(col(ActionItem.pair_id).in_(pairs), col(ActionItem.owner_id) == pid)),
    )
    await run("action_item", update(ActionItem).where(col(ActionItem.created_by_id) == pid).values(created_by_id=None))
    await run("one_on_one_meeting", delete(Meeting).where(col(Meeting.pair_id).in_(pairs)))
    await run(
        "one_on_one", delete(OneOnOne).where(or_(col(OneOnOne.manager_id) == pid, col(OneOnOne.report_id) == pid))
    )

    # Retros: their participation and signed stories go; a retro they started passes to their manager, or goes
    # whole when they have none. Commitments are action items (theirs go below; proposals let go of them).
    await run("retro_participant", delete(RetroParticipant).where(col(RetroParticipant.person_id) == pid))
    await run("retro_quote", delete(RetroQuote).where(col(RetroQuote.author_id) == pid))
    if person.manager_id is not None:
        await run("retro", update(Retro).where(col(Retro.started_by_id) == pid).values(started_by_id=person.manager_id))
    else:
        started = select(col(Retro.id)).where(col(Retro.started_by_id) == pid)
        await run("retro_participant", delete(RetroParticipant).where(col(RetroParticipant.retro_id).in_(started)))
        await run("retro_quote", delete(RetroQuote).where(col(RetroQuote.retro_id).in_(started)))
        await run("retro_theme", delete(RetroTheme).where(col(RetroTheme.retro_id).in_(started)))
        await run("retro_proposal", delete(RetroProposal).where(col(RetroProposal.retro_id).in_(started)))
        await run("retro", delete(Retro).where(col(Retro.started_by_id) == pid))

    # Ideas: the ones they signed are theirs and go with their thread; ideas sent to them pass to their
    # manager, or go when they have none. Anonymous ideas they sent cannot be found: nothing links them.
    signed = select(col(Idea.id)).where(col(Idea.signed_by_id) == pid)
    await run("idea_message", delete(IdeaMessage).where(col(IdeaMessage.idea_id).in_(signed)))
    await run("idea", delete(Idea).where(col(Idea.signed_by_id) == pid))
    if person.manager_id is not None:
        await run("idea", update(Idea).where(col(Idea.owner_id) == pid).values(owner_id=person.manager_id))
    else:
        owned = select(col(Idea.id)).where(col(Idea.owner_id) == pid)
        await run("idea_message", delete(IdeaMessage).where(col(IdeaMessage.idea_id).in_(owned)))
        await run("idea", delete(Idea).where(col(Idea.owner_id) == pid))

    # Their own rows.
    for model, column in (
        (Identity, Identity.person_id),
        (DialogState, DialogState.person_id),
        (SealedDraft, SealedDraft.person_id),
        (DashboardToken, DashboardToken.person_id),
        (DashboardSession, DashboardSession.person_id),
        (Leave, Leave.person_id),
        (CalendarFeed, CalendarFeed.person_id),
        (AwayOverride, AwayOverride.person_id),
        (Rater360, Rater360.rater_id),
        (OutboxMessage, OutboxMessage.person_id),
    ):
        await run(model.__tablename__, delete(model).where(col(column) == pid))

    runs = select(col(CheckinRun.id)).where(col(CheckinRun.person_id) == pid)
    if stand_in is not None:  # pulse and participation stay; words go
        await run(
            "checkin_answer",
            delete(CheckinAnswer).where(col(CheckinAnswer.run_id).in_(runs), col(CheckinAnswer.number).is_(None)),
        )
        await run("checkin_answer", update(CheckinAnswer).where(col(CheckinAnswer.run_id).in_(runs)).values(text=None))
        await run(
            "checkin_run", update(CheckinRun).where(col(CheckinRun.person_id) == pid).values(person_id=stand_in.id)
        )
    else:
        await run("checkin_answer", delete(CheckinAnswer).where(col(CheckinAnswer.run_id).in_(runs)))
        await run("checkin_run", delete(CheckinRun).where(col(CheckinRun.person_id) == pid))

    requests = select(col(FeedbackRequest.id)).where(
        or_(col(FeedbackRequest.requester_id) == pid, col(FeedbackRequest.responder_id) == pid)
    )
    await run(
        "feedback_entry",
        update(FeedbackEntry).where(col(FeedbackEntry.request_id).in_(requests)).values(request_id=None),
    )
    await run(
        "feedback_entry",
        delete(FeedbackEntry).where(or_(col(FeedbackEntry.from_id) == pid, col(FeedbackEntry.to_id) == pid)),
    )
    await run(
        "feedback_request",
        delete(FeedbackRequest).where(
            or_(col(FeedbackRequest.requester_id) == pid, col(FeedbackRequest.responder_id) == pid)
        ),
    )

    theirs = or_(col(ToolPlan.asked_by_id) == pid, col(ToolPlan.person_id) == pid)
    if stand_in is not None:  # the outcome keeps ranking the tool; the description of the gap goes
        await run("tool_plan", update(ToolPlan).where(col(ToolPlan.asked_by_id) == pid).values(asked_by_id=stand_in.id))
        await run("tool_plan", update(ToolPlan).where(col(ToolPlan.person_id) == pid).values(person_id=stand_in.id))
        await run(
            "tool_plan",
            update(ToolPlan)
            .where(col(ToolPlan.person_id) == stand_in.id)
            .values(gap="", outcome_note=None, signals=[], facts=[]),
        )
    else:
        await run("tool_plan", delete(ToolPlan).where(theirs))

    goals = select(col(Goal.id)).where(col(Goal.owner_id) == pid)
    await run("goal", update(Goal).where(col(Goal.parent_id).in_(goals)).values(parent_id=None))
    await run("goal_update", delete(GoalUpdate).where(col(GoalUpdate.goal_id).in_(goals)))
    await run("goal_milestone", delete(GoalMilestone).where(col(GoalMilestone.goal_id).in_(goals)))
    await run("goal", delete(Goal).where(col(Goal.owner_id) == pid))

    about = select(col(Campaign360.id)).where(col(Campaign360.subject_id) == pid)  # 360s about them are about them
    await run("rater_360", delete(Rater360).where(col(Rater360.campaign_id).in_(about)))
    await run("pool_360", delete(Pool360).where(col(Pool360.campaign_id).in_(about)))
    await run("answer_360", delete(Answer360).where(col(Answer360.campaign_id).in_(about)))
    # Others' drafts for those 360s (dialogs/common/anonymity.py names the scope "anonymous:360:<id>").
    scopes = [f"anonymous:360:{cid}" for cid in await session.scalars(about)]
    if scopes:
        await run("sealed_draft", delete(SealedDraft).where(col(SealedDraft.scope).in_(scopes)))
    await run("campaign_360", delete(Campaign360).where(col(Campaign360.subject_id) == pid))

    # Others' messages and conversations that mention them by name or email.
    for model, columns in ((OutboxMessage, ("payload", "address")), (DialogState, ("data", "parked"))):
        mentions = or_(
            *(cast(getattr(model, c), String).contains(mark) for c in columns for mark in marks if len(mark) >= 3)
        )
        await run(model.__tablename__, delete(model).where(mentions))

    await run("person", delete(Person).where(col(Person.id) == pid))
    return done
